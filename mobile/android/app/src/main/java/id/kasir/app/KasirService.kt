package id.kasir.app

import android.app.Notification
import android.app.NotificationChannel
import android.app.NotificationManager
import android.app.PendingIntent
import android.app.Service
import android.content.Intent
import android.content.pm.ServiceInfo
import android.net.wifi.WifiManager
import android.os.Binder
import android.os.Build
import android.os.Handler
import android.os.IBinder
import android.os.Looper
import id.kasir.ffi.KasirException
import id.kasir.ffi.KasirNode
import id.kasir.ffi.NodeEvent
import id.kasir.ffi.NodeListener
import java.io.File
import java.util.concurrent.Executors

/**
 * The foreground service that owns the node: it keeps LAN sync alive while the
 * cashier is in another app, holds the multicast lock mDNS needs, and hands the till
 * app's one-time URL to [MainActivity]. Node calls block, so they run on [worker];
 * the node's events arrive on its own threads and are posted to the main thread.
 */
class KasirService : Service(), NodeListener {
    private val worker = Executors.newSingleThreadExecutor()
    private val main = Handler(Looper.getMainLooper())
    private var node: KasirNode? = null
    /** Set when the phone holds no store yet (only touched on [worker]). */
    private var firstRun: KasirException? = null
    private var multicast: WifiManager.MulticastLock? = null
    private val waiting = mutableListOf<(Result<String>) -> Unit>()

    inner class Local : Binder() {
        /** Calls back on the main thread with a fresh one-time URL, or why there is none. */
        fun url(callback: (Result<String>) -> Unit) = this@KasirService.url(callback)

        /** Creates a store (first run) or joins one with an invite, then serves. */
        fun setUp(storeName: String?, ticket: String?, callback: (Result<String>) -> Unit) =
            this@KasirService.setUp(storeName, ticket, callback)
    }

    override fun onBind(intent: Intent?): IBinder = Local()

    override fun onCreate() {
        super.onCreate()
        val manager = getSystemService(NotificationManager::class.java)
        manager.createNotificationChannel(
            NotificationChannel(CHANNEL, getString(R.string.channel_name), NotificationManager.IMPORTANCE_LOW),
        )
        val notification = notification(getString(R.string.starting))
        if (Build.VERSION.SDK_INT >= 29) {
            startForeground(NOTIFICATION, notification, ServiceInfo.FOREGROUND_SERVICE_TYPE_DATA_SYNC)
        } else {
            startForeground(NOTIFICATION, notification)
        }
        multicast = getSystemService(WifiManager::class.java)?.createMulticastLock("kasir-mdns")?.apply {
            setReferenceCounted(false)
            acquire()
        }
        worker.execute { openIfThere() }
    }

    override fun onStartCommand(intent: Intent?, flags: Int, startId: Int): Int = START_STICKY

    private val dataDir get() = File(filesDir, "kasir").path

    /** The database key, wrapped by the Keystore, beside (not inside) the data directory. */
    private val vault by lazy { KeyVault(File(filesDir, "kasir-db.key")) }

    /** Opens the store kept on this phone, if there is one (else the activity asks). */
    private fun openIfThere() {
        try {
            // A store made before encryption at rest opens as it is.
            serve(if (vault.exists) KasirNode.openEncrypted(dataDir, vault.open()) else KasirNode.open(dataDir))
        } catch (e: KasirException.NotInitialised) {
            // First run: MainActivity asks for a store name or an invite.
            firstRun = e
        } catch (e: KasirException) {
            answer(Result.failure(e))
        }
    }

    private fun setUp(storeName: String?, ticket: String?, callback: (Result<String>) -> Unit) {
        synchronized(waiting) { waiting.add(callback) }
        worker.execute {
            try {
                val opened = when {
                    ticket != null -> KasirNode.joinEncrypted(dataDir, ticket, vault.create(), null)
                    else -> KasirNode.initEncrypted(dataDir, storeName ?: "Toko Saya", "K1", vault.create())
                }
                serve(opened)
            } catch (e: KasirException) {
                answer(Result.failure(e))
            }
        }
    }

    /** On [worker]: listener, the Bluetooth printer transport, then the till app and sync. */
    private fun serve(opened: KasirNode) {
        node = opened
        firstRun = null
        opened.setListener(this)
        opened.setPrinterTransport(SppPrinter(this))
        answer(Result.success(opened.start()))
    }

    private fun url(callback: (Result<String>) -> Unit) {
        worker.execute {
            val n = node
            val none = firstRun
            if (n == null && none != null) {
                main.post { callback(Result.failure(none)) }
                return@execute
            }
            if (n == null) {
                synchronized(waiting) { waiting.add(callback) }
                return@execute
            }
            val result = try {
                Result.success(n.start()) // a running node mints a new one-time URL
            } catch (e: KasirException) {
                Result.failure(e)
            }
            main.post { callback(result) }
        }
    }

    private fun answer(result: Result<String>) {
        val callbacks = synchronized(waiting) { waiting.toList().also { waiting.clear() } }
        main.post { callbacks.forEach { it(result) } }
    }

    /** Called on the node's threads. */
    override fun onEvent(event: NodeEvent) {
        val text = when (event) {
            is NodeEvent.SyncState ->
                if (event.unsyncedDocs > 0uL) {
                    getString(R.string.unsynced, event.unsyncedDocs.toInt())
                } else {
                    getString(R.string.running_peers, event.connectedPeers.toInt())
                }
            is NodeEvent.PrintFailed -> getString(R.string.print_failed, event.error)
            else -> return
        }
        main.post {
            getSystemService(NotificationManager::class.java).notify(NOTIFICATION, notification(text))
        }
    }

    override fun onDestroy() {
        // Stop on the worker (it may block for a moment), then let go of the lock.
        worker.execute {
            node?.let {
                try {
                    it.stop()
                } catch (_: KasirException) {
                }
                it.close()
            }
            node = null
        }
        worker.shutdown()
        multicast?.release()
        super.onDestroy()
    }

    private fun notification(text: String): Notification {
        val open = PendingIntent.getActivity(
            this, 0, Intent(this, MainActivity::class.java), PendingIntent.FLAG_IMMUTABLE,
        )
        return Notification.Builder(this, CHANNEL)
            .setContentTitle(getString(R.string.app_name))
            .setContentText(text)
            .setSmallIcon(android.R.drawable.stat_notify_sync)
            .setContentIntent(open)
            .setOngoing(true)
            .build()
    }

    companion object {
        const val CHANNEL = "kasir"
        const val NOTIFICATION = 1
    }
}
