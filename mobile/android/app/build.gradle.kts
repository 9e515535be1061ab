plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "id.kasir.app"
    compileSdk = 35

    defaultConfig {
        applicationId = "id.kasir.app"
        // Android 7 (API 24): what the cheapest tills still run; JNA 5 and the
        // WebView's htmx need nothing newer.
        minSdk = 24
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
        ndk {
            // The ABIs `cargo ndk` builds into src/main/jniLibs (README.md).
            abiFilters += listOf("arm64-v8a", "armeabi-v7a", "x86_64")
        }
    }

    buildTypes {
        release {
            isMinifyEnabled = true
            proguardFiles(getDefaultProguardFile("proguard-android-optimize.txt"), "proguard-rules.pro")
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions {
        jvmTarget = "17"
    }
    packaging {
        // The libraries arrive stripped (scripts/dist); keep the debug info for
        // crash symbolication out of the APK.
        jniLibs.keepDebugSymbols += emptySet()
    }
}

dependencies {
    // The generated bindings (id/kasir/ffi/kasir_ffi.kt) load the library through JNA.
    implementation("net.java.dev.jna:jna:5.14.0@aar")
    implementation("androidx.core:core-ktx:1.13.1")
}
