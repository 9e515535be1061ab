// The Kasir Android shell: a foreground service owning the node, a WebView on its
// till app, and a Bluetooth SPP printer transport. Build: see README.md here.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}
dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}
rootProject.name = "kasir-android"
include(":app")
