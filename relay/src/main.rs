//! `kasir-relay`: the cloud hub. Its commands arrive with the relay milestone; today it
//! only reports its version so the workspace builds and ships the binary name.

use clap::Parser;

/// Kasir's cloud relay.
#[derive(Parser)]
#[command(
    name = "kasir-relay",
    version,
    about = "Kasir cloud relay (PostgreSQL, Kafka, head-office API)"
)]
struct Cli {}

fn main() {
    let _ = Cli::parse();
    eprintln!("kasir-relay: no commands yet (see the relay milestone); try --help");
    std::process::exit(2);
}
