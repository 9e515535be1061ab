//! `uniffi-bindgen generate --library libkasir_ffi.so --language kotlin --out-dir OUT`:
//! UniFFI's generator, built with the exact UniFFI version the library uses.

fn main() {
    uniffi::uniffi_bindgen_main()
}
