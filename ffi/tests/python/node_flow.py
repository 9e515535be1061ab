"""The node from Python through the generated bindings (a real foreign caller).

Run by ffi/tests/ffi_python.rs with the bindings directory on PYTHONPATH and the data
directory as the first argument.
"""

import http.cookiejar
import sys
import threading
import urllib.error
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

    def wait(self, found, timeout=20):
        with self.cond:
            return self.cond.wait_for(lambda: any(found(e) for e in self.events), timeout)


class Refusing(kasir_ffi.ForeignPrinter):
    """A Bluetooth printer that is out of paper."""

    def __init__(self):
        self.tries = 0

    def send(self, printer, data):
        self.tries += 1
        raise kasir_ffi.PrinterError.Failed("kertas habis")


node = KasirNode.init(data, "Warung Python", "P1")
heard = Heard()
node.set_listener(heard)
node.add_product("KOPI", "Kopi Kapal Api", 1500, 40.0)
node.add_product("GULA", "Gulaku 1kg", 17500, 5.0)

sale = node.sell([SaleItem(sku="KOPI", qty=3.0), SaleItem(sku="GULA", qty=1.0)], "tap-1")
assert sale.total == 3 * 1500 + 17500, sale
assert sale.change == 0 and sale.created, sale
assert sale.receipt_no, sale
# The same client id again (a retry after a timeout) sells nothing.
again = node.sell([SaleItem(sku="KOPI", qty=3.0), SaleItem(sku="GULA", qty=1.0)], "tap-1")
assert again.sale_id == sale.sale_id and not again.created, again
assert node.stock("KOPI") == 37.0, node.stock("KOPI")
assert heard.wait(lambda e: e.is_SALE_COMMITTED() and e.sale_id == sale.sale_id), heard.events
assert heard.wait(lambda e: e.is_STOCK_CHANGED() and e.sku == "GULA" and e.on_hand == 4.0), heard.events
told = [e for e in heard.events if e.is_SALE_COMMITTED()]
assert len(told) == 1 and told[0].total == sale.total and told[0].till_code == "P1", told
assert node.stock("GULA") == 4.0, node.stock("GULA")
struk = node.receipt_text(sale.sale_id, 32)
assert "Kopi Kapal Api" in struk and "TOTAL" in struk, struk
found = node.search("kopi")
assert [p.sku for p in found] == ["KOPI"] and found[0].on_hand == 37.0, found
status = node.status()
assert status.store_name == "Warung Python" and status.till_code == "P1", status
assert status.url is None and status.sales == 1 and status.products == 2, status

# Errors are exceptions named after the API's codes.
try:
    node.sell([SaleItem(sku="TIDAKADA", qty=1.0)])
    raise AssertionError("an unknown SKU sold")
except KasirError.UnknownSku as e:
    assert "TIDAKADA" in str(e), e
try:
    node.sell([SaleItem(sku="KOPI", qty=float("nan"))])
    raise AssertionError("NaN sold")
except KasirError.InvalidRequest:
    pass

# A second node on the same directory is refused while this one holds it.
try:
    KasirNode.open(data)
    raise AssertionError("the directory was opened twice")
except KasirError.Locked:
    pass

# The till app is served to whoever opens the one-time URL first, and to nobody else.
url = node.start()
base = url.split("?")[0]
assert base.startswith("http://127.0.0.1:") and "?kunci=" in url, url
assert node.status().url == base
with urllib.request.urlopen(base + "v1/health", timeout=10) as r:
    assert r.status == 200, r.status
try:
    urllib.request.urlopen(base + "ui/masuk", timeout=10)
    raise AssertionError("another app got in without the code")
except urllib.error.HTTPError as e:
    assert e.code == 403, e.code
webview = urllib.request.build_opener(
    urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
with webview.open(url, timeout=10) as r:
    page = r.read().decode()
    assert 'lang="id"' in page and "Warung Python" in page, page[:400]
with webview.open(base + "ui/masuk", timeout=10) as r:
    assert r.status == 200
try:
    urllib.request.urlopen(url, timeout=10)
    raise AssertionError("a spent code opened the app again")
except urllib.error.HTTPError as e:
    assert e.code == 403, e.code
second_url = node.start()
assert second_url != url and second_url.split("?")[0] == base, second_url
# Even a client without a cookie jar gets a page from it (not a redirect it would
# follow without the grant).
with urllib.request.urlopen(second_url, timeout=10) as r:
    page = r.read().decode()
    assert r.status == 200 and 'lang="id"' in page and "Warung Python" in page, page[:300]

# A printer the app refuses: the node retries, then says so as an event.
refusing = Refusing()
node.set_printer(refusing, "RPP02N", "58")
node.print_receipt(sale.sale_id)
assert heard.wait(lambda e: e.is_PRINT_FAILED() and e.what == sale.sale_id, timeout=40), heard.events
failed = [e for e in heard.events if e.is_PRINT_FAILED()][0]
assert failed.printer == "app://RPP02N" and "kertas habis" in failed.error, failed
assert refusing.tries == 5, refusing.tries

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

# Encrypted at rest with a key the app keeps (an Android app wraps it with the Keystore).
import os
sealed_dir = data + "-encrypted"
key = kasir_ffi.new_database_key()
assert len(key) == 32
sealed = KasirNode.init_encrypted(sealed_dir, "Warung Rahasia", "E1", key)
sealed.add_product("MADU", "Madu Hutan Sumbawa", 85000, 3.0)
kept = sealed.sell([SaleItem(sku="MADU", qty=1.0)], "tap-e")
sealed.stop()
del sealed
for name in os.listdir(sealed_dir):
    path = os.path.join(sealed_dir, name)
    if os.path.isfile(path):
        raw = open(path, "rb").read()
        assert b"Madu Hutan" not in raw, path
        assert kept.receipt_no.encode() not in raw, path
for wrong in (None, kasir_ffi.new_database_key()):
    try:
        KasirNode.open(sealed_dir) if wrong is None else KasirNode.open_encrypted(sealed_dir, wrong)
        raise AssertionError("opened without its key")
    except KasirError.KeyUnavailable:
        pass
try:
    KasirNode.open_encrypted(sealed_dir, b"short")
    raise AssertionError("a 5-byte key was taken")
except KasirError.InvalidRequest:
    pass
sealed = KasirNode.open_encrypted(sealed_dir, key)
assert sealed.stock("MADU") == 2.0
sealed.stop()
print("ok", sale.receipt_no)
