package id.kasir.app

import android.Manifest
import android.app.Activity
import android.app.AlertDialog
import android.content.ComponentName
import android.content.Context
import android.content.Intent
import android.content.ServiceConnection
import android.net.Uri
import android.os.Build
import android.os.Bundle
import android.os.IBinder
import android.webkit.WebResourceRequest
import android.webkit.WebView
import android.webkit.WebViewClient
import android.widget.EditText
import android.widget.Toast

/**
 * A full-screen WebView on the till app the node serves on 127.0.0.1. The URL comes
 * from [KasirService] with a one-time code: other apps on the phone reach the port
 * too, but not the app. Links leaving the till (wa.me, intent:) go to the OS.
 */
class MainActivity : Activity() {
    private lateinit var web: WebView
    private var service: KasirService.Local? = null

    private val connection = object : ServiceConnection {
        override fun onServiceConnected(name: ComponentName?, binder: IBinder?) {
            service = binder as KasirService.Local
            binder.url(::show)
        }

        override fun onServiceDisconnected(name: ComponentName?) {
            service = null
        }
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        web = WebView(this).apply {
            settings.javaScriptEnabled = true // htmx
            settings.domStorageEnabled = true
            settings.allowFileAccess = false
            settings.allowContentAccess = false
            webViewClient = object : WebViewClient() {
                override fun shouldOverrideUrlLoading(view: WebView, request: WebResourceRequest): Boolean {
                    val url = request.url
                    if (url.host == "127.0.0.1" || url.host == "localhost") return false
                    startActivity(Intent(Intent.ACTION_VIEW, url))
                    return true
                }
            }
        }
        setContentView(web)
        if (Build.VERSION.SDK_INT >= 31) {
            requestPermissions(arrayOf(Manifest.permission.BLUETOOTH_CONNECT, Manifest.permission.POST_NOTIFICATIONS), 1)
        }
        val intent = Intent(this, KasirService::class.java)
        startForegroundService(intent)
        bindService(intent, connection, Context.BIND_AUTO_CREATE)
    }

    private fun show(result: Result<String>) {
        result.fold(
            onSuccess = { web.loadUrl(it) },
            onFailure = {
                if (it is id.kasir.ffi.KasirException.NotInitialised) firstRun()
                else Toast.makeText(this, it.message, Toast.LENGTH_LONG).show()
            },
        )
    }

    /** No store on this phone yet: a new one, or join the shop's with an invite. */
    private fun firstRun() {
        val input = EditText(this).apply { hint = "Nama toko, atau tempel undangan kasir1…" }
        AlertDialog.Builder(this)
            .setTitle("Selamat datang di Kasir")
            .setView(input)
            .setCancelable(false)
            .setPositiveButton("Mulai") { _, _ ->
                val text = input.text.toString().trim()
                val ticket = text.takeIf { it.startsWith("kasir1") }
                service?.setUp(if (ticket == null) text else null, ticket, ::show)
            }
            .show()
    }

    @Deprecated("Back inside the till app first")
    override fun onBackPressed() {
        if (web.canGoBack()) web.goBack() else super.onBackPressed()
    }

    override fun onDestroy() {
        unbindService(connection)
        super.onDestroy()
    }
}
