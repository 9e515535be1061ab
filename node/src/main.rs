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
use kasir_crdt::records::{MovementKind, Payment};
use kasir_node::NodeError;
use kasir_node::daemon::{self, RunOptions};
use kasir_node::import;
use kasir_node::node::{InitOptions, MovementInput, Node, ProductInput, SaleItem, SaleRequest};
use kasir_node::sync::net::NetConfig;
use serde_json::{Value, json};

mod demo;
mod join;

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
enum Command {
    /// Create a new store with this device as its owner.
    Init {
        /// The shop's name.
        #[arg(long)]
        store_name: String,
        /// This till's short code (e.g. T1).
        #[arg(long)]
        till_code: String,
    },
    /// Products: add, import, search.
    #[command(subcommand)]
    Product(ProductCmd),
    /// Stock levels, or a stock movement.
    Stock(StockArgs),
    /// Record a sale.
    Sell {
        /// SKU or barcode, optionally with a quantity: `INDOMIE`, `INDOMIEx3`, `BERASx0.5`.
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
    },
    /// Void a whole sale (its stock comes back).
    Void {
        /// The sale id.
        sale_id: String,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
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
    /// Run the daemon: HTTP API (and, later, peer sync).
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
    },
    /// Make a one-time ticket for a new till to join this store.
    Invite {
        /// The till code the new device gets.
        #[arg(long)]
        till_code: Option<String>,
        /// `till` or `manager`.
        #[arg(long)]
        role: Option<String>,
    },
    /// Join a store with a ticket, through any online member.
    Join {
        /// The ticket from `kasir invite`.
        ticket: String,
        /// The till code to ask for.
        #[arg(long)]
        till_code: Option<String>,
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
enum ProductCmd {
    /// Add or update a product.
    Add {
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
        /// Category.
        #[arg(long)]
        category: Option<String>,
        /// Unit (pcs, kg, ...).
        #[arg(long)]
        unit: Option<String>,
    },
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
    /// Goods received.
    Receive(MoveArgs),
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
        /// Cashier.
        #[arg(long)]
        cashier: String,
        /// Opening cash in rupiah.
        #[arg(long, default_value = "0")]
        cash: String,
    },
    /// Close the shift with the counted cash.
    Close {
        /// Counted cash in rupiah.
        #[arg(long)]
        counted: String,
    },
}

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
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
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(cli) {
        let msg = format!("{e:#}").replace('\n', " ");
        eprintln!("error: {msg}");
        std::process::exit(1);
    }
}

/// Where commands go: the data directory itself, or the daemon holding it.
enum Backend {
    Local(Box<Node>),
    Remote(Remote),
}

struct Remote {
    base: String,
    agent: ureq::Agent,
}

impl Remote {
    fn new(addr: std::net::SocketAddr) -> Remote {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .build();
        Remote {
            base: format!("http://{addr}"),
            agent: config.into(),
        }
    }

    fn check(mut resp: ureq::http::Response<ureq::Body>) -> Result<Value> {
        let status = resp.status().as_u16();
        let body: Value = resp.body_mut().read_json().unwrap_or(Value::Null);
        if status >= 400 {
            let msg = body["error"]["message"]
                .as_str()
                .unwrap_or("request failed");
            bail!("{msg}");
        }
        Ok(body)
    }

    fn get(&self, path: &str) -> Result<Value> {
        let resp = self
            .agent
            .get(format!("{}{path}", self.base))
            .call()
            .context("daemon unreachable")?;
        Self::check(resp)
    }

    fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let resp = self
            .agent
            .post(format!("{}{path}", self.base))
            .send_json(body)
            .context("daemon unreachable")?;
        Self::check(resp)
    }

    fn get_text(&self, path: &str) -> Result<String> {
        let mut resp = self
            .agent
            .get(format!("{}{path}", self.base))
            .call()
            .context("daemon unreachable")?;
        if resp.status().as_u16() >= 400 {
            let body: Value = resp.body_mut().read_json().unwrap_or(Value::Null);
            bail!(
                "{}",
                body["error"]["message"]
                    .as_str()
                    .unwrap_or("request failed")
            );
        }
        Ok(resp.body_mut().read_to_string()?)
    }
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn open_backend(dir: &Path) -> Result<Backend> {
    match Node::open(dir) {
        Ok(node) => Ok(Backend::Local(Box::new(node))),
        Err(NodeError::Locked(_)) => match daemon::daemon_info(dir) {
            Some(info) => Ok(Backend::Remote(Remote::new(info.http))),
            None => bail!(
                "data directory {} is in use by another kasir process",
                dir.display()
            ),
        },
        Err(e) => Err(e.into()),
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

fn parse_qty(s: &str) -> Result<Qty> {
    s.parse::<Qty>().map_err(|e| anyhow!("{e}"))
}

fn parse_amount(s: &str) -> Result<i64> {
    import::parse_rupiah(s).map_err(|e| anyhow!(e))
}

fn parse_item(s: &str) -> Result<SaleItem> {
    let (code, qty) = match s.rsplit_once(['x', '*']) {
        Some((code, q)) if !code.is_empty() && q.parse::<Qty>().is_ok() => (code, parse_qty(q)?),
        _ => (s, Qty::units(1)),
    };
    Ok(SaleItem {
        code: code.to_owned(),
        qty,
        discount: 0,
    })
}

fn parse_payment(s: &str) -> Result<Payment> {
    let (method, amount) = s
        .split_once('=')
        .ok_or_else(|| anyhow!("invalid payment {s:?}: use METHOD=AMOUNT, e.g. cash=20000"))?;
    Ok(Payment {
        method: method.trim().to_lowercase(),
        amount: parse_amount(amount)?,
    })
}

fn print(json_mode: bool, value: &Value, human: impl FnOnce(&Value) -> String) {
    if json_mode {
        println!("{value}");
    } else {
        println!("{}", human(value));
    }
}

fn to_value(v: impl serde::Serialize) -> Result<Value> {
    Ok(serde_json::to_value(v)?)
}

fn run(cli: Cli) -> Result<()> {
    let dir = cli.data.clone();
    let json_mode = cli.json;
    match cli.command {
        Command::Init {
            store_name,
            till_code,
        } => {
            let node = Node::init(
                &dir,
                &InitOptions {
                    store_name,
                    till_code,
                },
            )?;
            let v = json!({
                "store_id": node.store_id().to_string(),
                "endpoint_id": node.device_id().to_string(),
                "till_code": node.till_code(),
            });
            print(json_mode, &v, |v| {
                format!(
                    "Toko dibuat: {}\nTill {} (endpoint {})",
                    v["store_id"].as_str().unwrap_or(""),
                    v["till_code"].as_str().unwrap_or(""),
                    v["endpoint_id"].as_str().unwrap_or("")
                )
            });
        }
        Command::Product(ProductCmd::Add {
            sku,
            name,
            price,
            barcodes,
            cost,
            stock,
            category,
            unit,
        }) => {
            let input = ProductInput {
                sku,
                name,
                price: parse_amount(&price)?,
                barcodes,
                cost: cost.as_deref().map(parse_amount).transpose()?,
                category,
                unit,
                stock: stock.as_deref().map(parse_qty).transpose()?,
            };
            let v = match open_backend(&dir)? {
                Backend::Local(mut node) => to_value(node.add_product(&input)?)?,
                Backend::Remote(r) => r.post(
                    "/v1/products",
                    &json!({
                        "sku": input.sku, "name": input.name, "price": input.price,
                        "barcodes": input.barcodes, "cost": input.cost, "category": input.category,
                        "unit": input.unit, "stock": input.stock.map(Qty::as_f64),
                    }),
                )?,
            };
            print(json_mode, &v, |v| {
                format!("Produk {} disimpan", v["sku"].as_str().unwrap_or(""))
            });
        }
        Command::Product(ProductCmd::Import { file }) => {
            let rows = import::read_file(&file)?;
            let mut node = match open_backend(&dir)? {
                Backend::Local(node) => node,
                Backend::Remote(_) => {
                    bail!("stop `kasir run` before importing (imports write in large batches)")
                }
            };
            let bar = indicatif::ProgressBar::new(rows.len() as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} baris {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let report = import::import(&mut node, rows, |done, _| bar.set_position(done as u64))?;
            bar.finish_and_clear();
            let v = to_value(&report)?;
            print(json_mode, &v, |_| {
                let mut s = format!(
                    "{} produk diimpor, {} gagal",
                    report.imported,
                    report.failed.len()
                );
                for f in &report.failed {
                    s.push_str(&format!("\n  baris {}: {}", f.row, f.error));
                }
                s
            });
        }
        Command::Product(ProductCmd::Search { query, limit }) => {
            let v = match open_backend(&dir)? {
                Backend::Local(node) => json!({ "products": node.search_products(&query, limit)? }),
                Backend::Remote(r) => {
                    r.get(&format!("/v1/products?q={}&limit={limit}", enc(&query)))?
                }
            };
            print(json_mode, &v, |v| {
                let mut s = String::new();
                for p in v["products"].as_array().into_iter().flatten() {
                    s.push_str(&format!(
                        "{:<16} {:<40} {}\n",
                        p["sku"].as_str().unwrap_or(""),
                        p["name"].as_str().unwrap_or(""),
                        format_rupiah(p["price"].as_i64().unwrap_or(0))
                    ));
                }
                s.trim_end().to_owned()
            });
        }
        Command::Stock(StockArgs {
            movement: None,
            sku,
        }) => {
            let v = match open_backend(&dir)? {
                Backend::Local(node) => json!({ "stock": node.stock(sku.as_deref())? }),
                Backend::Remote(r) => r.get(&match &sku {
                    Some(s) => format!("/v1/stock?sku={}", enc(s)),
                    None => "/v1/stock".into(),
                })?,
            };
            print(json_mode, &v, |v| {
                let mut s = String::new();
                for row in v["stock"].as_array().into_iter().flatten() {
                    let flag = if row["oversold"].as_bool() == Some(true) {
                        "  OVERSOLD"
                    } else {
                        ""
                    };
                    s.push_str(&format!(
                        "{:<16} {:>10}{flag}\n",
                        row["sku"].as_str().unwrap_or(""),
                        row["on_hand"]
                    ));
                }
                s.trim_end().to_owned()
            });
        }
        Command::Stock(StockArgs {
            movement: Some(m), ..
        }) => {
            let input = match m {
                StockCmd::Receive(a) => MovementInput {
                    kind: MovementKind::Receive,
                    sku: a.sku,
                    qty: Some(parse_qty(&a.qty)?),
                    counted: None,
                    note: a.note,
                },
                StockCmd::Adjust(a) => MovementInput {
                    kind: MovementKind::Adjust,
                    sku: a.sku,
                    qty: Some(parse_qty(&a.qty)?),
                    counted: None,
                    note: a.note,
                },
                StockCmd::Opname { sku, counted } => MovementInput {
                    kind: MovementKind::Opname,
                    sku,
                    qty: None,
                    counted: Some(parse_qty(&counted)?),
                    note: None,
                },
            };
            let v = match open_backend(&dir)? {
                Backend::Local(mut node) => to_value(node.record_movement(&input)?)?,
                Backend::Remote(r) => r.post(
                    "/v1/stock/movements",
                    &json!({
                        "kind": input.kind.as_str(), "sku": input.sku,
                        "qty": input.qty.map(Qty::as_f64), "counted": input.counted.map(Qty::as_f64),
                        "note": input.note,
                    }),
                )?,
            };
            print(json_mode, &v, |v| {
                format!(
                    "Pergerakan stok {} (selisih {})",
                    v["movement_id"].as_str().unwrap_or(""),
                    v["delta"]
                )
            });
        }
        Command::Sell {
            items,
            payments,
            client_id,
            cashier,
        } => {
            let req = SaleRequest {
                client_id,
                items: items.iter().map(|s| parse_item(s)).collect::<Result<_>>()?,
                payments: payments
                    .iter()
                    .map(|s| parse_payment(s))
                    .collect::<Result<_>>()?,
                cashier,
            };
            let v = match open_backend(&dir)? {
                Backend::Local(mut node) => to_value(node.sell(&req)?)?,
                Backend::Remote(r) => r.post(
                    "/v1/sales",
                    &json!({
                        "client_id": req.client_id,
                        "cashier": req.cashier,
                        "lines": req.items.iter().map(|i| json!({"sku": i.code, "qty": i.qty.as_f64()})).collect::<Vec<_>>(),
                        "payments": req.payments,
                    }),
                )?,
            };
            print(json_mode, &v, |v| {
                format!(
                    "Struk {}  total {}  kembali {}\nsale id {}",
                    v["receipt_no"].as_str().unwrap_or(""),
                    format_rupiah(v["total"].as_i64().unwrap_or(0)),
                    format_rupiah(v["change"].as_i64().unwrap_or(0)),
                    v["sale_id"].as_str().unwrap_or("")
                )
            });
        }
        Command::Void { sale_id, reason } => {
            let v = match open_backend(&dir)? {
                Backend::Local(mut node) => {
                    json!({ "void_id": node.void_sale(&sale_id, &reason)? })
                }
                Backend::Remote(r) => r.post(
                    &format!("/v1/sales/{}/void", enc(&sale_id)),
                    &json!({ "reason": reason }),
                )?,
            };
            print(json_mode, &v, |_| format!("Penjualan {sale_id} dibatalkan"));
        }
        Command::Sales { date } => {
            let v = match open_backend(&dir)? {
                Backend::Local(node) => json!({ "sales": node.sales(date.as_deref())? }),
                Backend::Remote(r) => r.get(&match &date {
                    Some(d) => format!("/v1/sales?date={}", enc(d)),
                    None => "/v1/sales".into(),
                })?,
            };
            print(json_mode, &v, |v| {
                let mut s = String::new();
                for sale in v["sales"].as_array().into_iter().flatten() {
                    s.push_str(&format!(
                        "{:<20} {:>14} {:<10} {}\n",
                        sale["receipt_no"].as_str().unwrap_or(""),
                        format_rupiah(sale["total"].as_i64().unwrap_or(0)),
                        sale["status"].as_str().unwrap_or(""),
                        sale["sale_id"].as_str().unwrap_or("")
                    ));
                }
                s.trim_end().to_owned()
            });
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
            use kasir_devices::transport::{self, PrinterUri, TransportOptions};
            use kasir_node::print::{EscposRequest, printer_profile, receipt_escpos};
            // A bad URI or profile fails before anything is read; nothing here writes.
            let uri = printer
                .as_deref()
                .map(str::parse::<PrinterUri>)
                .transpose()?;
            let req = EscposRequest {
                profile: printer_profile(width, profile.as_deref(), raster_qr)?,
                qr: qr.clone(),
                drawer,
                reprint,
            };
            let bytes = match open_backend(&dir)? {
                Backend::Local(mut node) => receipt_escpos(&mut node, &sale_id, &req)?,
                Backend::Remote(r) => {
                    let mut query =
                        format!("raster_qr={raster_qr}&drawer={drawer}&reprint={reprint}");
                    for (key, value) in [
                        ("width", width.map(|w| w.to_string())),
                        ("profile", profile),
                        ("qr", qr),
                    ] {
                        if let Some(value) = value {
                            query.push_str(&format!("&{key}={}", enc(&value)));
                        }
                    }
                    let url = format!("{}/v1/sales/{}/print?{query}", r.base, enc(&sale_id));
                    let mut resp = r.agent.get(url).call().context("daemon unreachable")?;
                    if resp.status().as_u16() >= 400 {
                        let body: Value = resp.body_mut().read_json().unwrap_or(Value::Null);
                        bail!(
                            "{}",
                            body["error"]["message"]
                                .as_str()
                                .unwrap_or("request failed")
                        );
                    }
                    resp.body_mut().read_to_vec()?
                }
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
                print(json_mode, &v, |v| match v["printer"].as_str() {
                    Some(p) => format!("Struk dicetak ke {p} ({} byte)", v["bytes"]),
                    None => format!(
                        "ESC/POS ditulis ke {} ({} byte)",
                        v["escpos"].as_str().unwrap_or(""),
                        v["bytes"]
                    ),
                });
            }
        }
        Command::Receipt { sale_id, width, .. } => {
            let width = width.unwrap_or(32);
            let text = match open_backend(&dir)? {
                Backend::Local(mut node) => node.receipt_text(&sale_id, width)?,
                Backend::Remote(r) => r.get_text(&format!(
                    "/v1/sales/{}/receipt?width={width}",
                    enc(&sale_id)
                ))?,
            };
            if json_mode {
                println!("{}", json!({ "receipt": text }));
            } else {
                print!("{text}");
            }
        }
        Command::Store(cmd) => {
            let v = match (open_backend(&dir)?, cmd) {
                (Backend::Local(node), StoreCmd::Show) => to_value(node.profile())?,
                (Backend::Local(mut node), StoreCmd::Set(update)) => {
                    let profile = update.apply(node.profile().clone())?;
                    node.set_profile(profile)?;
                    to_value(node.profile())?
                }
                (Backend::Remote(r), StoreCmd::Show) => r.get("/v1/store")?,
                (Backend::Remote(r), StoreCmd::Set(update)) => {
                    r.post("/v1/store", &to_value(&update)?)?
                }
            };
            print(json_mode, &v, |v| {
                let tax = &v["tax_rule"];
                format!(
                    "{}\n{}\nNPWP: {}\nPajak: {} {}bp ({}), pembulatan tunai {}",
                    v["name"].as_str().unwrap_or(""),
                    v["address"].as_str().unwrap_or("-"),
                    v["npwp"].as_str().unwrap_or("-"),
                    tax["kind"].as_str().unwrap_or("none"),
                    tax["rate_bp"],
                    if tax["inclusive"].as_bool() == Some(false) {
                        "belum termasuk"
                    } else {
                        "termasuk"
                    },
                    v["cash_rounding"]["unit"]
                )
            });
        }
        Command::Shift(cmd) => {
            let mut node = match open_backend(&dir)? {
                Backend::Local(node) => node,
                Backend::Remote(_) => {
                    bail!("shifts are opened and closed on the till itself; stop `kasir run` first")
                }
            };
            let v = match cmd {
                ShiftCmd::Open { cashier, cash } => {
                    json!({ "shift_id": node.open_shift(&cashier, parse_amount(&cash)?)? })
                }
                ShiftCmd::Close { counted } => {
                    let (expected, counted) = node.close_shift(parse_amount(&counted)?)?;
                    json!({ "expected_cash": expected, "counted_cash": counted, "difference": counted - expected })
                }
            };
            print(json_mode, &v, |v| v.to_string());
        }
        Command::Run {
            listen,
            http,
            peers,
            relay,
            no_mdns,
        } => {
            let node = Node::open(&dir)?;
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
                daemon::run(
                    node,
                    RunOptions {
                        http,
                        net: Some(net),
                    },
                    cancel,
                )
                .await
            })?;
        }
        Command::Invite { till_code, role } => {
            let v = match open_backend(&dir)? {
                Backend::Local(mut node) => {
                    let role = kasir_node::membership::parse_role(role.as_deref())?;
                    json!({ "ticket": node.invite_ticket(role, till_code, vec![])? })
                }
                Backend::Remote(r) => r.post(
                    "/v1/invites",
                    &json!({ "till_code": till_code, "role": role }),
                )?,
            };
            print(json_mode, &v, |v| {
                format!(
                    "Tiket untuk till baru:\n{}",
                    v["ticket"].as_str().unwrap_or("")
                )
            });
        }
        Command::Join { ticket, till_code } => {
            let v = join::run(&dir, &ticket, till_code)?;
            print(json_mode, &v, |v| {
                format!(
                    "Bergabung ke toko {} sebagai till {}",
                    v["store_id"].as_str().unwrap_or(""),
                    v["till_code"].as_str().unwrap_or("")
                )
            });
        }
        Command::Revoke { endpoint_id } => {
            let device: kasir_crdt::DeviceId = endpoint_id.parse().map_err(|e| anyhow!("{e}"))?;
            match open_backend(&dir)? {
                Backend::Local(mut node) => node.revoke(device)?,
                Backend::Remote(r) => {
                    r.post(
                        &format!("/v1/devices/{}/revoke", enc(&endpoint_id)),
                        &json!({}),
                    )?;
                }
            }
            print(json_mode, &json!({ "ok": true }), |_| {
                format!("Perangkat {endpoint_id} dicabut")
            });
        }
        Command::Status => {
            let v = match open_backend(&dir)? {
                Backend::Local(node) => to_value(node.status()?)?,
                Backend::Remote(r) => r.get("/v1/status")?,
            };
            print(json_mode, &v, |v| {
                format!(
                    "Toko {} ({})\nTill {}  endpoint {}\n{} produk, {} penjualan, {} dokumen belum tersinkron",
                    v["store_name"].as_str().unwrap_or(""),
                    v["store_id"].as_str().unwrap_or(""),
                    v["till_code"].as_str().unwrap_or(""),
                    v["endpoint_id"].as_str().unwrap_or(""),
                    v["products"],
                    v["sales"],
                    v["unsynced_docs"]
                )
            });
        }
        Command::Rebuild => {
            let mut node = Node::open(&dir)?;
            node.rebuild_read_tables()?;
            print(json_mode, &json!({ "ok": true }), |_| {
                "Tabel baca dibangun ulang".into()
            });
        }
        Command::Compact => {
            let mut node = Node::open(&dir)?;
            let n = node.compact_all()?;
            print(json_mode, &json!({ "compacted": n }), |_| {
                format!("{n} dokumen dipadatkan")
            });
        }
        Command::Demo { sales } => demo::run(sales, json_mode)?,
        Command::Ml(cmd) => ml_command(&dir, json_mode, cmd)?,
    }
    Ok(())
}

fn read_photo(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// `kasir ml ...`, on the data directory or through the daemon holding it.
fn ml_command(dir: &Path, json_mode: bool, cmd: MlCmd) -> Result<()> {
    let b64 = |p: &Path| read_photo(p).map(|b| data_encoding::BASE64.encode(&b));
    match (open_backend(dir)?, cmd) {
        (backend, MlCmd::Enroll { sku, images }) => {
            let v = match backend {
                Backend::Local(mut node) => {
                    let photos = images
                        .iter()
                        .map(|p| read_photo(p))
                        .collect::<Result<Vec<_>>>()?;
                    json!({ "sku": sku, "references": node.ml_enroll(&sku, &photos)? })
                }
                Backend::Remote(r) => {
                    let photos = images.iter().map(|p| b64(p)).collect::<Result<Vec<_>>>()?;
                    r.post("/v1/ml/enroll", &json!({ "sku": sku, "images": photos }))?
                }
            };
            print(json_mode, &v, |v| {
                format!("{sku}: {} foto referensi", v["references"])
            });
        }
        (
            backend,
            MlCmd::Recognize {
                image,
                top,
                fallback_ms,
            },
        ) => {
            let v = match backend {
                Backend::Local(mut node) => {
                    let deadline = fallback_ms
                        .map_or_else(kasir_node::ml::fallback::deadline_from_env, |ms| {
                            Duration::from_millis(ms).min(kasir_node::ml::fallback::MAX_DEADLINE)
                        });
                    to_value(node.ml_recognize_with_fallback(
                        &read_photo(&image)?,
                        top,
                        deadline,
                    )?)?
                }
                Backend::Remote(r) => {
                    let mut url = format!("{}/v1/ml/recognize?top={top}", r.base);
                    if let Some(ms) = fallback_ms {
                        url.push_str(&format!("&fallback_ms={ms}"));
                    }
                    let resp = r
                        .agent
                        .post(url)
                        .header("content-type", "application/octet-stream")
                        .send(&read_photo(&image)?[..])
                        .context("daemon unreachable")?;
                    Remote::check(resp)?
                }
            };
            print(json_mode, &v, |v| {
                let sku = v["matches"][0]["sku"].as_str().unwrap_or("-");
                let score = v["matches"][0]["score"].as_f64().unwrap_or(0.0);
                let relay = if v["source"] == "relay" {
                    " [relay]"
                } else {
                    ""
                };
                match (v["known"] == true, v["matches"][0].is_null()) {
                    (true, _) => format!("{sku} ({score:.2}){relay}"),
                    (false, true) => "tidak dikenal (belum ada foto referensi)".into(),
                    (false, false) => format!("tidak dikenal (terdekat {sku} {score:.2})"),
                }
            });
        }
        (backend, MlCmd::Feedback { image, sku }) => {
            match backend {
                Backend::Local(mut node) => node.ml_feedback(&read_photo(&image)?, &sku)?,
                Backend::Remote(r) => {
                    r.post(
                        "/v1/ml/feedback",
                        &json!({ "sku": sku, "image": b64(&image)? }),
                    )?;
                }
            }
            print(json_mode, &json!({ "ok": true }), |_| {
                format!("Koreksi dicatat: {sku}")
            });
        }
    }
    Ok(())
}
