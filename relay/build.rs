//! Rebuilds the relay when a migration is added or changed: `sqlx::migrate!` embeds
//! `../migrations` at compile time, and cargo would not look at that directory itself.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
