//! `kasir`: the till command line. Every data command takes `--json`.
//!
//! Commands open the data directory directly, or, when `kasir run` holds it, go through
//! the daemon's HTTP API (found via `daemon.json`), so they work either way.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use kasir_crdt::Qty;
use kasir_crdt::money::format_rupiah;
use kasir_crdt::records::{CashMoveKind, MovementKind, Payment};
use kasir_node::api::{self, InitOptions, MovementInput, ProductInput, SaleItem, SaleRequest};
use kasir_node::daemon::{self, RunOptions};
use kasir_node::lan::NetConfig;
use kasir_node::vault::{self, Encrypt, KeyHolder};
use kasir_node::{Node, import};
use serde::Serialize;
use serde_json::json;

use crate::client::Backend;

mod client;
mod demo;
mod join;
mod prompt;
mod render;

#[derive(Parser)]
#[command(
    name = "kasir",
    version,
    about = "Kasir: an offline-first point of sale for Indonesian shops"
)]
struct Cli {
    /// The node's data directory.
    #[arg(long, global = true, env = "KASIR_DATA", default_value = "kasir-data")]
    data: PathBuf,
    /// Print one JSON document on stdout.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum InviteAction {
    /// Cancel an unused ticket: no device can join with it any more.
    Cancel {
        /// The ticket (`kasir1…`).
        ticket: String,
    },
}

/// Encryption at rest for a new data directory (`init`, `join`).
#[derive(Args, Debug)]
struct EncryptArgs {
    /// Encrypt the data directory at rest (SQLCipher), with a new key in a key file
    /// outside it.
    #[arg(long)]
    encrypt: bool,
    /// Where to keep the new key (default: a new file under `$KASIR_KEY_DIR` or
    /// `~/.config/kasir/keys`).
    #[arg(long, requires = "encrypt")]
    key_file: Option<PathBuf>,
}

impl EncryptArgs {
    fn choice(self) -> Option<Encrypt> {
        self.encrypt
            .then(|| Encrypt::KeyFile(self.key_file.unwrap_or_else(vault::default_key_file)))
    }
}

#[derive(Subcommand)]
enum Command {
    /// Create a new store with this device as its owner.
    Init {
        /// The shop's name.
        #[arg(long)]
        store_name: String,
        /// This till's short code (e.g. T1).
        #[arg(long)]
        till_code: String,
        /// The owner's name, for the owner's user (with `--owner-pin`).
        #[arg(long, default_value = "Pemilik")]
        owner_name: String,
        /// The owner's PIN (4 to 12 digits): creates the owner's user. Without it, on a
        /// terminal the PIN is asked for (not echoed); otherwise the store has no user
        /// until `kasir user add`, so scripts never wait for input.
        #[arg(long)]
        owner_pin: Option<String>,
        #[command(flatten)]
        encryption: EncryptArgs,
    },
    /// Encrypt this plain data directory at rest (stop `kasir run` first): the database
    /// and the device key, with a new key kept in a key file outside the directory.
    Encrypt {
        /// Where to keep the new key (default: a new file under `$KASIR_KEY_DIR` or
        /// `~/.config/kasir/keys`).
        #[arg(long)]
        key_file: Option<PathBuf>,
    },
    /// Back up this till into FILE, sealed with a passphrase ($KASIR_BACKUP_PASSPHRASE, or
    /// asked); works while `kasir run` sells.
    Backup {
        /// The new backup file.
        file: PathBuf,
    },
    /// Make this (new, empty) data directory the till a backup was taken from, or (with
    /// `--from-relay`) the till head office replaced: the store's documents come from the
    /// relay and the other tills.
    Restore {
        /// The backup file.
        #[arg(required_unless_present = "from_relay")]
        file: Option<PathBuf>,
        /// The ticket head office made for the replaced till
        /// (`POST /v1/stores/{store}/tills/{till_code}/replace`).
        #[arg(long, conflicts_with = "file")]
        from_relay: Option<String>,
        #[command(flatten)]
        encryption: EncryptArgs,
    },
    /// People at the till: add, list, disable, set a PIN.
    #[command(subcommand)]
    User(UserCmd),
    /// Print this device's token, for scripts calling the HTTP API (it acts with the
    /// device's role; keep it as secret as the data directory).
    Token,
    /// Products: add, import, search.
    #[command(subcommand)]
    Product(ProductCmd),
    /// Customers and kasbon (sales on credit): add, list who owes what, take a payment.
    #[command(subcommand)]
    Customer(CustomerCmd),
    /// Stock levels, or a stock movement.
    Stock(StockArgs),
    /// Record a sale.
    Sell {
        /// `CODE[xQTY][:DISCOUNT]`: `INDOMIE`, `INDOMIEx3`, `BERASx0,5`, `KOPIx2:1000`, `KOPIx2:10%`.
        #[arg(long = "item", required = true)]
        items: Vec<String>,
        /// Payment `METHOD=AMOUNT` (cash, qris, card, transfer...); exact cash by default.
        #[arg(long = "pay")]
        payments: Vec<String>,
        /// Idempotency key: the same id again returns the first sale.
        #[arg(long)]
        client_id: Option<String>,
        /// Cashier name.
        #[arg(long)]
        cashier: Option<String>,
        /// The customer (needed for `--pay kasbon=AMOUNT`, a sale on credit).
        #[arg(long)]
        customer: Option<String>,
        /// When the kasbon falls due (YYYY-MM-DD).
        #[arg(long)]
        due: Option<String>,
        /// A discount on the whole cart: rupiah (`5.000`) or percent (`10%`), spread
        /// over the lines.
        #[arg(long)]
        discount: Option<String>,
        #[command(flatten)]
        approver: ApproverArgs,
    },
    /// Void a whole sale (its stock comes back).
    Void {
        /// The sale id.
        sale_id: String,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        approver: ApproverArgs,
    },
    /// Refund part of a sale (its goods come back, its money goes out).
    Refund {
        /// The sale id.
        sale_id: String,
        /// A returned item `SKU` or `SKUxQTY` (repeatable).
        #[arg(long = "item", required = true)]
        items: Vec<String>,
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        approver: ApproverArgs,
    },
    /// The day's reports.
    #[command(subcommand)]
    Report(ReportCmd),
    /// Who did what, when, on which till, approved by whom.
    Audit {
        /// Business date YYYY-MM-DD (today when omitted).
        #[arg(long)]
        date: Option<String>,
    },
    /// List sales.
    Sales {
        /// Business date YYYY-MM-DD (all dates when omitted).
        #[arg(long)]
        date: Option<String>,
    },
    /// Print a receipt: as text, as ESC/POS bytes into a file, or on a printer.
    Receipt {
        /// The sale id.
        sale_id: String,
        /// Columns: 32 (58 mm) or 48 (80 mm); 42 and 64 too. Text: 32 by default.
        #[arg(long)]
        width: Option<usize>,
        /// Write the receipt's ESC/POS bytes to this file (`-`: standard output).
        #[arg(long, value_name = "FILE")]
        escpos: Option<PathBuf>,
        /// Print on this printer: tcp://HOST:9100, file:///dev/usb/lp0 or ble://NAME.
        #[arg(long, value_name = "URI")]
        printer: Option<String>,
        /// ESC/POS printer profile: 58, 58b, 80, 80b or 80-512 (default: from --width).
        #[arg(long)]
        profile: Option<String>,
        /// A QR code to print at the end (static QRIS payload or e-receipt link).
        #[arg(long)]
        qr: Option<String>,
        /// Send QR codes as raster images (printers without native QR).
        #[arg(long)]
        raster_qr: bool,
        /// Pulse the cash drawer (original receipt of a cash sale only).
        #[arg(long)]
        drawer: bool,
        /// Mark the printed receipt as a copy (SALINAN).
        #[arg(long)]
        reprint: bool,
    },
    /// Cash shifts: buka/tutup kasir.
    #[command(subcommand)]
    Shift(ShiftCmd),
    /// The store profile: name, address, NPWP, tax rule, rounding, receipt texts.
    #[command(subcommand)]
    Store(StoreCmd),
    /// Run the daemon: peer sync and the HTTP API.
    Run {
        /// Sync endpoint address (QUIC), e.g. 0.0.0.0:7070.
        #[arg(long, default_value = "0.0.0.0:0")]
        listen: std::net::SocketAddr,
        /// HTTP API address, e.g. 127.0.0.1:8080.
        #[arg(long)]
        http: Option<std::net::SocketAddr>,
        /// A peer to sync with: `ENDPOINT_ID@HOST:PORT` (repeatable).
        #[arg(long = "peer")]
        peers: Vec<String>,
        /// The cloud relay: `ENDPOINT_ID@HOST:PORT`.
        #[arg(long)]
        relay: Option<String>,
        /// Do not discover peers with mDNS.
        #[arg(long)]
        no_mdns: bool,
        /// A host name the HTTP API answers to besides its addresses and `localhost`
        /// (repeatable); requests naming any other host are refused.
        #[arg(long = "host-name")]
        host_names: Vec<String>,
        /// Let other machines read `/metrics` (only this machine may by default).
        #[arg(long)]
        metrics_public: bool,
        /// Take backups into this directory (a USB stick, an SD card), sealed with
        /// $KASIR_BACKUP_PASSPHRASE.
        #[arg(long)]
        backup_dir: Option<PathBuf>,
        /// Time between backups: `30s`, `15m`, `1h`.
        #[arg(long, default_value = "1h", value_parser = parse_every, requires = "backup_dir")]
        backup_every: Duration,
        /// How many backups to keep in the directory.
        #[arg(long, default_value_t = 48, requires = "backup_dir")]
        backup_keep: usize,
    },
    /// Make a one-time ticket for a new till to join this store (or cancel one).
    #[command(args_conflicts_with_subcommands = true)]
    Invite {
        /// `kasir invite cancel TICKET`.
        #[command(subcommand)]
        action: Option<InviteAction>,
        /// The till code the new device gets.
        #[arg(long)]
        till_code: Option<String>,
        /// `till` or `manager`.
        #[arg(long)]
        role: Option<String>,
    },
    /// Adopt this data directory's history from before signed changes (once, as this
    /// device; the daemon must be stopped).
    Upgrade,
    /// Join a store with a ticket, through any online member.
    Join {
        /// The ticket from `kasir invite`.
        ticket: String,
        /// The till code to ask for.
        #[arg(long)]
        till_code: Option<String>,
        #[command(flatten)]
        encryption: EncryptArgs,
    },
    /// Revoke a device: it is refused from now on.
    Revoke {
        /// Its endpoint id.
        endpoint_id: String,
    },
    /// Identity, peers and sync state.
    Status,
    /// Rebuild the read tables from the documents.
    Rebuild,
    /// Compact every document into one snapshot.
    Compact,
    /// A whole store on embedded defaults, selling.
    Demo {
        /// Number of sales to simulate.
        #[arg(long, default_value_t = 200)]
        sales: usize,
        /// End after the check instead of serving the three tills' apps until Ctrl-C.
        #[arg(long)]
        exit: bool,
    },
    /// Product recognition from photos: enrol, recognise, correct.
    #[command(subcommand)]
    Ml(MlCmd),
}

#[derive(Subcommand)]
enum MlCmd {
    /// Add reference photos of a product to the store's gallery (shared by every till).
    Enroll {
        /// The product's SKU.
        #[arg(long)]
        sku: String,
        /// Photos (JPEG or PNG).
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
    /// Recognise the product in a photo (asking the relay when this store's photos
    /// do not know it).
    Recognize {
        /// The photo (JPEG or PNG).
        image: PathBuf,
        /// How many candidates to list.
        #[arg(long, default_value_t = 3)]
        top: usize,
        /// How long to wait for the relay, in ms (0: never ask). Default:
        /// `KASIR_ML_FALLBACK_MS`, else 300.
        #[arg(long)]
        fallback_ms: Option<u64>,
    },
    /// Record a cashier's correction: this photo shows SKU (also enrols it).
    Feedback {
        /// The photo (JPEG or PNG).
        #[arg(long)]
        image: PathBuf,
        /// The product it really shows.
        #[arg(long)]
        sku: String,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add a user (a manager or owner till).
    Add {
        /// Their name (they log in with it).
        #[arg(long)]
        name: String,
        /// cashier, supervisor, manager or owner.
        #[arg(long)]
        role: String,
        /// Their PIN, 4 to 12 digits.
        #[arg(long)]
        pin: String,
    },
    /// List the users.
    List,
    /// Disable a user: no more logins, and their sessions end on every till.
    Disable {
        /// The user's id.
        user_id: String,
    },
    /// Set a user's PIN.
    SetPin {
        /// The user's id.
        user_id: String,
        /// The new PIN.
        #[arg(long)]
        pin: String,
    },
}

#[derive(Subcommand)]
enum CustomerCmd {
    /// Add a customer, or change one (`--id`).
    Add {
        /// The customer to change.
        #[arg(long)]
        id: Option<String>,
        /// Name.
        #[arg(long)]
        name: String,
        /// Phone (WhatsApp).
        #[arg(long)]
        phone: Option<String>,
        /// Member tier.
        #[arg(long)]
        tier: Option<String>,
    },
    /// Who owes what, overdue first.
    List {
        /// Only names or phones containing this.
        #[arg(long)]
        q: Option<String>,
    },
    /// A payment against a customer's kasbon.
    Pay {
        /// The customer's id.
        customer_id: String,
        /// How much (`50.000`).
        #[arg(long)]
        amount: String,
        /// How (`cash`, `qris`…).
        #[arg(long)]
        method: Option<String>,
        /// A non-cash payment's reference.
        #[arg(long)]
        reference: Option<String>,
    },
}

/// `kasir product add`'s flags (boxed: the other product commands are small).
#[derive(clap::Args)]
struct ProductAddArgs {
    /// SKU.
    #[arg(long)]
    sku: String,
    /// Name.
    #[arg(long)]
    name: String,
    /// Price in rupiah (`12500` or `12.500`).
    #[arg(long)]
    price: String,
    /// Barcode (repeatable).
    #[arg(long = "barcode")]
    barcodes: Vec<String>,
    /// Cost in rupiah.
    #[arg(long)]
    cost: Option<String>,
    /// Set on-hand stock to this quantity.
    #[arg(long)]
    stock: Option<String>,
    /// Stock below which the product is low (alerts at head office too).
    #[arg(long)]
    min_stock: Option<String>,
    /// Category.
    #[arg(long)]
    category: Option<String>,
    /// Unit (pcs, kg, ...).
    #[arg(long)]
    unit: Option<String>,
    /// Tax code: standard (the store's rule), exempt (sembako: beras, telur,
    /// sayur…), ppn, ppn_full (luxury goods), pbjt (ready food).
    #[arg(long)]
    tax_code: Option<String>,
    /// Another unit it is sold in, `NAME=PER:PRICE[:BARCODE]` (repeatable; replaces
    /// the units the catalog has): `dus=40:110.000:18998866200578`.
    #[arg(long = "sell-unit")]
    sell_units: Vec<String>,
    /// A grosir price, `MIN_QTY:PRICE` (repeatable; replaces the tiers the catalog
    /// has): `--tier 10:3.300` sells 10 or more at Rp3.300 each.
    #[arg(long = "tier")]
    tiers: Vec<String>,
    /// Remove the other units and grosir prices.
    #[arg(long, conflicts_with_all = ["sell_units", "tiers"])]
    clear_units: bool,
    /// A promotion (repeatable; replaces the catalog's): `member:3.000` (a member's
    /// price), `beli:2+1` (buy 2 get 1 free), `paket:3:10.000` (3 for Rp10.000), each
    /// optionally `@FROM..UNTIL` (business dates, either end open):
    /// `beli:2+1@2026-12-01..2026-12-31`.
    #[arg(long = "promo")]
    promos: Vec<String>,
    /// Remove the promotions.
    #[arg(long, conflicts_with = "promos")]
    clear_promos: bool,
}

#[derive(Subcommand)]
enum ProductCmd {
    /// Add or update a product.
    Add(Box<ProductAddArgs>),
    /// Import products from CSV or XLSX.
    Import {
        /// The file.
        file: PathBuf,
    },
    /// Search by name, SKU or barcode.
    Search {
        /// What to look for.
        query: String,
        /// At most this many results.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

#[derive(Args)]
struct StockArgs {
    #[command(subcommand)]
    movement: Option<StockCmd>,
    /// Only this SKU.
    #[arg(long)]
    sku: Option<String>,
}

#[derive(Subcommand)]
enum StockCmd {
    /// Goods received (terima barang), with what was paid and from whom.
    Receive {
        #[command(flatten)]
        movement: MoveArgs,
        #[command(flatten)]
        purchase: PurchaseArgs,
    },
    /// Goods sent to another outlet of the tenant (`--to STORE`; a supervisor's), or
    /// received from one (`--from STORE --transfer ID`, the id on the sender's slip).
    Transfer {
        #[command(flatten)]
        movement: MoveArgs,
        /// The outlet the goods go to.
        #[arg(long, conflicts_with_all = ["from", "transfer"])]
        to: Option<String>,
        /// The outlet the goods came from.
        #[arg(long, requires = "transfer")]
        from: Option<String>,
        /// The sending outlet's transfer id.
        #[arg(long, requires = "from")]
        transfer: Option<String>,
    },
    /// Goods sent back to their supplier (retur ke pemasok): a positive quantity.
    Return {
        #[command(flatten)]
        movement: MoveArgs,
        #[command(flatten)]
        purchase: PurchaseArgs,
    },
    /// A correction (signed quantity).
    Adjust(MoveArgs),
    /// A stocktake: the counted quantity.
    Opname {
        /// SKU or barcode.
        #[arg(long)]
        sku: String,
        /// What was counted.
        #[arg(long)]
        counted: String,
        #[command(flatten)]
        approver: ApproverArgs,
    },
}

/// The purchase side of a receipt or a return.
#[derive(Args)]
struct PurchaseArgs {
    /// Rupiah per stock unit (harga beli): `3.500`, `3500`.
    #[arg(long)]
    cost: Option<String>,
    /// The supplier (pemasok).
    #[arg(long)]
    supplier: Option<String>,
}

/// A supervisor's (or above) approval, for what this till's role may not do alone.
#[derive(Args)]
struct ApproverArgs {
    /// A supervisor (or above) approving, when this till acts as a cashier.
    #[arg(long, requires = "approver_pin")]
    approver: Option<String>,
    /// The approver's PIN.
    #[arg(long, requires = "approver")]
    approver_pin: Option<String>,
}

impl ApproverArgs {
    fn approval(self) -> Option<kasir_node::people::Approval> {
        let (name, pin) = self.approver.zip(self.approver_pin)?;
        kasir_node::people::Approval::named(&name, &pin)
    }
}

#[derive(Subcommand)]
enum ReportCmd {
    /// The Z-report (laporan harian): per till and for the store.
    Z {
        /// Business date YYYY-MM-DD (today when omitted).
        #[arg(long)]
        date: Option<String>,
    },
}

#[derive(Args)]
struct MoveArgs {
    /// SKU or barcode.
    #[arg(long)]
    sku: String,
    /// Quantity.
    #[arg(long, allow_hyphen_values = true)]
    qty: String,
    /// Note.
    #[arg(long)]
    note: Option<String>,
    #[command(flatten)]
    approver: ApproverArgs,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum StoreCmd {
    /// Print the profile.
    Show,
    /// Change fields of the profile (others stay as they are).
    Set(kasir_node::profile::ProfileUpdate),
}

#[derive(Subcommand)]
enum ShiftCmd {
    /// Open a shift with the cash in the drawer.
    Open {
        /// Cashier (the device acts; a logged-in user is named by their session).
        #[arg(long)]
        cashier: String,
        /// Opening cash in rupiah.
        #[arg(long, default_value = "0")]
        cash: String,
    },
    /// Cash put into or taken out of the drawer, with a reason.
    Cash {
        /// `in` or `out`.
        #[arg(long)]
        kind: String,
        /// Amount in rupiah.
        #[arg(long)]
        amount: String,
        /// Why (change float, paying a supplier, a bank deposit).
        #[arg(long)]
        note: String,
    },
    /// Close the shift with the counted cash (laporan tutup kasir).
    Close {
        /// Counted cash in rupiah.
        #[arg(long)]
        counted: String,
    },
}

fn main() {
    let cli = Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KASIR_LOG").unwrap_or_else(|_| {
                // The daemon reports what it does; one-shot commands only warn.
                if matches!(cli.command, Command::Run { .. }) {
                    "info"
                } else {
                    "warn"
                }
                .into()
            }),
        )
        .with_writer(std::io::stderr);
    // One JSON object per line for a log collector (`KASIR_LOG_FORMAT=json`); otherwise
    // text, coloured only on a terminal so logs kept in files stay greppable.
    if std::env::var("KASIR_LOG_FORMAT").is_ok_and(|f| f == "json") {
        logs.json().init();
    } else {
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
    if let Err(e) = run(cli) {
        let msg = format!("{e:#}").replace('\n', " ");
        eprintln!("error: {msg}");
        std::process::exit(1);
    }
}

fn parse_peer(s: &str) -> Result<(kasir_crdt::DeviceId, std::net::SocketAddr)> {
    let (id, addr) = s
        .split_once('@')
        .ok_or_else(|| anyhow!("invalid peer {s:?}: use ENDPOINT_ID@HOST:PORT"))?;
    let id = id.parse().map_err(|e| anyhow!("invalid peer {s:?}: {e}"))?;
    let addr = std::net::ToSocketAddrs::to_socket_addrs(addr)
        .map_err(|e| anyhow!("invalid peer address {addr:?}: {e}"))?
        .next()
        .ok_or_else(|| anyhow!("peer address {addr:?} resolves to nothing"))?;
    Ok((id, addr))
}

/// `30s`, `15m`, `1h`: a period of at least a second.
fn parse_every(s: &str) -> Result<Duration> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n
        .parse()
        .map_err(|_| anyhow!("invalid period {s:?}: use 30s, 15m or 1h"))?;
    let secs = match unit {
        "s" => n,
        "m" | "" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        _ => bail!("invalid period {s:?}: use 30s, 15m or 1h"),
    };
    if secs == 0 {
        bail!("a backup period of {s:?} is too short: at least 1s");
    }
    Ok(Duration::from_secs(secs))
}

fn parse_qty(s: &str) -> Result<Qty> {
    s.parse::<Qty>().map_err(|e| anyhow!("{e}"))
}

fn parse_amount(s: &str) -> Result<i64> {
    kasir_crdt::money::parse_rupiah(s).map_err(|e| anyhow!("{e}"))
}

/// `NAME=PER:PRICE[:BARCODE]`: `dus=40:110.000`, `pak=5:14.500:8998866200301`.
fn parse_sell_unit(s: &str) -> Result<api::UnitPrice> {
    let bad =
        || anyhow!("--sell-unit {s:?}: expected NAME=PER:PRICE[:BARCODE], e.g. dus=40:110.000");
    let (name, rest) = s.split_once('=').ok_or_else(bad)?;
    let mut parts = rest.split(':');
    let per = parts.next().ok_or_else(bad)?;
    let price = parts.next().ok_or_else(bad)?;
    let barcodes: Vec<String> = parts.map(str::to_owned).collect();
    if barcodes.len() > 1 || name.trim().is_empty() {
        return Err(bad());
    }
    Ok(api::UnitPrice {
        name: name.trim().to_owned(),
        per: parse_qty(per).map_err(|e| anyhow!("--sell-unit {s:?}: {e}"))?,
        price: parse_amount(price).map_err(|e| anyhow!("--sell-unit {s:?}: {e}"))?,
        barcodes,
    })
}

/// `member:PRICE`, `beli:BUY+FREE` or `paket:QTY:PRICE`, optionally `@FROM..UNTIL`.
fn parse_promo(s: &str) -> Result<kasir_crdt::promo::Promo> {
    use kasir_crdt::promo::{Offer, Promo};
    let bad = |why: &str| {
        anyhow!("--promo {s:?}: {why} (member:3.000, beli:2+1, paket:3:10.000, @FROM..UNTIL)")
    };
    let (offer, days) = match s.split_once('@') {
        Some((o, d)) => (o, Some(d)),
        None => (s, None),
    };
    let parts: Vec<&str> = offer.split(':').collect();
    let whole = |n: &str| {
        n.trim()
            .parse::<u32>()
            .map_err(|_| bad("not a whole number"))
    };
    let offer = match parts.as_slice() {
        ["member", price] => Offer::MemberPrice {
            price: parse_amount(price)?,
        },
        ["beli", counts] => {
            let (buy, free) = counts
                .split_once('+')
                .ok_or_else(|| bad("expected BUY+FREE"))?;
            Offer::BuyGet {
                buy: whole(buy)?,
                free: whole(free)?,
            }
        }
        ["paket", qty, price] => Offer::Bundle {
            qty: whole(qty)?,
            price: parse_amount(price)?,
        },
        _ => return Err(bad("unknown promotion")),
    };
    let date = |d: &str| -> Result<Option<kasir_crdt::BusinessDate>> {
        let d = d.trim();
        if d.is_empty() {
            return Ok(None);
        }
        d.parse().map(Some).map_err(|_| bad("dates are YYYY-MM-DD"))
    };
    let (from, until) = match days {
        None => (None, None),
        Some(d) => {
            let (f, u) = d
                .split_once("..")
                .ok_or_else(|| bad("expected FROM..UNTIL"))?;
            (date(f)?, date(u)?)
        }
    };
    Ok(Promo { offer, from, until })
}

/// `MIN_QTY:PRICE`: `10:3.300`.
fn parse_tier(s: &str) -> Result<api::TierPrice> {
    let (min, price) = s
        .split_once(':')
        .ok_or_else(|| anyhow!("--tier {s:?}: expected MIN_QTY:PRICE, e.g. 10:3.300"))?;
    Ok(api::TierPrice {
        min_qty: parse_qty(min).map_err(|e| anyhow!("--tier {s:?}: {e}"))?,
        price: parse_amount(price).map_err(|e| anyhow!("--tier {s:?}: {e}"))?,
    })
}

/// `CODE[xQTY][:DISCOUNT]`: `INDOMIE`, `INDOMIEx3`, `BERASx0,5`, `KOPIx2:1.000` (Rp1.000
/// off the line), `KOPIx2:10%`. A quantity that reads two ways (`x1.500`) is an error,
/// never a guess.
fn parse_item(s: &str) -> Result<SaleItem> {
    let (item, discount) = match s.rsplit_once(':') {
        Some((item, d)) if !item.is_empty() => (item, Some(d)),
        _ => (s, None),
    };
    let (code, qty) = match item.rsplit_once(['x', '*']) {
        Some((code, q))
            if !code.is_empty()
                && !q.is_empty()
                && q.bytes()
                    .all(|b| b.is_ascii_digit() || b == b'.' || b == b',') =>
        {
            (
                code,
                parse_qty(q).with_context(|| format!("in --item {s:?}"))?,
            )
        }
        _ => (item, Qty::units(1)),
    };
    let (discount, discount_percent) = match discount {
        None => (0, None),
        Some(d) => match d.strip_suffix('%') {
            Some(pct) => (
                0,
                Some(pct.trim().parse::<u8>().map_err(|_| {
                    anyhow!("invalid discount {d:?} in --item {s:?}: a whole percent, e.g. 10%")
                })?),
            ),
            None => (
                parse_amount(d).with_context(|| format!("discount in --item {s:?}"))?,
                None,
            ),
        },
    };
    Ok(SaleItem {
        code: code.to_owned(),
        qty,
        discount,
        discount_percent,
        price: None,
        unit: None,
    })
}

/// `METHOD=AMOUNT[:REFERENCE]`, e.g. `cash=20000` or `qris=35000:RRN0123456`.
fn parse_payment(s: &str) -> Result<Payment> {
    let (method, rest) = s.split_once('=').ok_or_else(|| {
        anyhow!("invalid payment {s:?}: use METHOD=AMOUNT[:REFERENCE], e.g. cash=20000")
    })?;
    let (amount, reference) = match rest.split_once(':') {
        Some((amount, reference)) => (amount, Some(reference.trim().to_owned())),
        None => (rest, None),
    };
    Ok(Payment {
        method: method.trim().to_lowercase(),
        amount: parse_amount(amount)?,
        reference,
        confirmed_by: None,
    })
}

/// Prints `value` as one JSON document (`--json`), or as `human` renders it.
fn emit<T: Serialize>(json_mode: bool, value: &T, human: impl FnOnce(&T) -> String) -> Result<()> {
    if json_mode {
        println!("{}", serde_json::to_string(value)?);
    } else {
        println!("{}", human(value));
    }
    Ok(())
}

/// A till that must be this process's own (commands that write in large batches, or that
/// the daemon does not offer).
fn local_only(dir: &Path, why: &str) -> Result<Box<Node>> {
    match Backend::open(dir)? {
        Backend::Local(node) => Ok(node),
        Backend::Daemon(_) => bail!("{why}"),
    }
}

fn run(cli: Cli) -> Result<()> {
    let dir = cli.data.clone();
    let json_mode = cli.json;
    match cli.command {
        Command::Init {
            store_name,
            till_code,
            owner_name,
            owner_pin,
            encryption,
        } => {
            let owner_pin = match owner_pin {
                Some(pin) => Some(pin),
                None => prompt::owner_pin(&owner_name)?,
            };
            let (node, _) = Node::create_store(
                &dir,
                &InitOptions {
                    store_name,
                    till_code,
                    encrypt: encryption.choice(),
                },
                owner_pin.as_deref().map(|pin| (owner_name.as_str(), pin)),
            )?;
            emit(json_mode, &node.till_identity(), |v| {
                format!(
                    "Toko dibuat: {}\nTill {} (endpoint {})",
                    v.store_id, v.till_code, v.endpoint_id
                )
            })?;
        }
        Command::User(UserCmd::Add { name, role, pin }) => {
            let role = role.parse().map_err(|e: String| anyhow!(e))?;
            let added = Backend::open(&dir)?.call::<api::AddUser>(api::AddUserRequest {
                name,
                role,
                pin,
            })?;
            emit(json_mode, &added, |v| {
                format!(
                    "Pengguna {} ({}) ditambahkan: {}",
                    v.name,
                    v.role.as_str(),
                    v.user_id
                )
            })?;
        }
        Command::User(UserCmd::List) => {
            let users = Backend::open(&dir)?.call::<api::ListUsers>(api::Empty {})?;
            emit(json_mode, &users, |v| {
                if v.users.is_empty() {
                    return "Belum ada pengguna (kasir user add)".to_owned();
                }
                v.users
                    .iter()
                    .map(|u| {
                        format!(
                            "{}  {:<20} {:<10} {}",
                            u.user_id,
                            u.name,
                            u.role.as_str(),
                            if u.active { "aktif" } else { "nonaktif" }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
        Command::User(UserCmd::Disable { user_id }) => {
            let done = Backend::open(&dir)?.call::<api::DisableUser>(api::UserRef {
                user_id: user_id.clone(),
            })?;
            emit(json_mode, &done, |_| {
                format!("Pengguna {user_id} dinonaktifkan")
            })?;
        }
        Command::User(UserCmd::SetPin { user_id, pin }) => {
            let done = Backend::open(&dir)?.call::<api::SetPin>(api::SetPinRequest {
                user_id: user_id.clone(),
                pin,
            })?;
            emit(json_mode, &done, |_| format!("PIN {user_id} diganti"))?;
        }
        Command::Token => {
            let token = match Node::open(&dir) {
                Ok(node) => node.device_token()?,
                Err(kasir_node::NodeError::Locked(_)) => {
                    kasir_node::people::read_device_token(&dir)
                        .ok_or_else(|| anyhow!("{} has no device token", dir.display()))?
                }
                Err(e) => return Err(e.into()),
            };
            emit(json_mode, &json!({ "token": token }), |_| token.clone())?;
        }
        Command::Product(ProductCmd::Add(add)) => {
            let ProductAddArgs {
                sku,
                name,
                price,
                barcodes,
                cost,
                stock,
                min_stock,
                category,
                unit,
                tax_code,
                sell_units,
                tiers,
                clear_units,
                promos,
                clear_promos,
            } = *add;
            let input = ProductInput {
                sku,
                name,
                price: parse_amount(&price)?,
                barcodes,
                barcode: None,
                cost: cost.as_deref().map(parse_amount).transpose()?,
                category,
                unit,
                stock: stock.as_deref().map(parse_qty).transpose()?,
                min_stock: min_stock.as_deref().map(parse_qty).transpose()?,
                tax_code,
                units: if clear_units {
                    Some(Vec::new())
                } else {
                    (!sell_units.is_empty())
                        .then(|| sell_units.iter().map(|u| parse_sell_unit(u)).collect())
                        .transpose()?
                },
                tiers: if clear_units {
                    Some(Vec::new())
                } else {
                    (!tiers.is_empty())
                        .then(|| tiers.iter().map(|t| parse_tier(t)).collect())
                        .transpose()?
                },
                promos: if clear_promos {
                    Some(Vec::new())
                } else {
                    (!promos.is_empty())
                        .then(|| promos.iter().map(|p| parse_promo(p)).collect())
                        .transpose()?
                },
            };
            let added = Backend::open(&dir)?.call::<api::AddProduct>(input)?;
            emit(json_mode, &added, |v| format!("Produk {} disimpan", v.sku))?;
        }
        Command::Product(ProductCmd::Import { file }) => {
            let rows = import::read_file(&file)?;
            let mut node = local_only(
                &dir,
                "stop `kasir run` before importing (imports write in large batches)",
            )?;
            let bar = indicatif::ProgressBar::new(rows.len() as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} baris {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let report = import::import(&mut node, rows, |done, _| bar.set_position(done as u64))?;
            bar.finish_and_clear();
            emit(json_mode, &report, |r| {
                let mut s = format!("{} produk diimpor, {} gagal", r.imported, r.failed.len());
                for f in &r.failed {
                    s.push_str(&format!("\n  baris {}: {}", f.row, f.error));
                }
                s
            })?;
        }
        Command::Customer(CustomerCmd::Add {
            id,
            name,
            phone,
            tier,
        }) => {
            let saved = Backend::open(&dir)?.call::<api::SaveCustomer>(
                kasir_node::kasbon::CustomerInput {
                    customer_id: id,
                    name,
                    phone,
                    tier,
                    active: None,
                },
            )?;
            emit(json_mode, &saved, |c| {
                format!("Pelanggan {} disimpan ({})", c.name, c.customer_id)
            })?;
        }
        Command::Customer(CustomerCmd::List { q }) => {
            let list =
                Backend::open(&dir)?.call::<api::ListCustomers>(api::CustomersQuery { q })?;
            emit(json_mode, &list, |v| {
                let mut out: Vec<String> = v
                    .customers
                    .iter()
                    .map(|c| {
                        format!(
                            "{:<28} {:>14}  {}{}",
                            c.name,
                            format_rupiah(c.balance),
                            c.due_date.as_deref().unwrap_or(""),
                            if c.overdue { "  TERLAMBAT" } else { "" }
                        )
                    })
                    .collect();
                out.push(format!("Total kasbon {}", format_rupiah(v.total_owed)));
                out.join("\n")
            })?;
        }
        Command::Customer(CustomerCmd::Pay {
            customer_id,
            amount,
            method,
            reference,
        }) => {
            let paid = Backend::open(&dir)?.call::<api::PayKasbon>(
                kasir_node::kasbon::KasbonPaymentInput {
                    customer_id,
                    amount: parse_amount(&amount)?,
                    method,
                    reference,
                },
            )?;
            emit(json_mode, &paid, |v| {
                format!(
                    "Pembayaran kasbon dicatat; sisa {}",
                    format_rupiah(v.balance)
                )
            })?;
        }
        Command::Product(ProductCmd::Search { query, limit }) => {
            let found = Backend::open(&dir)?.call::<api::SearchProducts>(api::ProductSearch {
                q: query,
                limit: Some(limit),
            })?;
            emit(json_mode, &found, |v| {
                v.products
                    .iter()
                    .map(|p| format!("{:<16} {:<40} {}", p.sku, p.name, format_rupiah(p.price)))
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
        Command::Stock(StockArgs {
            movement: None,
            sku,
        }) => {
            let levels = Backend::open(&dir)?.call::<api::Stock>(api::StockQuery { sku })?;
            emit(json_mode, &levels, |v| {
                v.stock
                    .iter()
                    .map(|row| {
                        let flag = if row.oversold { "  OVERSOLD" } else { "" };
                        format!("{:<16} {:>10}{flag}", row.sku, row.on_hand)
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
        Command::Stock(StockArgs {
            movement: Some(m), ..
        }) => {
            let receiving = matches!(m, StockCmd::Receive { .. });
            let input = match m {
                StockCmd::Receive {
                    movement: a,
                    purchase: p,
                }
                | StockCmd::Return {
                    movement: a,
                    purchase: p,
                } => MovementInput {
                    kind: if receiving {
                        MovementKind::Receive
                    } else {
                        MovementKind::SupplierReturn
                    },
                    sku: a.sku,
                    qty: Some(parse_qty(&a.qty)?),
                    counted: None,
                    note: a.note,
                    cost: p.cost.as_deref().map(parse_amount).transpose()?,
                    supplier: p.supplier,
                    approval: a.approver.approval(),
                    other_store: None,
                    transfer_id: None,
                },
                StockCmd::Transfer {
                    movement: a,
                    to,
                    from,
                    transfer,
                } => {
                    let qty = parse_qty(&a.qty)?;
                    if qty.milli() <= 0 {
                        bail!("--qty is what moves: a positive quantity");
                    }
                    let (qty, other) = match (to, from) {
                        (Some(to), None) => (qty.neg(), to),
                        (None, Some(from)) => (qty, from),
                        _ => bail!("name where the goods go (--to) or come from (--from)"),
                    };
                    MovementInput {
                        kind: MovementKind::Transfer,
                        sku: a.sku,
                        qty: Some(qty),
                        counted: None,
                        note: a.note,
                        cost: None,
                        supplier: None,
                        other_store: Some(other),
                        transfer_id: transfer,
                        approval: a.approver.approval(),
                    }
                }
                StockCmd::Adjust(a) => MovementInput {
                    kind: MovementKind::Adjust,
                    sku: a.sku,
                    qty: Some(parse_qty(&a.qty)?),
                    counted: None,
                    note: a.note,
                    cost: None,
                    supplier: None,
                    approval: a.approver.approval(),
                    other_store: None,
                    transfer_id: None,
                },
                StockCmd::Opname {
                    sku,
                    counted,
                    approver,
                } => MovementInput {
                    kind: MovementKind::Opname,
                    sku,
                    qty: None,
                    counted: Some(parse_qty(&counted)?),
                    note: None,
                    cost: None,
                    supplier: None,
                    approval: approver.approval(),
                    other_store: None,
                    transfer_id: None,
                },
            };
            let moved = Backend::open(&dir)?.call::<api::RecordMovement>(input)?;
            emit(json_mode, &moved, |v| {
                format!("Pergerakan stok {} (selisih {})", v.movement_id, v.delta)
            })?;
        }
        Command::Sell {
            items,
            payments,
            client_id,
            cashier,
            customer,
            due,
            discount,
            approver,
        } => {
            let (cart_discount, cart_discount_percent) = match discount.as_deref() {
                None => (None, None),
                Some(d) => match d.strip_suffix('%') {
                    Some(p) => (
                        None,
                        Some(p.trim().parse::<u8>().map_err(|_| {
                            anyhow!("invalid --discount {d:?}: a whole percent, e.g. 10%")
                        })?),
                    ),
                    None => (Some(parse_amount(d).context("--discount")?), None),
                },
            };
            let req = SaleRequest {
                client_id,
                items: items.iter().map(|s| parse_item(s)).collect::<Result<_>>()?,
                payments: payments
                    .iter()
                    .map(|s| parse_payment(s))
                    .collect::<Result<_>>()?,
                cashier,
                approval: approver.approval(),
                customer_id: customer,
                due_date: due,
                cart_discount,
                cart_discount_percent,
            };
            let sold = Backend::open(&dir)?.call::<api::Sell>(req)?;
            emit(json_mode, &sold, |v| {
                format!(
                    "Struk {}  total {}  kembali {}\nsale id {}",
                    v.receipt_no,
                    format_rupiah(v.total),
                    format_rupiah(v.change),
                    v.sale_id
                )
            })?;
        }
        Command::Void {
            sale_id,
            reason,
            approver,
        } => {
            let approval = approver.approval();
            let voided = Backend::open(&dir)?.call::<api::VoidSale>(api::VoidRequest {
                sale_id: sale_id.clone(),
                reason,
                approval,
            })?;
            emit(json_mode, &voided, |_| {
                format!("Penjualan {sale_id} dibatalkan")
            })?;
        }
        Command::Sales { date } => {
            let sales = Backend::open(&dir)?.call::<api::ListSales>(api::SalesQuery {
                date,
                ..Default::default()
            })?;
            emit(json_mode, &sales, |v| {
                v.sales
                    .iter()
                    .map(|sale| {
                        format!(
                            "{:<20} {:>14} {:<10} {}",
                            sale.receipt_no,
                            format_rupiah(sale.total),
                            sale.status.as_str(),
                            sale.sale_id
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
        Command::Receipt {
            sale_id,
            width,
            escpos,
            printer,
            profile,
            qr,
            raster_qr,
            drawer,
            reprint,
        } if escpos.is_some() || printer.is_some() => {
            let query = api::EscposQuery {
                width,
                profile,
                qr,
                raster_qr,
                drawer,
                reprint,
            };
            receipt_bytes(&dir, json_mode, &sale_id, query, escpos, printer)?;
        }
        Command::Receipt { sale_id, width, .. } => {
            let width = width.unwrap_or(32);
            let text = match Backend::open(&dir)? {
                Backend::Local(mut node) => node.receipt_text(&sale_id, width)?,
                Backend::Daemon(d) => String::from_utf8_lossy(&d.get_bytes(&format!(
                    "/v1/sales/{}/receipt?width={width}",
                    percent_encoding::utf8_percent_encode(
                        &sale_id,
                        percent_encoding::NON_ALPHANUMERIC
                    )
                ))?)
                .into_owned(),
            };
            if json_mode {
                println!("{}", json!({ "receipt": text }));
            } else {
                print!("{text}");
            }
        }
        Command::Store(cmd) => {
            let mut backend = Backend::open(&dir)?;
            let profile = match cmd {
                StoreCmd::Show => backend.call::<api::GetProfile>(api::Empty {})?,
                StoreCmd::Set(update) => backend.call::<api::SetProfile>(update)?,
            };
            emit(json_mode, &profile, |p| {
                let tax = &p.tax_rule;
                format!(
                    "{}\n{}\nNPWP: {}\nPajak: {} {}bp ({}), pembulatan tunai {}",
                    p.name,
                    p.address.as_deref().unwrap_or("-"),
                    p.npwp.as_deref().unwrap_or("-"),
                    tax.kind.as_str(),
                    tax.rate_bp,
                    if tax.inclusive {
                        "termasuk"
                    } else {
                        "belum termasuk"
                    },
                    p.cash_rounding.unit
                )
            })?;
        }
        Command::Shift(cmd) => {
            let mut backend = Backend::open(&dir)?;
            match cmd {
                ShiftCmd::Open { cashier, cash } => {
                    let opened = backend.call::<api::OpenShiftOp>(api::OpenShiftRequest {
                        opening_cash: parse_amount(&cash)?,
                        cashier: Some(cashier),
                    })?;
                    emit(json_mode, &opened, |v| {
                        format!("Shift {} dibuka", v.shift_id)
                    })?;
                }
                ShiftCmd::Cash { kind, amount, note } => {
                    let kind = match kind.to_lowercase().as_str() {
                        "in" | "masuk" => CashMoveKind::In,
                        "out" | "keluar" => CashMoveKind::Out,
                        other => bail!("cash kind {other:?}: use in or out"),
                    };
                    let moved = backend.call::<api::ShiftCash>(api::CashRequest {
                        kind,
                        amount: parse_amount(&amount)?,
                        note,
                    })?;
                    emit(json_mode, &moved, |v| {
                        format!("Kas dicatat ({})", v.cash_id)
                    })?;
                }
                ShiftCmd::Close { counted } => {
                    let report = backend.call::<api::CloseShift>(api::CloseShiftRequest {
                        counted_cash: parse_amount(&counted)?,
                    })?;
                    emit(json_mode, &report, render::shift_report)?;
                }
            }
        }
        Command::Refund {
            sale_id,
            items,
            reason,
            approver,
        } => {
            let lines = items
                .iter()
                .map(|s| {
                    parse_item(s).map(|i| api::RefundItem {
                        sku: i.code,
                        qty: i.qty,
                    })
                })
                .collect::<Result<_>>()?;
            let refunded = Backend::open(&dir)?.call::<api::RefundSale>(api::RefundRequest {
                sale_id: sale_id.clone(),
                lines,
                reason,
                approval: approver.approval(),
            })?;
            emit(json_mode, &refunded, |v| {
                format!(
                    "Retur {}: {} dikembalikan ({})",
                    v.refund_id,
                    format_rupiah(v.amount),
                    v.method
                )
            })?;
        }
        Command::Report(ReportCmd::Z { date }) => {
            let z = Backend::open(&dir)?.call::<api::GetZReport>(api::DateQuery { date })?;
            emit(json_mode, &z, render::z_report)?;
        }
        Command::Audit { date } => {
            let trail = Backend::open(&dir)?.call::<api::GetAudit>(api::DateQuery { date })?;
            emit(json_mode, &trail, render::audit)?;
        }
        Command::Run {
            listen,
            http,
            peers,
            relay,
            no_mdns,
            host_names,
            metrics_public,
            backup_dir,
            backup_every,
            backup_keep,
        } => {
            let backups = match backup_dir {
                Some(dir) => Some(kasir_node::backup::BackupSchedule {
                    dir,
                    every: backup_every,
                    keep: backup_keep,
                    passphrase: prompt::backup_passphrase(true)?,
                }),
                None => None,
            };
            let mut parsed = peers
                .iter()
                .map(|p| parse_peer(p))
                .collect::<Result<Vec<_>>>()?;
            if let Some(r) = &relay {
                parsed.push(parse_peer(r)?);
            }
            let net = NetConfig {
                listen,
                peers: parsed,
                mdns: !no_mdns,
            };
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(async move {
                let cancel = tokio_util::sync::CancellationToken::new();
                daemon::cancel_on_signals(cancel.clone());
                daemon::run_dir(
                    &dir,
                    RunOptions {
                        http,
                        net: Some(net),
                        host_names,
                        metrics_public,
                        backups,
                        ..RunOptions::default()
                    },
                    cancel,
                )
                .await
            })?;
        }
        Command::Invite {
            action: Some(InviteAction::Cancel { ticket }),
            ..
        } => {
            let done = Backend::open(&dir)?
                .call::<api::CancelInvite>(api::CancelInviteRequest { ticket })?;
            emit(json_mode, &done, |_| "Tiket dibatalkan".to_string())?;
        }
        Command::Upgrade => {
            let (node, adopted) = Node::upgrade(&dir)?;
            let upgraded = api::UpgradeOutcome {
                store_id: node.store_id().to_string(),
                adopted_changes: adopted,
            };
            emit(json_mode, &upgraded, |v| {
                format!(
                    "Data toko {} diperbarui: {} perubahan lama disahkan oleh till ini",
                    v.store_id, v.adopted_changes
                )
            })?;
        }
        Command::Invite {
            action: None,
            till_code,
            role,
        } => {
            let invite =
                Backend::open(&dir)?.call::<api::Invite>(api::InviteRequest { till_code, role })?;
            emit(json_mode, &invite, |v| {
                format!("Tiket untuk till baru:\n{}", v.ticket)
            })?;
        }
        Command::Backup { file } => {
            let passphrase = prompt::backup_passphrase(true)?;
            let info = kasir_node::backup::write_backup(&dir, &file, &passphrase, None)?;
            emit(json_mode, &info, |v| {
                format!(
                    "Cadangan {}: {} penjualan, {} byte{}",
                    v.path.display(),
                    v.sales,
                    v.bytes,
                    v.last_receipt
                        .as_deref()
                        .map(|r| format!(", struk terakhir {r}"))
                        .unwrap_or_default()
                )
            })?;
        }
        Command::Restore {
            from_relay: Some(ticket),
            encryption,
            ..
        } => {
            if dir.join(kasir_node::DB_FILE).exists() {
                bail!(
                    "{} already holds a store: restore into a new, empty directory",
                    dir.display()
                );
            }
            let joined = join::run(&dir, &ticket, None, encryption.choice())?;
            emit(json_mode, &joined, |v| {
                format!(
                    "Till {} dipulihkan dari relay (toko {}); perangkat lama dicabut",
                    v.till_code, v.store_id
                )
            })?;
        }
        Command::Restore {
            file, encryption, ..
        } => {
            let file = file.ok_or_else(|| anyhow!("name a backup file or --from-relay TICKET"))?;
            let passphrase = prompt::backup_passphrase(false)?;
            let info = kasir_node::backup::restore(
                &file,
                &dir,
                &passphrase,
                encryption.choice().as_ref(),
            )?;
            emit(json_mode, &info, |v| {
                format!(
                    "Dipulihkan: toko {} till {}, {} penjualan{}",
                    v.store_id,
                    v.till_code,
                    v.sales,
                    v.last_receipt
                        .as_deref()
                        .map(|r| format!(", struk terakhir {r}"))
                        .unwrap_or_default()
                )
            })?;
        }
        Command::Encrypt { key_file } => {
            let how = Encrypt::KeyFile(key_file.unwrap_or_else(vault::default_key_file));
            let holder = Node::encrypt(&dir, &how)?;
            emit(json_mode, &holder, |h| match h {
                KeyHolder::File { path } => format!(
                    "Data terenkripsi. Kunci: {} (simpan salinannya di tempat aman, tanpa kunci data tidak bisa dibuka)",
                    path.display()
                ),
                _ => "Data terenkripsi".to_owned(),
            })?;
        }
        Command::Join {
            ticket,
            till_code,
            encryption,
        } => {
            let joined = join::run(&dir, &ticket, till_code, encryption.choice())?;
            emit(json_mode, &joined, |v| {
                format!(
                    "Bergabung ke toko {} sebagai till {}",
                    v.store_id, v.till_code
                )
            })?;
        }
        Command::Revoke { endpoint_id } => {
            let done = Backend::open(&dir)?.call::<api::Revoke>(api::RevokeRequest {
                endpoint_id: endpoint_id.clone(),
            })?;
            emit(json_mode, &done, |_| {
                format!("Perangkat {endpoint_id} dicabut")
            })?;
        }
        Command::Status => {
            let status = Backend::open(&dir)?.call::<api::Status>(api::Empty {})?;
            emit(json_mode, &status, |v| {
                format!(
                    "Toko {} ({})\nTill {}  endpoint {}\n{} produk, {} penjualan, {} dokumen belum tersinkron",
                    v.store_name,
                    v.store_id,
                    v.till_code,
                    v.endpoint_id,
                    v.products,
                    v.sales,
                    v.unsynced_docs
                )
            })?;
        }
        Command::Rebuild => {
            let mut node = Node::open(&dir)?;
            node.rebuild_read_tables()?;
            emit(json_mode, &api::Done::OK, |_| {
                "Tabel baca dibangun ulang".into()
            })?;
        }
        Command::Compact => {
            let mut node = Node::open(&dir)?;
            let n = node.compact_all()?;
            emit(json_mode, &json!({ "compacted": n }), |_| {
                format!("{n} dokumen dipadatkan")
            })?;
        }
        Command::Demo { sales, exit } => demo::run(sales, json_mode, !exit)?,
        Command::Ml(cmd) => ml_command(&dir, json_mode, cmd)?,
    }
    Ok(())
}

/// `kasir receipt --escpos FILE | --printer URI`: the receipt's ESC/POS bytes, rendered
/// here or by the daemon, written to a file and/or sent to a printer.
fn receipt_bytes(
    dir: &Path,
    json_mode: bool,
    sale_id: &str,
    query: api::EscposQuery,
    escpos: Option<PathBuf>,
    printer: Option<String>,
) -> Result<()> {
    use kasir_devices::transport::{self, PrinterUri, TransportOptions};
    use kasir_node::print::{EscposRequest, printer_profile, receipt_escpos};
    // A bad URI or profile fails before anything is read; nothing here writes.
    let uri = printer
        .as_deref()
        .map(str::parse::<PrinterUri>)
        .transpose()?;
    let req = EscposRequest {
        profile: printer_profile(query.width, query.profile.as_deref(), query.raster_qr)?,
        qr: query.qr.clone(),
        drawer: query.drawer,
        reprint: query.reprint,
    };
    let bytes = match Backend::open(dir)? {
        Backend::Local(mut node) => receipt_escpos(&mut node, sale_id, &req)?,
        Backend::Daemon(d) => d.get_bytes(&format!(
            "/v1/sales/{}/print?{}",
            percent_encoding::utf8_percent_encode(sale_id, percent_encoding::NON_ALPHANUMERIC),
            serde_urlencoded::to_string(&query)?
        ))?,
    };
    let to_stdout = escpos.as_deref() == Some(Path::new("-"));
    if let Some(path) = escpos.as_deref() {
        if to_stdout {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)?;
            out.flush()?;
        } else {
            std::fs::write(path, &bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    if let Some(uri) = &uri {
        transport::print(uri, &bytes, TransportOptions::default())
            .map_err(|e| anyhow!("receipt not printed (the sale is kept): {e}"))?;
    }
    if !to_stdout {
        let v = json!({
            "sale_id": sale_id,
            "bytes": bytes.len(),
            "escpos": escpos.as_ref().map(|p| p.display().to_string()),
            "printer": uri.as_ref().map(ToString::to_string),
        });
        emit(json_mode, &v, |v| match v["printer"].as_str() {
            Some(p) => format!("Struk dicetak ke {p} ({} byte)", v["bytes"]),
            None => format!(
                "ESC/POS ditulis ke {} ({} byte)",
                v["escpos"].as_str().unwrap_or(""),
                v["bytes"]
            ),
        })?;
    }
    Ok(())
}

fn read_photo(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// `kasir ml ...`, on the data directory or through the daemon holding it.
fn ml_command(dir: &Path, json_mode: bool, cmd: MlCmd) -> Result<()> {
    use kasir_node::ml::RecognizeOutcome;
    let b64 = |p: &Path| read_photo(p).map(|b| data_encoding::BASE64.encode(&b));
    match (Backend::open(dir)?, cmd) {
        (backend, MlCmd::Enroll { sku, images }) => {
            let enrolled: api::EnrollOutcome = match backend {
                Backend::Local(mut node) => {
                    let photos = images
                        .iter()
                        .map(|p| read_photo(p))
                        .collect::<Result<Vec<_>>>()?;
                    let references = node.ml_enroll(&sku, &photos)?;
                    api::EnrollOutcome { sku, references }
                }
                Backend::Daemon(d) => {
                    let images = images.iter().map(|p| b64(p)).collect::<Result<Vec<_>>>()?;
                    d.post_json("/v1/ml/enroll", &api::EnrollRequest { sku, images })?
                }
            };
            emit(json_mode, &enrolled, |v| {
                format!("{}: {} foto referensi", v.sku, v.references)
            })?;
        }
        (
            backend,
            MlCmd::Recognize {
                image,
                top,
                fallback_ms,
            },
        ) => {
            let outcome: RecognizeOutcome = match backend {
                Backend::Local(mut node) => {
                    let deadline = fallback_ms
                        .map_or_else(kasir_node::ml::fallback::deadline_from_env, |ms| {
                            Duration::from_millis(ms).min(kasir_node::ml::fallback::MAX_DEADLINE)
                        });
                    node.ml_recognize_with_fallback(&read_photo(&image)?, top, deadline)?
                }
                Backend::Daemon(d) => {
                    let query = serde_urlencoded::to_string(api::RecognizeQuery {
                        top: Some(top),
                        fallback_ms,
                    })?;
                    d.post_bytes(
                        &format!("/v1/ml/recognize?{query}"),
                        "application/octet-stream",
                        &read_photo(&image)?,
                    )?
                }
            };
            emit(json_mode, &outcome, |v| {
                let best = v.matches.first();
                let sku = best.map_or("-", |m| m.sku.as_str());
                let score = best.map_or(0.0, |m| m.score);
                let relay = if v.source == kasir_node::ml::Source::Relay {
                    " [relay]"
                } else {
                    ""
                };
                match (v.known, best.is_none()) {
                    (true, _) => format!("{sku} ({score:.2}){relay}"),
                    (false, true) => "tidak dikenal (belum ada foto referensi)".into(),
                    (false, false) => format!("tidak dikenal (terdekat {sku} {score:.2})"),
                }
            })?;
        }
        (backend, MlCmd::Feedback { image, sku }) => {
            let done: api::Done = match backend {
                Backend::Local(mut node) => {
                    node.ml_feedback(&read_photo(&image)?, &sku)?;
                    api::Done::OK
                }
                Backend::Daemon(d) => d.post_json(
                    "/v1/ml/feedback",
                    &api::FeedbackRequest {
                        sku: sku.clone(),
                        image: b64(&image)?,
                    },
                )?,
            };
            emit(json_mode, &done, |_| format!("Koreksi dicatat: {sku}"))?;
        }
    }
    Ok(())
}
