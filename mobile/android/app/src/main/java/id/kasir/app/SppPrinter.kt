package id.kasir.app

import android.annotation.SuppressLint
import android.bluetooth.BluetoothManager
import android.bluetooth.BluetoothSocket
import android.content.Context
import id.kasir.ffi.ForeignPrinter
import id.kasir.ffi.PrinterException
import java.io.IOException
import java.util.UUID
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import java.util.concurrent.TimeoutException

/**
 * Bluetooth Classic (SPP) receipt printers: most cheap 58 mm printers sold in
 * Indonesia. The node keeps the queue, the retries and the ESC/POS bytes; this only
 * moves one job's bytes to the paired printer named in `app://NAME`, on the node's
 * print thread, within a time limit (the node cannot interrupt a stuck call).
 */
class SppPrinter(context: Context) : ForeignPrinter {
    private val adapter = context.getSystemService(BluetoothManager::class.java)?.adapter
    private val connector = Executors.newSingleThreadExecutor()

    @SuppressLint("MissingPermission") // BLUETOOTH_CONNECT is asked for by MainActivity.
    override fun send(printer: String, bytes: ByteArray) {
        val bt = adapter ?: throw PrinterException.Failed("perangkat ini tidak punya Bluetooth")
        if (!bt.isEnabled) throw PrinterException.Failed("Bluetooth mati")
        val device = bt.bondedDevices.firstOrNull {
            it.name.equals(printer, ignoreCase = true) || it.address.equals(printer, ignoreCase = true)
        } ?: throw PrinterException.Failed("printer $printer belum dipasangkan (Setelan → Bluetooth)")
        bt.cancelDiscovery() // discovery slows every connection down
        val socket: BluetoothSocket = device.createRfcommSocketToServiceRecord(SPP)
        try {
            // connect() has no timeout of its own: bound it, and close the socket to end it.
            val connecting = connector.submit<Unit> { socket.connect() }
            try {
                connecting.get(CONNECT_SECONDS, TimeUnit.SECONDS)
            } catch (e: TimeoutException) {
                throw PrinterException.Failed("printer $printer tidak menjawab")
            }
            socket.outputStream.apply {
                // Small writes: the printers' buffers are a few KiB.
                var at = 0
                while (at < bytes.size) {
                    val n = minOf(CHUNK, bytes.size - at)
                    write(bytes, at, n)
                    at += n
                }
                flush()
            }
        } catch (e: PrinterException) {
            throw e
        } catch (e: Exception) {
            throw PrinterException.Failed("printer $printer: ${e.cause?.message ?: e.message}")
        } finally {
            try {
                socket.close()
            } catch (_: IOException) {
            }
        }
    }

    companion object {
        /** The Serial Port Profile's service UUID. */
        val SPP: UUID = UUID.fromString("00001101-0000-1000-8000-00805F9B34FB")
        const val CONNECT_SECONDS = 8L
        const val CHUNK = 512
    }
}
