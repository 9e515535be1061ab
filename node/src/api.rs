//! The till's API vocabulary: every request and response of the HTTP API, and each
//! operation written once as an [`Operation`] — its route, its request and response
//! types and the engine call — so the daemon's router and the `kasir` command's client
//! are both built from the same definitions.
//!
//! **API Boundary:** the JSON shapes here are the contract's
//! (`../shared/design/contract.md`, "Till HTTP API"): add fields freely, never rename or
//! drop one.

use kasir_crdt::Qty;
use kasir_crdt::money::qty_units;
use kasir_crdt::records::{MovementKind, Payment, Sale};
use kasir_crdt::store::StoreProfile;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::NodeError;
use crate::node::Node;
use crate::people::{Action, Approval, Principal, UserInfo};
use crate::profile::ProfileUpdate;
pub use crate::refunds::RefundOutcome;
pub use crate::reports::{AuditEntry, AuditTrail, ZFigures, ZReport, ZTill};
pub use crate::shifts::{OpenShift, ShiftReport};
pub use crate::tables::{ProductRow, SaleLineRow, SaleRow, StockRow};
use kasir_crdt::records::CashMoveKind;
use kasir_crdt::store::UserRole;

/// The HTTP method of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Reads; the request travels in the query string.
    Get,
    /// Writes; the request travels as a JSON body.
    Post,
}

/// What an operation may need besides the node: facts only the running daemon knows.
#[derive(Debug, Clone, Default)]
pub struct OpContext {
    /// Where the daemon's sync endpoint listens (for invite tickets).
    pub sync_addrs: Vec<String>,
    /// Who asks: the logged-in user or the device (`None` only before authentication,
    /// which operations that need a person refuse).
    pub principal: Option<Principal>,
}

impl OpContext {
    /// Who asks, or `unauthenticated`.
    pub fn principal(&self) -> Result<&Principal, NodeError> {
        self.principal
            .as_ref()
            .ok_or_else(|| NodeError::Unauthenticated("no credentials".into()))
    }
}

/// One operation of the till's API, written once: the daemon routes `PATH` to
/// [`Operation::run`] and the `kasir` command calls the same `run` on a data directory it
/// opened itself, or sends the request to the daemon holding it.
///
/// Path parameters (`{sale_id}`) are fields of the request of the same name.
pub trait Operation: 'static {
    /// The request (query string for [`Method::Get`], JSON body for [`Method::Post`]).
    type Request: Serialize + DeserializeOwned + Send + 'static;
    /// The response (a JSON body).
    type Response: Serialize + DeserializeOwned + Send + 'static;
    /// The HTTP method.
    const METHOD: Method;
    /// The route, in axum's syntax (`/v1/sales/{sale_id}/void`).
    const PATH: &'static str;
    /// Request fields whose *values* a caller gets wrong (a quantity with four decimals,
    /// an unknown movement kind): refused as `invalid_request`, where anything else that
    /// does not fit the request's shape is `invalid_json`. Paths as `serde_path_to_error`
    /// prints them, with `[]` for any index.
    const VALUE_FIELDS: &'static [&'static str] = &[];

    /// Runs the operation on the node.
    fn run(
        node: &mut Node,
        ctx: &OpContext,
        req: Self::Request,
    ) -> Result<Self::Response, NodeError>;

    /// Whether the answer is `201 Created` (new records) rather than `200 OK`.
    fn created(_response: &Self::Response) -> bool {
        Self::METHOD == Method::Post
    }

    /// Whether the answer is a sale this call created (counted in `/metrics`).
    fn is_new_sale(_response: &Self::Response) -> bool {
        false
    }
}

/// The names of the path parameters of a route pattern (`{sale_id}` → `sale_id`).
pub fn path_params(pattern: &str) -> Vec<&str> {
    pattern
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

/// The error body of every failed request: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// A stable snake_case code (`unknown_sku`, `insufficient_payment`...).
    pub code: String,
    /// A sentence for people.
    pub message: String,
}

/// `{"ok": true}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    /// Always true.
    pub ok: bool,
}

impl Done {
    /// The answer.
    pub const OK: Done = Done { ok: true };
}

/// A request without fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// How a new store is created (`kasir init`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InitOptions {
    /// The shop's name.
    pub store_name: String,
    /// This till's short code, e.g. `T1`.
    pub till_code: String,
    /// Encrypt the data directory at rest, with a key held as this says (`--encrypt`).
    #[serde(skip)]
    pub encrypt: Option<crate::vault::Encrypt>,
}

/// Who this till is (`kasir init`, `kasir join`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TillIdentity {
    /// The store.
    pub store_id: String,
    /// This device's endpoint id.
    pub endpoint_id: String,
    /// This till's code.
    pub till_code: String,
    /// Its role (`owner`, `manager`, `till`), when it just joined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The relay this till linked (`kasir join` with an adoption ticket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay: Option<String>,
    /// The relay's till code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_code: Option<String>,
    /// Whether the relay adopted the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopted: Option<bool>,
}

/// A product to add or update. `None` fields keep what the catalog has.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductInput {
    /// SKU (identity of the product).
    pub sku: String,
    /// Name.
    pub name: String,
    /// Selling price.
    pub price: i64,
    /// Barcodes to add.
    #[serde(default)]
    pub barcodes: Vec<String>,
    /// One barcode to add (the contract's spelling; joins `barcodes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barcode: Option<String>,
    /// Cost.
    #[serde(default)]
    pub cost: Option<i64>,
    /// Category.
    #[serde(default)]
    pub category: Option<String>,
    /// Unit (`pcs` by default).
    #[serde(default)]
    pub unit: Option<String>,
    /// Set on-hand stock to this quantity.
    #[serde(default, with = "qty_units::option")]
    pub stock: Option<Qty>,
    /// Stock below which the product is low (kept when absent).
    #[serde(
        default,
        with = "qty_units::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub min_stock: Option<Qty>,
    /// Tax code: `standard` (the store's rule), `exempt` (sembako: beras, telur…),
    /// `ppn`, `ppn_full` (luxury), `pbjt` (ready food); kept when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_code: Option<String>,
    /// Other units it is sold in (pak, dus); kept when absent, `[]` removes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<Vec<UnitPrice>>,
    /// Grosir prices by quantity; kept when absent, `[]` removes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiers: Option<Vec<TierPrice>>,
    /// Promotions (`{"type": "member_price", "price": 3000, "until": "2026-12-31"}`,
    /// `{"type": "buy_get", "buy": 2, "free": 1}`, `{"type": "bundle", "qty": 3,
    /// "price": 10000}`); kept when absent, `[]` removes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promos: Option<Vec<kasir_crdt::promo::Promo>>,
}

/// Another unit a product is sold in, as the API speaks it (quantities in units).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitPrice {
    /// Its name (`dus`, `pak`, `renceng`).
    pub name: String,
    /// Stock units in one (40 pcs in a dus).
    #[serde(with = "qty_units")]
    pub per: Qty,
    /// Its price.
    pub price: i64,
    /// Its own barcodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub barcodes: Vec<String>,
}

/// A grosir price as the API speaks it: from `min_qty` stock units on one line, each
/// costs `price`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierPrice {
    /// The least quantity.
    #[serde(with = "qty_units")]
    pub min_qty: Qty,
    /// The price per stock unit.
    pub price: i64,
}

impl From<&kasir_crdt::records::SellUnit> for UnitPrice {
    fn from(u: &kasir_crdt::records::SellUnit) -> UnitPrice {
        UnitPrice {
            name: u.name.clone(),
            per: u.per,
            price: u.price,
            barcodes: u.barcodes.clone(),
        }
    }
}

impl From<&UnitPrice> for kasir_crdt::records::SellUnit {
    fn from(u: &UnitPrice) -> kasir_crdt::records::SellUnit {
        kasir_crdt::records::SellUnit {
            name: u.name.trim().to_owned(),
            per: u.per,
            price: u.price,
            barcodes: u.barcodes.clone(),
        }
    }
}

impl From<&kasir_crdt::records::PriceTier> for TierPrice {
    fn from(t: &kasir_crdt::records::PriceTier) -> TierPrice {
        TierPrice {
            min_qty: t.min_qty,
            price: t.price,
        }
    }
}

impl From<&TierPrice> for kasir_crdt::records::PriceTier {
    fn from(t: &TierPrice) -> kasir_crdt::records::PriceTier {
        kasir_crdt::records::PriceTier {
            min_qty: t.min_qty,
            price: t.price,
        }
    }
}

impl ProductInput {
    /// Every barcode the input names.
    pub fn all_barcodes(&self) -> impl Iterator<Item = &String> {
        self.barcodes.iter().chain(self.barcode.iter())
    }
}

/// The result of adding a product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductAdded {
    /// Product id.
    pub product_id: String,
    /// SKU.
    pub sku: String,
}

/// A product search.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProductSearch {
    /// Words of the name, a SKU or a barcode.
    #[serde(default)]
    pub q: String,
    /// At most this many results (20 by default).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// Products found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProductList {
    /// Best first.
    pub products: Vec<ProductRow>,
}

/// Which stock levels to list.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StockQuery {
    /// Only this SKU.
    #[serde(default)]
    pub sku: Option<String>,
}

/// Stock levels.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StockList {
    /// By SKU.
    pub stock: Vec<StockRow>,
}

/// Which receipts and returns to list.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PurchaseQuery {
    /// Only this SKU (or barcode).
    #[serde(default)]
    pub sku: Option<String>,
    /// Only this supplier.
    #[serde(default)]
    pub supplier: Option<String>,
    /// At most this many (default 100, at most 1000).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// Receipts from and returns to suppliers, newest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PurchaseList {
    /// The movements.
    pub purchases: Vec<crate::tables::PurchaseRow>,
}

/// A requested stock movement.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MovementInput {
    /// `receive`, `adjust`, `opname`, `supplier_return` or `transfer`.
    pub kind: MovementKind,
    /// SKU or barcode.
    pub sku: String,
    /// Quantity for receive (positive) and adjust (signed).
    #[serde(default, with = "qty_units::option")]
    pub qty: Option<Qty>,
    /// Counted quantity for an opname.
    #[serde(default, with = "qty_units::option")]
    pub counted: Option<Qty>,
    /// Free text.
    #[serde(default)]
    pub note: Option<String>,
    /// For a receipt or a return to the supplier: rupiah per stock unit (harga beli).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<i64>,
    /// For a receipt or a return to the supplier: the supplier's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supplier: Option<String>,
    /// For a `transfer` (negative `qty` sends, positive receives): the other outlet's
    /// store id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_store: Option<String>,
    /// For a received `transfer`: the id on the sending outlet's slip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_id: Option<String>,
    /// A supervisor's PIN, for an adjustment or stocktake by a cashier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
}

/// A recorded movement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MovementOutcome {
    /// Movement id (a sent transfer's id, for the receiving outlet).
    pub movement_id: String,
    /// The change applied to on-hand stock.
    pub delta: f64,
}

/// One line of a sale request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaleItem {
    /// SKU or barcode.
    #[serde(rename = "sku")]
    pub code: String,
    /// Quantity.
    #[serde(with = "qty_units")]
    pub qty: Qty,
    /// Discount in rupiah on this line.
    #[serde(default)]
    pub discount: i64,
    /// Discount in percent of the line (0–100), instead of `discount`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount_percent: Option<u8>,
    /// Another unit price than the catalog's (a price override: a supervisor's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<i64>,
    /// The unit sold (`dus`), when not the stock unit; a unit's own barcode says it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// A sale request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaleRequest {
    /// Client-chosen id: the same id again returns the first result.
    #[serde(default)]
    pub client_id: Option<String>,
    /// What is bought.
    #[serde(rename = "lines")]
    pub items: Vec<SaleItem>,
    /// Payments; exact cash when empty.
    #[serde(default)]
    pub payments: Vec<Payment>,
    /// Cashier name (the logged-in user's name replaces it).
    #[serde(default)]
    pub cashier: Option<String>,
    /// A supervisor's PIN, for a discount above the store's threshold or a price
    /// override by a cashier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    /// The customer (required when a payment's method is `kasbon`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// When the kasbon part falls due (`YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_date: Option<String>,
    /// A discount on the whole cart in rupiah, spread over the lines (for their tax).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cart_discount: Option<i64>,
    /// A discount on the whole cart in percent (0–100), instead of `cart_discount`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cart_discount_percent: Option<u8>,
}

/// The result of a sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleOutcome {
    /// Sale id.
    pub sale_id: String,
    /// Receipt number.
    pub receipt_no: String,
    /// Total.
    pub total: i64,
    /// Change.
    pub change: i64,
    /// `false` when this is the first result of an earlier request with the same client id.
    #[serde(skip)]
    pub created: bool,
}

/// Which sales to list.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SalesQuery {
    /// Business date `YYYY-MM-DD` (all when absent).
    #[serde(default)]
    pub date: Option<String>,
    /// Only sales whose receipt number contains this (`0042`, `T1-2026`); newest
    /// first then, at most [`MAX_FOUND_SALES`].
    #[serde(default)]
    pub receipt: Option<String>,
}

/// The most sales a receipt-number search returns.
pub const MAX_FOUND_SALES: usize = 50;

/// Sales.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SaleList {
    /// Oldest first.
    pub sales: Vec<SaleRow>,
}

/// One sale, named by its id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SaleRef {
    /// The sale id.
    pub sale_id: String,
}

/// A sale's full record with its listed status.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SaleDetail {
    /// The record as its ledger holds it.
    #[serde(flatten)]
    pub sale: Sale,
    /// `completed`, `voided`...
    pub status: String,
}

/// Voiding a whole sale.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoidRequest {
    /// The sale.
    pub sale_id: String,
    /// Why.
    #[serde(default)]
    pub reason: String,
    /// A supervisor's (or above) PIN, when the person voiding is a cashier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
}

/// A recorded void.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VoidOutcome {
    /// The void's id.
    pub void_id: String,
    /// Who approved it, when approval was needed.
    #[serde(default)]
    pub approved_by: Option<String>,
}

/// A receipt as text.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReceiptQuery {
    /// The sale.
    pub sale_id: String,
    /// Columns: 32 (58 mm) by default, 48 (80 mm), 42, 64.
    #[serde(default)]
    pub width: Option<usize>,
}

/// A receipt's ESC/POS bytes, for a printer profile.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EscposQuery {
    /// Columns, when no profile is named.
    #[serde(default)]
    pub width: Option<usize>,
    /// `58`, `58b`, `80`, `80b` or `80-512`.
    #[serde(default)]
    pub profile: Option<String>,
    /// A QR code to print at the end.
    #[serde(default)]
    pub qr: Option<String>,
    /// QR codes as raster images.
    #[serde(default)]
    pub raster_qr: bool,
    /// Pulse the cash drawer.
    #[serde(default)]
    pub drawer: bool,
    /// Mark the receipt as a copy.
    #[serde(default)]
    pub reprint: bool,
}

/// A one-time join ticket.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    /// The till code the new device gets.
    #[serde(default)]
    pub till_code: Option<String>,
    /// `till` or `manager`.
    #[serde(default)]
    pub role: Option<String>,
}

/// The ticket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InviteOutcome {
    /// `kasir1…`.
    pub ticket: String,
}

/// An unused invite to cancel.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelInviteRequest {
    /// The ticket (`kasir1…`) it was handed out as.
    pub ticket: String,
}

/// What `kasir upgrade` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpgradeOutcome {
    /// The store.
    pub store_id: String,
    /// Changes from before signatures this device signed an adoption of.
    pub adopted_changes: usize,
}

/// A device to revoke.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevokeRequest {
    /// Its endpoint id.
    pub endpoint_id: String,
}

/// A relay's adoption ticket, redeemed by the daemon (`kasir join` while it runs).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdoptRequest {
    /// The ticket from `kasir-relay store adopt`.
    pub ticket: String,
}

/// Photos of a product to enrol.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The product.
    pub sku: String,
    /// Base64 JPEG or PNG photos.
    pub images: Vec<String>,
}

/// What enrolment gave.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnrollOutcome {
    /// The product.
    pub sku: String,
    /// Reference photos it has now.
    pub references: usize,
}

/// A cashier's correction.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackRequest {
    /// The product the photo really shows.
    pub sku: String,
    /// A base64 JPEG or PNG photo.
    pub image: String,
}

/// Recognition's options besides the photo.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RecognizeQuery {
    /// How many candidates (3 by default).
    #[serde(default)]
    pub top: Option<usize>,
    /// How long to wait for the relay (ms; 0 never asks). Default: `KASIR_ML_FALLBACK_MS`
    /// or 300 ms.
    #[serde(default)]
    pub fallback_ms: Option<u64>,
}

/// Identity and sync state of the node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Store id.
    pub store_id: String,
    /// This device's endpoint id.
    pub endpoint_id: String,
    /// This till's code.
    pub till_code: String,
    /// Store name.
    pub store_name: String,
    /// Peers and whether they are connected.
    pub peers: Vec<PeerStatus>,
    /// Documents with changes not yet acknowledged by any peer.
    pub unsynced_docs: u64,
    /// Documents held.
    pub docs: u64,
    /// Products in the catalog.
    pub products: u64,
    /// Sales held (all tills).
    pub sales: u64,
}

/// One peer in the status.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerStatus {
    /// The peer's endpoint id.
    pub endpoint_id: String,
    /// Whether a connection is open now.
    pub connected: bool,
    /// Its till code (`RELAY` for the relay).
    #[serde(default)]
    pub till_code: String,
    /// Documents whose latest changes it has not acknowledged: how far behind this
    /// till it is (0: in step).
    #[serde(default)]
    pub behind_docs: u64,
}

/// The store's roster, as this till holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceList {
    /// Every device ever admitted, revoked ones included.
    pub devices: Vec<DeviceInfo>,
}

/// One device of the roster.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// Its endpoint id.
    pub endpoint_id: String,
    /// Its till code (`RELAY` for the relay).
    pub till_code: String,
    /// `owner`, `manager`, `till` or `relay`.
    pub role: String,
    /// Whether it was revoked.
    pub revoked: bool,
}

/// `GET /v1/devices`.
#[derive(Debug)]
pub struct Devices;

impl Operation for Devices {
    type Request = Empty;
    type Response = DeviceList;
    const METHOD: Method = Method::Get;
    const PATH: &'static str = "/v1/devices";

    fn run(node: &mut Node, _: &OpContext, _: Empty) -> Result<DeviceList, NodeError> {
        Ok(DeviceList {
            devices: node
                .roster()
                .into_iter()
                .map(|(id, d)| DeviceInfo {
                    endpoint_id: id.to_string(),
                    till_code: d.till_code,
                    role: d.role.as_str().to_owned(),
                    revoked: d.revoked,
                })
                .collect(),
        })
    }
}

/// `GET /v1/status`.
#[derive(Debug)]
pub struct Status;

impl Operation for Status {
    type Request = Empty;
    type Response = NodeStatus;
    const METHOD: Method = Method::Get;
    const PATH: &'static str = "/v1/status";

    fn run(node: &mut Node, _: &OpContext, _: Empty) -> Result<NodeStatus, NodeError> {
        node.status()
    }
}

/// `POST /v1/products`.
#[derive(Debug)]
pub struct AddProduct;

impl Operation for AddProduct {
    type Request = ProductInput;
    type Response = ProductAdded;
    const METHOD: Method = Method::Post;
    const PATH: &'static str = "/v1/products";
    const VALUE_FIELDS: &'static [&'static str] = &["stock"];

    fn run(node: &mut Node, ctx: &OpContext, req: ProductInput) -> Result<ProductAdded, NodeError> {
        let by = ctx.principal()?.clone();
        node.authorize(&by, Action::EditCatalog, None)?;
        let before = node.product_row(&req.sku).ok().map(|p| p.price);
        let added = node.add_product(&req)?;
        if before.is_some_and(|price| price != req.price) {
            node.record_audit("price_change", by.user_name(), Some(&added.sku), None)?;
        }
        Ok(added)
    }
}

/// `GET /v1/products?q=&limit=`.
#[derive(Debug)]
pub struct SearchProducts;

impl Operation for SearchProducts {
    type Request = ProductSearch;
    type Response = ProductList;
    const METHOD: Method = Method::Get;
    const PATH: &'static str = "/v1/products";

    fn run(node: &mut Node, _: &OpContext, req: ProductSearch) -> Result<ProductList, NodeError> {
        Ok(ProductList {
            products: node.search_products(&req.q, req.limit.unwrap_or(20))?,
        })
    }
}

/// `GET /v1/stock[?sku=]`.
#[derive(Debug)]
pub struct Stock;

impl Operation for Stock {
    type Request = StockQuery;
    type Response = StockList;
    const METHOD: Method = Method::Get;
    const PATH: &'static str = "/v1/stock";

    fn run(node: &mut Node, _: &OpContext, req: StockQuery) -> Result<StockList, NodeError> {
        Ok(StockList {
            stock: node.stock(req.sku.as_deref())?,
        })
    }
}

/// `GET /v1/purchases[?sku=&supplier=&limit=]`: goods received and returned, with cost
/// and supplier.
#[derive(Debug)]
pub struct Purchases;

impl Operation for Purchases {
    type Request = PurchaseQuery;
    type Response = PurchaseList;
    const METHOD: Method = Method::Get;
    const PATH: &'static str = "/v1/purchases";

    fn run(node: &mut Node, _: &OpContext, req: PurchaseQuery) -> Result<PurchaseList, NodeError> {
        Ok(PurchaseList {
            purchases: node.purchases(
                req.sku.as_deref(),
                req.supplier.as_deref(),
                req.limit.unwrap_or(100).min(1000),
            )?,
        })
    }
}

/// `POST /v1/stock/movements`.
#[derive(Debug)]
pub struct RecordMovement;

impl Operation for RecordMovement {
    type Request = MovementInput;
    type Response = MovementOutcome;
    const METHOD: Method = Method::Post;
    const PATH: &'static str = "/v1/stock/movements";
    const VALUE_FIELDS: &'static [&'static str] = &["kind", "qty", "counted"];

    fn run(
        node: &mut Node,
        ctx: &OpContext,
        req: MovementInput,
    ) -> Result<MovementOutcome, NodeError> {
        let by = ctx.principal()?.clone();
        let approved_by = match req.kind {
            MovementKind::Receive => None,
            // Goods arriving from another outlet are a receipt too.
            MovementKind::Transfer if req.qty.is_some_and(|q| q.milli() > 0) => None,
            // Goods leaving the shop, like an adjustment: a supervisor's.
            _ => node.authorize(&by, Action::StockAdjust, req.approval.as_ref())?,
        };
        node.record_movement_by(&req, by.user_name().map(str::to_owned), approved_by)
    }
}

/// `POST /v1/sales`.
#[derive(Debug)]
pub struct Sell;

impl Operation for Sell {
    type Request = SaleRequest;
    type Response = SaleOutcome;
    const METHOD: Method = Method::Post;
    const PATH: &'static str = "/v1/sales";
    const VALUE_FIELDS: &'static [&'static str] = &["lines[].qty"];

    fn run(node: &mut Node, ctx: &OpContext, req: SaleRequest) -> Result<SaleOutcome, NodeError> {
        let by = ctx.principal()?.clone();
        let needs = node.sale_needs(&req)?;
        let approved_by = node.authorize_all(&by, &needs, req.approval.as_ref())?;
        node.sell_by(&req, by.user_ref(), approved_by)
    }

    fn created(response: &SaleOutcome) -> bool {
        response.created
    }

    fn is_new_sale(response: &SaleOutcome) -> bool {
        response.created
    }
}

/// `GET /v1/sales[?date=]`.
#[derive(Debug)]
pub struct ListSales;

impl Operation for ListSales {
    type Request = SalesQuery;
    type Response = SaleList;
    const METHOD: Method = Method::Get;
    const PATH: &'static str = "/v1/sales";

    fn run(node: &mut Node, _: &OpContext, req: SalesQuery) -> Result<SaleList, NodeError> {
        Ok(SaleList {
            sales: node.find_sales(&req)?,
        })
    }
}

/// `GET /v1/sales/{sale_id}`.
#[derive(Debug)]
pub struct GetSale;

impl Operation for GetSale {
    type Request = SaleRef;
    type Response = SaleDetail;
    const METHOD: Method = Method::Get;
    const PATH: &'static str = "/v1/sales/{sale_id}";

    fn run(node: &mut Node, _: &OpContext, req: SaleRef) -> Result<SaleDetail, NodeError> {
        Ok(SaleDetail {
            sale: node.sale(&req.sale_id)?,
            status: node.sale_status(&req.sale_id)?.as_str().to_owned(),
        })
    }
}

/// `POST /v1/sales/{sale_id}/void`.
#[derive(Debug)]
pub struct VoidSale;

impl Operation for VoidSale {
    type Request = VoidRequest;
    type Response = VoidOutcome;
    const METHOD: Method = Method::Post;
    const PATH: &'static str = "/v1/sales/{sale_id}/void";

    fn run(node: &mut Node, ctx: &OpContext, req: VoidRequest) -> Result<VoidOutcome, NodeError> {
        let by = ctx.principal()?.clone();
        let approved_by = node.authorize(&by, Action::Void, req.approval.as_ref())?;
        let void_id = node.void_sale_by(
            &req.sale_id,
            &req.reason,
            by.user_name().map(str::to_owned),
            approved_by.clone(),
        )?;
        Ok(VoidOutcome {
            void_id,
            approved_by,
        })
    }
}

/// Whether the caller may invite, cancel invites or revoke: this till must be one whose
/// peers accept roster changes (an owner or manager device), and the person a manager
/// or the owner.
fn may_manage_devices(node: &mut Node, ctx: &OpContext) -> Result<(), NodeError> {
    node.require_admin("manage the store's devices")?;
    node.authorize(ctx.principal()?, Action::ManageDevices, None)
        .map(drop)
}

/// `POST /v1/invites`.
#[derive(Debug)]
pub struct Invite;

impl Operation for Invite {
    type Request = InviteRequest;
    type Response = InviteOutcome;
    const METHOD: Method = Method::Post;
    const PATH: &'static str = "/v1/invites";
    const VALUE_FIELDS: &'static [&'static str] = &["role"];

    fn run(
        node: &mut Node,
        ctx: &OpContext,
        req: InviteRequest,
    ) -> Result<InviteOutcome, NodeError> {
        may_manage_devices(node, ctx)?;
        let role = kasir_sync::membership::parse_role(req.role.as_deref())?;
        Ok(InviteOutcome {
            ticket: node.invite_ticket(role, req.till_code, ctx.sync_addrs.clone())?,
        })
    }
}

/// `POST /v1/invites/cancel`: the ticket can no longer be redeemed anywhere (the store
/// document records it expired).
#[derive(Debug)]
pub struct CancelInvite;

impl Operation for CancelInvite {
    type Request = CancelInviteRequest;
    type Response = Done;
    const METHOD: Method = Method::Post;
    const PATH: &'static str = "/v1/invites/cancel";
    const VALUE_FIELDS: &'static [&'static str] = &["ticket"];

    fn run(node: &mut Node, ctx: &OpContext, req: CancelInviteRequest) -> Result<Done, NodeError> {
        may_manage_devices(node, ctx)?;
        let ticket = kasir_sync::membership::Ticket::decode(req.ticket.trim())
            .map_err(|e| NodeError::Invalid(e.to_string()))?;
        node.cancel_invite(&ticket)?;
        Ok(Done::OK)
    }

    fn created(_: &Done) -> bool {
        false
    }
}

/// `POST /v1/devices/{endpoint_id}/revoke`.
#[derive(Debug)]
pub struct Revoke;

impl Operation for Revoke {
    type Request = RevokeRequest;
    type Response = Done;
    const METHOD: Method = Method::Post;
    const PATH: &'static str = "/v1/devices/{endpoint_id}/revoke";

    fn run(node: &mut Node, ctx: &OpContext, req: RevokeRequest) -> Result<Done, NodeError> {
        may_manage_devices(node, ctx)?;
        let device = req
            .endpoint_id
            .parse()
            .map_err(|e: kasir_crdt::ids::IdError| NodeError::Invalid(e.to_string()))?;
        node.revoke(device)?;
        Ok(Done::OK)
    }

    fn created(_: &Done) -> bool {
        false
    }
}

/// `GET /v1/store`.
#[derive(Debug)]
pub struct GetProfile;

impl Operation for GetProfile {
    type Request = Empty;
    type Response = StoreProfile;
    const METHOD: Method = Method::Get;
    const PATH: &'static str = "/v1/store";

    fn run(node: &mut Node, _: &OpContext, _: Empty) -> Result<StoreProfile, NodeError> {
        Ok(node.profile().clone())
    }
}

/// `POST /v1/store`.
#[derive(Debug)]
pub struct SetProfile;

impl Operation for SetProfile {
    type Request = ProfileUpdate;
    type Response = StoreProfile;
    const METHOD: Method = Method::Post;
    const PATH: &'static str = "/v1/store";

    fn run(
        node: &mut Node,
        ctx: &OpContext,
        req: ProfileUpdate,
    ) -> Result<StoreProfile, NodeError> {
        let by = ctx.principal()?.clone();
        node.authorize(&by, Action::EditSettings, None)?;
        let profile = req.apply(node.profile().clone())?;
        node.set_profile(profile)?;
        node.record_audit("profile_change", by.user_name(), None, None)?;
        Ok(node.profile().clone())
    }

    fn created(_: &StoreProfile) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_params_are_read_from_the_route() {
        assert_eq!(path_params(VoidSale::PATH), vec!["sale_id"]);
        assert_eq!(path_params(Revoke::PATH), vec!["endpoint_id"]);
        assert!(path_params(Sell::PATH).is_empty());
    }

    #[test]
    fn a_sale_request_reads_the_contracts_json_and_writes_it_back() {
        let body = r#"{"client_id":"c1","lines":[{"sku":"KOPI","qty":1.5}],"payments":[{"method":"cash","amount":5000}]}"#;
        let req: SaleRequest = serde_json::from_str(body).expect("parse");
        assert_eq!(req.items[0].code, "KOPI");
        assert_eq!(req.items[0].qty, Qty(1500));
        let back: SaleRequest =
            serde_json::from_value(serde_json::to_value(&req).expect("json")).expect("again");
        assert_eq!(back.items[0].qty, Qty(1500));
        assert!(
            serde_json::from_str::<SaleRequest>(r#"{"lines":[{"sku":"K","qty":1.2345}]}"#).is_err()
        );
    }
}

/// `POST /v1/users`: a new user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddUserRequest {
    /// Their name (they log in with it).
    pub name: String,
    /// Their role.
    pub role: UserRole,
    /// Their PIN, 4 to 12 digits (only its hash is kept).
    pub pin: String,
}

/// `GET /v1/users`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserList {
    /// Every user, by name.
    pub users: Vec<UserInfo>,
}

/// A user named in the path.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserRef {
    /// The user's id.
    pub user_id: String,
}

/// `POST /v1/users/{user_id}/pin`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetPinRequest {
    /// The user's id.
    pub user_id: String,
    /// The new PIN.
    pub pin: String,
}

/// `POST /v1/sessions`: a login with a PIN.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginRequest {
    /// The user's name…
    #[serde(default)]
    pub name: Option<String>,
    /// …or id.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Their PIN.
    pub pin: String,
}

/// `GET /v1/users` (`kasir user list`).
#[derive(Debug)]
pub struct ListUsers;

impl Operation for ListUsers {
    type Request = Empty;
    type Response = UserList;
    const METHOD: Method = Method::Get;
    const PATH: &'static str = "/v1/users";

    fn run(node: &mut Node, _: &OpContext, _: Empty) -> Result<UserList, NodeError> {
        Ok(UserList {
            users: node.users(),
        })
    }
}

/// `POST /v1/users` (`kasir user add`).
#[derive(Debug)]
pub struct AddUser;

impl Operation for AddUser {
    type Request = AddUserRequest;
    type Response = UserInfo;
    const METHOD: Method = Method::Post;
    const PATH: &'static str = "/v1/users";
    const VALUE_FIELDS: &'static [&'static str] = &["role"];

    fn run(node: &mut Node, ctx: &OpContext, req: AddUserRequest) -> Result<UserInfo, NodeError> {
        let by = ctx.principal()?.clone();
        node.add_user(&by, &req.name, req.role, &req.pin)
    }
}

/// `POST /v1/users/{user_id}/disable` (`kasir user disable`).
#[derive(Debug)]
pub struct DisableUser;

impl Operation for DisableUser {
    type Request = UserRef;
    type Response = Done;
    const METHOD: Method = Method::Post;
    const PATH: &'static str = "/v1/users/{user_id}/disable";

    fn run(node: &mut Node, ctx: &OpContext, req: UserRef) -> Result<Done, NodeError> {
        let by = ctx.principal()?.clone();
        node.disable_user(&by, &req.user_id)?;
        Ok(Done::OK)
    }

    fn created(_: &Done) -> bool {
        false
    }
}

/// `POST /v1/users/{user_id}/pin` (`kasir user set-pin`).
#[derive(Debug)]
pub struct SetPin;

impl Operation for SetPin {
    type Request = SetPinRequest;
    type Response = Done;
    const METHOD: Method = Method::Post;
    const PATH: &'static str = "/v1/users/{user_id}/pin";

    fn run(node: &mut Node, ctx: &OpContext, req: SetPinRequest) -> Result<Done, NodeError> {
        let by = ctx.principal()?.clone();
        node.set_pin(&by, &req.user_id, &req.pin)?;
        Ok(Done::OK)
    }

    fn created(_: &Done) -> bool {
        false
    }
}

/// One returned line of a refund request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundItem {
    /// SKU (or barcode) as sold.
    pub sku: String,
    /// Quantity returned.
    #[serde(with = "qty_units")]
    pub qty: Qty,
}

/// `POST /v1/sales/{sale_id}/refund`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    /// The sale.
    pub sale_id: String,
    /// What comes back.
    pub lines: Vec<RefundItem>,
    /// Why.
    pub reason: String,
    /// A supervisor's (or above) PIN, when the person refunding is a cashier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
}

/// `POST /v1/sales/{sale_id}/refund` (`kasir refund`).
#[derive(Debug)]
pub struct RefundSale;

impl Operation for RefundSale {
    type Request = RefundRequest;
    type Response = RefundOutcome;
    const METHOD: Method = Method::Post;
    const PATH: &'static str = "/v1/sales/{sale_id}/refund";
    const VALUE_FIELDS: &'static [&'static str] = &["lines[].qty"];

    fn run(
        node: &mut Node,
        ctx: &OpContext,
        req: RefundRequest,
    ) -> Result<RefundOutcome, NodeError> {
        let by = ctx.principal()?.clone();
        let approved_by = node.authorize(&by, Action::Refund, req.approval.as_ref())?;
        let items: Vec<(String, Qty)> = req.lines.into_iter().map(|l| (l.sku, l.qty)).collect();
        node.refund(
            &req.sale_id,
            &items,
            &req.reason,
            by.user_name().map(str::to_owned),
            approved_by,
        )
    }
}

/// `POST /v1/shifts/open`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenShiftRequest {
    /// Cash in the drawer at the start.
    pub opening_cash: i64,
    /// The cashier, when the device (not a logged-in user) opens it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cashier: Option<String>,
}

/// An opened shift.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShiftOpened {
    /// The shift's id.
    pub shift_id: String,
}

/// `POST /v1/shifts/open` (`kasir shift open`).
#[derive(Debug)]
pub struct OpenShiftOp;

impl Operation for OpenShiftOp {
    type Request = OpenShiftRequest;
    type Response = ShiftOpened;
    const METHOD: Method = Method::Post;
    const PATH: &'static str = "/v1/shifts/open";

    fn run(
        node: &mut Node,
        ctx: &OpContext,
        req: OpenShiftRequest,
    ) -> Result<ShiftOpened, NodeError> {
        let by = ctx.principal()?.clone();
        node.authorize(&by, Action::OpenShift, None)?;
        let cashier = match (by.user_name(), req.cashier.as_deref()) {
            (Some(name), _) => name.to_owned(),
            (None, Some(name)) => name.to_owned(),
            (None, None) => {
                return Err(NodeError::Invalid(
                    "name the cashier (\"cashier\"), or log in as one".into(),
                ));
            }
        };
        Ok(ShiftOpened {
            shift_id: node.open_shift(&cashier, by.user_id(), req.opening_cash)?,
        })
    }
}

/// `POST /v1/shifts/cash`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CashRequest {
    /// `in` or `out`.
    pub kind: CashMoveKind,
    /// How much (positive).
    pub amount: i64,
    /// Why.
    pub note: String,
}

/// Recorded cash in or out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CashMoved {
    /// The record's id.
    pub cash_id: String,
}

/// `POST /v1/shifts/cash` (`kasir shift cash`).
#[derive(Debug)]
pub struct ShiftCash;

impl Operation for ShiftCash {
    type Request = CashRequest;
    type Response = CashMoved;
    const METHOD: Method = Method::Post;
    const PATH: &'static str = "/v1/shifts/cash";
    const VALUE_FIELDS: &'static [&'static str] = &["kind"];

    fn run(node: &mut Node, ctx: &OpContext, req: CashRequest) -> Result<CashMoved, NodeError> {
        let by = ctx.principal()?.clone();
        node.authorize(&by, Action::OpenShift, None)?;
        Ok(CashMoved {
            cash_id: node.cash_move(
                req.kind,
                req.amount,
                &req.note,
                by.user_name().map(str::to_owned),
            )?,
        })
    }
}

/// `POST /v1/shifts/close`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloseShiftRequest {
    /// Cash counted in the drawer.
    pub counted_cash: i64,
}

/// `POST /v1/shifts/close` (`kasir shift close`): 200 with the close's report.
#[derive(Debug)]
pub struct CloseShift;

impl Operation for CloseShift {
    type Request = CloseShiftRequest;
    type Response = ShiftReport;
    const METHOD: Method = Method::Post;
    const PATH: &'static str = "/v1/shifts/close";

    fn run(
        node: &mut Node,
        ctx: &OpContext,
        req: CloseShiftRequest,
    ) -> Result<ShiftReport, NodeError> {
        let by = ctx.principal()?.clone();
        node.authorize(&by, Action::OpenShift, None)?;
        node.close_shift(req.counted_cash, by.user_name().map(str::to_owned))
    }

    fn created(_: &ShiftReport) -> bool {
        false
    }
}

/// This till's open shift.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CurrentShift {
    /// The open shift, if any.
    pub shift: Option<OpenShift>,
}

/// `GET /v1/shifts/current`.
#[derive(Debug)]
pub struct GetCurrentShift;

impl Operation for GetCurrentShift {
    type Request = Empty;
    type Response = CurrentShift;
    const METHOD: Method = Method::Get;
    const PATH: &'static str = "/v1/shifts/current";

    fn run(node: &mut Node, _: &OpContext, _: Empty) -> Result<CurrentShift, NodeError> {
        Ok(CurrentShift {
            shift: node.open_shift_here()?,
        })
    }
}

/// A report's day.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DateQuery {
    /// Business date `YYYY-MM-DD` (today when absent).
    #[serde(default)]
    pub date: Option<String>,
}

/// `GET /v1/reports/z[?date=]` (`kasir report z`).
#[derive(Debug)]
pub struct GetZReport;

impl Operation for GetZReport {
    type Request = DateQuery;
    type Response = ZReport;
    const METHOD: Method = Method::Get;
    const PATH: &'static str = "/v1/reports/z";

    fn run(node: &mut Node, _: &OpContext, req: DateQuery) -> Result<ZReport, NodeError> {
        node.z_report(req.date.as_deref())
    }
}

/// `GET /v1/audit[?date=]` (`kasir audit`).
#[derive(Debug)]
pub struct GetAudit;

impl Operation for GetAudit {
    type Request = DateQuery;
    type Response = AuditTrail;
    const METHOD: Method = Method::Get;
    const PATH: &'static str = "/v1/audit";

    fn run(node: &mut Node, _: &OpContext, req: DateQuery) -> Result<AuditTrail, NodeError> {
        node.audit(req.date.as_deref())
    }
}

/// Which customers to list.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CustomersQuery {
    /// Only those whose name or phone contains this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
}

/// Customers with what they owe, overdue first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CustomerList {
    /// The customers.
    pub customers: Vec<crate::kasbon::CustomerBalance>,
    /// What all of them owe together.
    pub total_owed: i64,
}

/// `POST /v1/customers` (`kasir customer add`): adds a customer, or changes one.
#[derive(Debug)]
pub struct SaveCustomer;

impl Operation for SaveCustomer {
    type Request = crate::kasbon::CustomerInput;
    type Response = crate::kasbon::CustomerBalance;
    const METHOD: Method = Method::Post;
    const PATH: &'static str = "/v1/customers";

    fn run(
        node: &mut Node,
        ctx: &OpContext,
        req: crate::kasbon::CustomerInput,
    ) -> Result<crate::kasbon::CustomerBalance, NodeError> {
        let by = ctx.principal()?.clone();
        node.authorize(&by, Action::Sell, None)?;
        node.save_customer(&req)
    }
}

/// `GET /v1/customers[?q=]` (`kasir customer list`): who owes what, overdue first.
#[derive(Debug)]
pub struct ListCustomers;

impl Operation for ListCustomers {
    type Request = CustomersQuery;
    type Response = CustomerList;
    const METHOD: Method = Method::Get;
    const PATH: &'static str = "/v1/customers";

    fn run(node: &mut Node, _: &OpContext, req: CustomersQuery) -> Result<CustomerList, NodeError> {
        let customers = node.customers(req.q.as_deref())?;
        Ok(CustomerList {
            total_owed: customers.iter().map(|c| c.balance.max(0)).sum(),
            customers,
        })
    }
}

/// `POST /v1/customers/{customer_id}/payments` (`kasir customer pay`): a payment
/// against kasbon, at any till.
#[derive(Debug)]
pub struct PayKasbon;

impl Operation for PayKasbon {
    type Request = crate::kasbon::KasbonPaymentInput;
    type Response = crate::kasbon::KasbonPaid;
    const METHOD: Method = Method::Post;
    const PATH: &'static str = "/v1/customers/{customer_id}/payments";

    fn run(
        node: &mut Node,
        ctx: &OpContext,
        req: crate::kasbon::KasbonPaymentInput,
    ) -> Result<crate::kasbon::KasbonPaid, NodeError> {
        let by = ctx.principal()?.clone();
        node.authorize(&by, Action::Sell, None)?;
        node.pay_kasbon(&req, by.user_name().map(str::to_owned))
    }
}
