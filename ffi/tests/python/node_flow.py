"""The node from Python through the generated bindings (a real foreign caller).

Run by ffi/tests/ffi_python.rs with the bindings directory on PYTHONPATH and the data
directory as the first argument.
"""

import sys
import threading
import urllib.request

import kasir_ffi
from kasir_ffi import KasirError, KasirNode, SaleItem

data = sys.argv[1]

class Heard(kasir_ffi.NodeListener):
    """Collects the node's events; called from the node's own (Rust) threads."""

    def __init__(self):
        self.events = []
        self.cond = threading.Condition()

    def on_event(self, event):
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def sale(self, sale_id, timeout=20):
        def found():
            return any(e.is_SALE_COMMITTED() and e.sale_id == sale_id for e in self.events)

        with self.cond:
            return self.cond.wait_for(found, timeout)


node = KasirNode.init(data, "Warung Python", "P1")
heard = Heard()
node.set_listener(heard)
node.add_product("KOPI", "Kopi Kapal Api", 1500, 40.0)
node.add_product("GULA", "Gulaku 1kg", 17500, 5.0)

sale = node.sell([SaleItem(sku="KOPI", qty=3.0), SaleItem(sku="GULA", qty=1.0)])
assert sale.total == 3 * 1500 + 17500, sale
assert sale.change == 0, sale
assert sale.receipt_no, sale
assert node.stock("KOPI") == 37.0, node.stock("KOPI")
assert heard.sale(sale.sale_id), f"no SaleCommitted for {sale.sale_id}: {heard.events}"
told = [e for e in heard.events if e.is_SALE_COMMITTED()]
assert len(told) == 1 and told[0].total == sale.total and told[0].till_code == "P1", told
assert node.stock("GULA") == 4.0, node.stock("GULA")
struk = node.receipt_text(sale.sale_id, 32)
assert "Kopi Kapal Api" in struk and "TOTAL" in struk, struk

# Errors are exceptions named after the API's codes.
try:
    node.sell([SaleItem(sku="TIDAKADA", qty=1.0)])
    raise AssertionError("an unknown SKU sold")
except KasirError.UnknownSku as e:
    assert "TIDAKADA" in str(e), e

# A second node on the same directory is refused while this one holds it.
try:
    KasirNode.open(data)
    raise AssertionError("the directory was opened twice")
except KasirError.Locked:
    pass

# The till app is served by the node.
url = node.start()
assert url.startswith("http://127.0.0.1:"), url
assert node.start() == url, "starting twice is the same app"
with urllib.request.urlopen(url + "v1/health", timeout=10) as r:
    assert r.status == 200, r.status
with urllib.request.urlopen(url + "ui/masuk", timeout=10) as r:
    page = r.read().decode()
    assert 'lang="id"' in page and "Warung Python" in page, page[:400]

# A second node joins the store with an invite from the first, and has its sale.
ticket = node.invite("till", "P2")
assert ticket.startswith("kasir1"), ticket
second = KasirNode.join(data + "-p2", ticket, "P2")
assert second.stock("KOPI") == 37.0, second.stock("KOPI")
assert "Kopi Kapal Api" in second.receipt_text(sale.sale_id, 32)
second.stop()

node.stop()
node.stop()  # idempotent
try:
    node.stock("KOPI")
    raise AssertionError("a call after stop worked")
except KasirError.Stopped:
    pass
del node

# Stopped, the directory is free: open it again in this process; the sale is there.
again = KasirNode.open(data)
assert again.stock("KOPI") == 37.0
again.stop()
print("ok", sale.receipt_no)
