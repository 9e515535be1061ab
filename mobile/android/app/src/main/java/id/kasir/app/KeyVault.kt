package id.kasir.app

import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import id.kasir.ffi.newDatabaseKey
import java.io.File
import java.security.KeyStore
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

/**
 * The till database's key, kept as the node never keeps it: wrapped (AES-GCM) by a key
 * that lives in the Android Keystore and never leaves it, in a file outside the node's
 * data directory. A copy of the data directory (a backup tool, a lost phone read over
 * USB) is useless without this phone's Keystore.
 */
class KeyVault(private val wrapped: File) {
    /** Whether this phone holds a database key (an encrypted store). */
    val exists get() = wrapped.exists()

    /**
     * The database key for `KasirNode.initEncrypted`/`joinEncrypted`: a new one, stored
     * wrapped, or the one a first run that did not finish (a join cut short) made.
     */
    fun create(): ByteArray {
        if (exists) return open()
        val key = newDatabaseKey()
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.ENCRYPT_MODE, wrappingKey())
        val sealed = cipher.doFinal(key)
        val tmp = File(wrapped.path + ".tmp")
        tmp.writeBytes(byteArrayOf(cipher.iv.size.toByte()) + cipher.iv + sealed)
        check(tmp.renameTo(wrapped)) { "cannot store the database key" }
        return key
    }

    /** The database key for `KasirNode.openEncrypted`. */
    fun open(): ByteArray {
        val bytes = wrapped.readBytes()
        val ivLength = bytes[0].toInt()
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(
            Cipher.DECRYPT_MODE,
            wrappingKey(),
            GCMParameterSpec(128, bytes, 1, ivLength),
        )
        return cipher.doFinal(bytes, 1 + ivLength, bytes.size - 1 - ivLength)
    }

    private fun wrappingKey(): SecretKey {
        val store = KeyStore.getInstance(KEYSTORE).apply { load(null) }
        (store.getKey(ALIAS, null) as? SecretKey)?.let { return it }
        val generator = KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, KEYSTORE)
        generator.init(
            KeyGenParameterSpec.Builder(ALIAS, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
                .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
                .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
                .setKeySize(256)
                .build(),
        )
        return generator.generateKey()
    }

    private companion object {
        const val KEYSTORE = "AndroidKeyStore"
        const val ALIAS = "kasir-database-key"
        const val TRANSFORMATION = "AES/GCM/NoPadding"
    }
}
