// The node from Kotlin on a JVM through the generated bindings and JNA: the same
// Kotlin the Android shell compiles. Run by ffi/tests/ffi_kotlin.rs with the data
// directory as the first argument; prints "ok <receipt no>" when every check held.

import id.kasir.ffi.ForeignPrinter
import id.kasir.ffi.KasirException
import id.kasir.ffi.KasirNode
import id.kasir.ffi.NodeEvent
import id.kasir.ffi.NodeListener
import id.kasir.ffi.SaleItem
import id.kasir.ffi.newDatabaseKey
import java.net.CookieManager
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit

fun check(ok: Boolean, what: () -> String) {
    if (!ok) throw AssertionError(what())
}

/** Collects the node's events; called on the node's own (Rust) threads. */
class Heard : NodeListener {
    val events = java.util.Collections.synchronizedList(mutableListOf<NodeEvent>())
    private val lock = Object()

    override fun onEvent(event: NodeEvent) {
        synchronized(lock) {
            events.add(event)
            lock.notifyAll()
        }
    }

    fun waitFor(timeoutMs: Long = 20_000, found: (NodeEvent) -> Boolean): Boolean {
        val until = System.currentTimeMillis() + timeoutMs
        synchronized(lock) {
            while (true) {
                if (events.toList().any(found)) return true
                val left = until - System.currentTimeMillis()
                if (left <= 0) return false
                lock.wait(left)
            }
        }
    }
}

/** The printer transport: on Android a BluetoothSocket, here a queue of jobs. */
class Paper : ForeignPrinter {
    val jobs = LinkedBlockingQueue<Pair<String, ByteArray>>()

    override fun send(printer: String, bytes: ByteArray) {
        jobs.put(printer to bytes)
    }
}

fun get(client: HttpClient, url: String): HttpResponse<String> =
    client.send(HttpRequest.newBuilder(URI.create(url)).build(), HttpResponse.BodyHandlers.ofString())

fun main(args: Array<String>) {
    val data = args[0]
    val node = KasirNode.init(data, "Warung Kotlin", "K1")
    val heard = Heard()
    node.setListener(heard)
    node.addProduct("TEH", "Teh Botol Sosro", 4000, 24.0)
    node.addProduct("ROTI", "Roti Tawar", 15000, 6.0)

    val sale = node.sell(listOf(SaleItem("TEH", 2.0), SaleItem("ROTI", 1.0)), "k-tap-1")
    check(sale.total == 2L * 4000 + 15000 && sale.created) { "sale: $sale" }
    val replay = node.sell(listOf(SaleItem("TEH", 2.0), SaleItem("ROTI", 1.0)), "k-tap-1")
    check(replay.saleId == sale.saleId && !replay.created) { "replayed: $replay" }
    check(node.stock("TEH") == 22.0) { "stock TEH ${node.stock("TEH")}" }
    check(heard.waitFor { it is NodeEvent.SaleCommitted && it.saleId == sale.saleId }) { "events: ${heard.events}" }
    check(heard.waitFor { it is NodeEvent.StockChanged && it.sku == "ROTI" && it.onHand == 5.0 }) { "events: ${heard.events}" }
    val found = node.search("roti", 20u)
    check(found.map { it.sku } == listOf("ROTI") && found[0].price == 15000L) { "search: $found" }
    val struk = node.receiptText(sale.saleId, 32u)
    check(struk.contains("Teh Botol Sosro") && struk.contains("TOTAL")) { struk }
    val escpos = node.receiptEscpos(sale.saleId, "58")
    check(escpos.size > 100 && escpos[0] == 0x1b.toByte() && escpos[1] == '@'.code.toByte()) { "ESC/POS starts ${escpos.take(4)}" }

    try {
        node.sell(listOf(SaleItem("TIDAKADA", 1.0)), null)
        throw AssertionError("an unknown SKU sold")
    } catch (e: KasirException.UnknownSku) {
        check(e.message!!.contains("TIDAKADA")) { "${e.message}" }
    }
    try {
        KasirNode.open(data)
        throw AssertionError("the directory was opened twice")
    } catch (e: KasirException.Locked) {
    }

    // The Kotlin printer transport gets the receipt's ESC/POS bytes from the queue.
    val paper = Paper()
    node.setPrinter(paper, "RPP02N", "58")
    val url = node.start()
    node.printReceipt(sale.saleId)
    val job = paper.jobs.poll(20, TimeUnit.SECONDS) ?: throw AssertionError("nothing printed")
    check(job.first == "RPP02N") { "printer ${job.first}" }
    val text = String(job.second, Charsets.ISO_8859_1)
    check(job.second[0] == 0x1b.toByte() && text.contains("Teh Botol Sosro") && text.contains(sale.receiptNo)) { text }

    // The till app: the WebView's one-time URL opens it; nobody else gets in.
    val base = url.substringBefore("?")
    check(base.startsWith("http://127.0.0.1:") && url.contains("?kunci=")) { url }
    val stranger = HttpClient.newHttpClient()
    check(get(stranger, base + "ui/masuk").statusCode() == 403) { "a stranger got in" }
    val webview = HttpClient.newBuilder()
        .cookieHandler(CookieManager())
        .followRedirects(HttpClient.Redirect.NORMAL)
        .build()
    val page = get(webview, url)
    check(page.statusCode() == 200 && page.body().contains("lang=\"id\"") && page.body().contains("Warung Kotlin")) {
        "${page.statusCode()} ${page.body().take(300)}"
    }

    // A second node joins over an invite and holds the sale.
    val ticket = node.invite("till", "K2")
    // Into a directory encrypted with a key the app keeps.
    val second = KasirNode.joinEncrypted(data + "-k2", ticket, newDatabaseKey(), "K2")
    check(second.stock("TEH") == 22.0) { "joined stock ${second.stock("TEH")}" }
    check(second.receiptText(sale.saleId, 32u).contains("Roti Tawar")) { "joined receipt" }
    second.stop()
    second.close()

    node.stop()
    node.stop()
    try {
        node.stock("TEH")
        throw AssertionError("a call after stop worked")
    } catch (e: KasirException.Stopped) {
    }
    node.close()
    val again = KasirNode.open(data)
    check(again.stock("TEH") == 22.0) { "reopened" }
    again.stop()
    again.close()

    // Encrypted at rest with a key the app keeps (on Android: wrapped by the Keystore).
    val key = newDatabaseKey()
    check(key.size == 32) { "key of ${key.size} bytes" }
    val sealedDir = data + "-encrypted"
    val sealed = KasirNode.initEncrypted(sealedDir, "Warung Kotlin Rahasia", "E1", key)
    sealed.addProduct("MADU", "Madu Hutan Sumbawa", 85000, 3.0)
    sealed.sell(listOf(SaleItem("MADU", 1.0)), "tap-e")
    sealed.stop()
    sealed.close()
    java.io.File(sealedDir).listFiles()!!.filter { it.isFile }.forEach {
        check(!String(it.readBytes(), Charsets.ISO_8859_1).contains("Madu Hutan")) { "${it.name} is readable" }
    }
    try {
        KasirNode.openEncrypted(sealedDir, newDatabaseKey())
        throw AssertionError("opened with another key")
    } catch (e: KasirException.KeyUnavailable) {
    }
    val reopened = KasirNode.openEncrypted(sealedDir, key)
    check(reopened.stock("MADU") == 2.0) { "encrypted stock ${reopened.stock("MADU")}" }
    reopened.stop()
    reopened.close()
    println("ok ${sale.receiptNo}")
}
