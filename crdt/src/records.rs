//! The immutable records a till writes into its ledger, and the product record.
//!
//! These structs *are* a storage format (they are serialised into Automerge), so field
//! names are short-lived-proof: add fields with `#[serde(default)]`, never rename.

use serde::{Deserialize, Serialize};

use crate::money::{Qty, Rupiah};
use crate::tax::TaxRule;

/// A product in the catalog. Fields merge last-writer-wins, each on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// Derived from the SKU: see [`crate::ids::product_id`].
    pub id: String,
    /// Stock keeping unit, unique in the store.
    pub sku: String,
    /// Display name (Bahasa Indonesia as the shop writes it).
    pub name: String,
    /// Barcodes (EAN-13, EAN-8, UPC-A or in-store codes).
    #[serde(default)]
    pub barcodes: Vec<String>,
    /// Selling price in rupiah.
    pub price: Rupiah,
    /// Purchase cost in rupiah, for margin reports.
    #[serde(default)]
    pub cost: Option<Rupiah>,
    /// Category name.
    #[serde(default)]
    pub category: Option<String>,
    /// Unit: `pcs`, `kg`, `liter`...
    #[serde(default = "default_unit")]
    pub unit: String,
    /// Tax code; `None` means the store's default rule.
    #[serde(default)]
    pub tax_code: Option<String>,
    /// Inactive products cannot be sold but stay in history.
    #[serde(default = "default_true")]
    pub active: bool,
    /// Stock below which the product is low (tills and head office set it). Absent
    /// from a write, the held value stays: a till that does not know the field never
    /// clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_stock: Option<Qty>,
    /// Other units it is sold in (pak, dus), each converted to [`Product::unit`]: stock
    /// stays one sum in the stock unit.
    #[serde(default)]
    pub units: Vec<SellUnit>,
    /// Grosir prices: from a quantity on one line on, a lower price per stock unit.
    #[serde(default)]
    pub tiers: Vec<PriceTier>,
    /// Promotions (member price, buy X get Y, bundle) with the days they run.
    #[serde(default)]
    pub promos: Vec<crate::promo::Promo>,
    /// When this product was last written (ms since the Unix epoch).
    #[serde(default)]
    pub updated_at_ms: i64,
}

/// Another unit a product is sold in (pak, dus, renceng): its own price and barcodes,
/// and how many stock units it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SellUnit {
    /// Its name on the struk (`dus`, `pak`).
    pub name: String,
    /// Stock units in one of it (40 pcs in a dus), thousandths.
    pub per: Qty,
    /// Its price.
    pub price: Rupiah,
    /// Its own barcodes (a carton's).
    #[serde(default)]
    pub barcodes: Vec<String>,
}

/// A grosir price: buying at least `min_qty` stock units on one line, each costs
/// `price`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceTier {
    /// The least quantity (stock units, thousandths).
    pub min_qty: Qty,
    /// The price per stock unit from there on.
    pub price: Rupiah,
}

/// The grosir price for `qty` stock units on one line, of tiers given as `(min_qty,
/// price)`: the tier with the largest minimum `qty` reaches, if any.
pub fn tier_price(tiers: impl IntoIterator<Item = (Qty, Rupiah)>, qty: Qty) -> Option<Rupiah> {
    tiers
        .into_iter()
        .filter(|(min, _)| *min <= qty)
        .max_by_key(|(min, _)| *min)
        .map(|(_, price)| price)
}

/// The unit a sale line was sold in, when not the product's stock unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineUnit {
    /// Its name (`dus`).
    pub name: String,
    /// Stock units in one (thousandths).
    pub per: Qty,
}

impl LineUnit {
    /// `qty` of a line sold in `unit` (the stock unit when `None`), in stock units.
    pub fn in_stock_units(unit: Option<&LineUnit>, qty: Qty) -> Qty {
        unit.map_or(qty, |u| u.stock_qty(qty))
    }

    /// `qty` of this unit in stock units (thousandths, rounded half away from zero).
    pub fn stock_qty(&self, qty: Qty) -> Qty {
        let milli = i128::from(qty.milli()) * i128::from(self.per.milli());
        let rounded = (milli + milli.signum() * 500) / 1000;
        Qty(i64::try_from(rounded).unwrap_or(if milli < 0 { i64::MIN } else { i64::MAX }))
    }
}

fn default_unit() -> String {
    "pcs".to_owned()
}

fn default_true() -> bool {
    true
}

/// One line of a sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleLine {
    /// The product sold.
    pub product_id: String,
    /// Its SKU at the time of sale.
    pub sku: String,
    /// Its name at the time of sale (receipts reprint exactly what was sold).
    pub name: String,
    /// Quantity in thousandths.
    pub qty: Qty,
    /// Price per unit.
    pub unit_price: Rupiah,
    /// Discount on this line in rupiah (positive reduces the price).
    #[serde(default)]
    pub discount: Rupiah,
    /// This line's share of the sale's tax (sums exactly to the sale's tax).
    #[serde(default)]
    pub tax: Rupiah,
    /// `unit_price × qty − discount`.
    pub line_total: Rupiah,
    /// The product's tax code when it is not the store's rule (`exempt`, `pbjt`…;
    /// see [`crate::tax::TaxCode`]), so the struk marks exempt lines on every reprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_code: Option<String>,
    /// The unit sold when not the stock unit (`qty` dus of 40 pcs each).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<LineUnit>,
    /// The promotion the line got (its discount is part of `discount`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promo: Option<crate::promo::LinePromo>,
}

impl SaleLine {
    /// What the line takes from stock, in the stock unit.
    pub fn stock_qty(&self) -> Qty {
        LineUnit::in_stock_units(self.unit.as_ref(), self.qty)
    }
}

/// One payment of a sale; a sale may be split over several methods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// `cash`, `qris`, `card`, `transfer`, `ewallet`...
    pub method: String,
    /// Amount tendered in rupiah.
    pub amount: Rupiah,
    /// The payment's own reference on a non-cash payment (a QRIS RRN, an EDC approval
    /// code, a transfer's reference), printed on the struk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Who confirmed a non-cash payment the till could not check itself (a static QRIS
    /// or a transfer seen on the merchant's app, a card slip): the cashier who took it.
    /// `None` for cash, kasbon, and a dynamic QRIS the acquirer confirmed (its RRN is
    /// the confirmation). Set by the till that records the sale, never by a request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_by: Option<String>,
}

impl Payment {
    /// Whether this is a cash payment (only cash gives change and is rounded).
    pub fn is_cash(&self) -> bool {
        self.method == "cash"
    }
}

/// The payment method of a sale on credit (kasbon, utang): the customer owes it.
pub const KASBON: &str = "kasbon";

/// What `payments` put on credit (their `kasbon` amounts): a sale's, or a void's copy.
pub fn kasbon_of(payments: &[Payment]) -> Rupiah {
    payments
        .iter()
        .filter(|p| p.method == KASBON)
        .map(|p| p.amount)
        .sum()
}

/// A customer (pelanggan): a name to sell on credit to, a phone to remind, a member
/// tier. Written into the ledger of the till that adds or edits it; the newest record of
/// a customer id wins on every replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    /// UUIDv7 chosen by the till that added the customer.
    pub id: String,
    /// Name as the shop knows them (`Bu Tini warung sebelah`).
    pub name: String,
    /// Phone (WhatsApp), for reminders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Member tier (`umum`, `member`, `grosir`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// An inactive customer takes no new kasbon (what they owe still counts).
    #[serde(default = "default_true")]
    pub active: bool,
    /// When this version was written (ms).
    pub at_ms: i64,
    /// The writing till's code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub till_code: Option<String>,
}

/// Money a customer paid against their kasbon, at any till.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DebtPayment {
    /// UUIDv7.
    pub id: String,
    /// Whose debt.
    pub customer_id: String,
    /// How much (positive).
    pub amount: Rupiah,
    /// How it was paid (`cash`, `qris`…), into this till's drawer when cash.
    pub method: String,
    /// The payment's reference on a non-cash payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// When (ms).
    pub at_ms: i64,
    /// The receiving till's code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub till_code: Option<String>,
    /// Who took it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cashier: Option<String>,
}

/// The method name a cashier's word stands for: `tunai` is `cash`, `kartu` and `edc`
/// are `card`, `qr` is `qris`, `tf` is `transfer`, `e_wallet` and `dompet` are
/// `ewallet`; anything else as written (lower case, `-` as `_`).
pub fn canonical_method(method: &str) -> String {
    let m = method.trim().to_lowercase().replace(['-', ' '], "_");
    match m.as_str() {
        "tunai" | "kontan" | "uang_tunai" => "cash".to_owned(),
        "kartu" | "edc" | "debit" | "kartu_debit" | "kredit" | "kartu_kredit" => "card".to_owned(),
        "qr" | "qris_statis" => "qris".to_owned(),
        "tf" | "transfer_bank" | "bank_transfer" => "transfer".to_owned(),
        "e_wallet" | "dompet" | "dompet_digital" => "ewallet".to_owned(),
        "utang" | "hutang" | "piutang" | "bon" | "credit" => KASBON.to_owned(),
        _ => m,
    }
}

/// Who sold: the store's identity at the time of the sale, so a reprint after a move,
/// a rename or an NPWP → NITKU change still shows what the original struk showed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seller {
    /// Shop name.
    pub name: String,
    /// Address lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// NPWP (16 digits) or NITKU (22 digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub npwp: Option<String>,
    /// Regional taxpayer number (NPWPD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub npwpd: Option<String>,
}

impl Seller {
    /// The label of the national tax id as printed: `NITKU` for 22 digits, else `NPWP`.
    pub fn tax_id_label(npwp: &str) -> &'static str {
        if npwp.chars().filter(char::is_ascii_digit).count() == 22 {
            "NITKU"
        } else {
            "NPWP"
        }
    }
}

/// The tax of one group of a sale's lines taxed under one rule (a receipt mixing exempt
/// beras, PPN sabun and PBJT gorengan has three).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleTax {
    /// The tax code of the group's lines (`standard`, `exempt`, `ppn`, `ppn_full`,
    /// `pbjt`).
    pub code: String,
    /// The rule the group was taxed under; `None` when it bears no tax.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<TaxRule>,
    /// Σ the group's line totals.
    pub base: Rupiah,
    /// Service charge on the group.
    #[serde(default)]
    pub service_charge: Rupiah,
    /// DPP of the group.
    pub dpp: Rupiah,
    /// DPP nilai lain of the group.
    pub dpp_other: Rupiah,
    /// Tax of the group.
    pub tax: Rupiah,
}

/// A completed sale. Never modified: voids and refunds are separate records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sale {
    /// UUIDv7 chosen by the till.
    pub id: String,
    /// The id the client sent for idempotent retries.
    #[serde(default)]
    pub client_id: Option<String>,
    /// `{till_code}-{yyMMdd}-{seq}`.
    pub receipt_no: String,
    /// The till's endpoint id.
    pub till: String,
    /// The till's short code.
    pub till_code: String,
    /// The cashier's name.
    #[serde(default)]
    pub cashier: Option<String>,
    /// The logged-in cashier's user id.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Who approved what the cashier may not do alone (a big discount, a price override).
    #[serde(default)]
    pub approved_by: Option<String>,
    /// When the sale was made (ms since the Unix epoch).
    pub created_at_ms: i64,
    /// The business day, `YYYY-MM-DD`.
    pub business_date: String,
    /// What was sold.
    pub lines: Vec<SaleLine>,
    /// Σ line totals.
    pub subtotal: Rupiah,
    /// Service charge.
    #[serde(default)]
    pub service_charge: Rupiah,
    /// Tax amount (inside `total` when the rule is inclusive).
    #[serde(default)]
    pub tax: Rupiah,
    /// DPP (taxable amount without tax), for PKP receipts.
    #[serde(default)]
    pub dpp: Rupiah,
    /// DPP nilai lain (base factor applied).
    #[serde(default)]
    pub dpp_other: Rupiah,
    /// The tax rule in force.
    #[serde(default)]
    pub tax_rule: TaxRule,
    /// The tax per group of lines when the lines were not all taxed under the store's
    /// rule (per-product tax codes); empty when they were. `tax`, `dpp` and `dpp_other`
    /// are the sums over the taxed groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taxes: Vec<SaleTax>,
    /// The seller identity when the sale was made (absent on sales from before it was
    /// recorded: those print the current profile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seller: Option<Seller>,
    /// The customer (pelanggan) the sale was made to; required for a kasbon payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// When the kasbon part falls due (`YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_date: Option<String>,
    /// The customer's name at the time of sale, for the struk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_name: Option<String>,
    /// Cash rounding (pembulatan) applied to the total.
    #[serde(default)]
    pub rounding: Rupiah,
    /// What the customer pays.
    pub total: Rupiah,
    /// Tendered payments.
    pub payments: Vec<Payment>,
    /// Change given back in cash.
    pub change: Rupiah,
}

impl Sale {
    /// What the customer owes on this sale (its payments by the `kasbon` method).
    pub fn kasbon(&self) -> Rupiah {
        kasbon_of(&self.payments)
    }

    /// Money taken by method: cash net of the change given back (what stays in the
    /// drawer), every other method as tendered.
    pub fn money_by_method(&self) -> std::collections::BTreeMap<String, Rupiah> {
        let mut by = std::collections::BTreeMap::new();
        for p in &self.payments {
            *by.entry(p.method.clone()).or_insert(0) += p.amount;
        }
        if self.change != 0 {
            *by.entry("cash".to_owned()).or_insert(0) -= self.change;
        }
        by
    }

    /// Line discounts, summed.
    pub fn discounts(&self) -> Rupiah {
        self.lines.iter().map(|l| l.discount).sum()
    }

    /// What the lines came to before discounts (Σ unit price × qty).
    pub fn gross(&self) -> Rupiah {
        self.lines.iter().map(|l| l.line_total + l.discount).sum()
    }
}

/// A void of a whole sale: its stock comes back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Void {
    /// UUIDv7.
    pub id: String,
    /// The voided sale.
    pub sale_id: String,
    /// Why.
    #[serde(default)]
    pub reason: String,
    /// Who.
    #[serde(default)]
    pub cashier: Option<String>,
    /// Who approved it (a supervisor or above), when the cashier needed approval.
    #[serde(default)]
    pub approved_by: Option<String>,
    /// When (ms).
    pub at_ms: i64,
    /// The sale's lines, copied so the stock effect is known without the sale's ledger.
    pub lines: Vec<StockLine>,
    /// The voiding till's code.
    #[serde(default)]
    pub till_code: Option<String>,
    /// The money given back, by method (cash net of change), copied from the sale so
    /// the drawer and the day's report know it without the sale's ledger.
    #[serde(default)]
    pub payments: Vec<Payment>,
    /// The sale's total, its tax and its rounding, reversed by the void.
    #[serde(default)]
    pub reversed: Option<Reversal>,
}

/// What a void or a refund takes back from the day's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reversal {
    /// Money returned to the customer.
    pub total: Rupiah,
    /// Tax inside that money.
    #[serde(default)]
    pub tax: Rupiah,
    /// Cash rounding reversed.
    #[serde(default)]
    pub rounding: Rupiah,
}

/// A refund of part of a sale: goods come back, money goes out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// UUIDv7.
    pub id: String,
    /// The refunded sale.
    pub sale_id: String,
    /// Returned goods.
    pub lines: Vec<RefundLine>,
    /// Money returned (after cash rounding).
    pub amount: Rupiah,
    /// Why.
    #[serde(default)]
    pub reason: String,
    /// When (ms).
    pub at_ms: i64,
    /// How the money went back (`cash`, or the sale's own method).
    #[serde(default = "cash")]
    pub method: String,
    /// Tax inside `amount`.
    #[serde(default)]
    pub tax: Rupiah,
    /// Cash rounding of this refund (`amount` minus the lines' values).
    #[serde(default)]
    pub rounding: Rupiah,
    /// The refunding till's code.
    #[serde(default)]
    pub till_code: Option<String>,
    /// Who refunded.
    #[serde(default)]
    pub cashier: Option<String>,
    /// Who approved it.
    #[serde(default)]
    pub approved_by: Option<String>,
}

fn cash() -> String {
    "cash".to_owned()
}

/// One returned line of a refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundLine {
    /// The sale line's index.
    #[serde(default)]
    pub line: u32,
    /// The SKU.
    pub sku: String,
    /// Quantity returned (positive).
    pub qty: Qty,
    /// Money for it, before the refund's cash rounding.
    #[serde(default)]
    pub amount: Rupiah,
    /// Tax inside `amount`.
    #[serde(default)]
    pub tax: Rupiah,
    /// The sale line's unit when not the stock unit (`qty` is in it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<LineUnit>,
}

impl RefundLine {
    /// What comes back to stock, in the stock unit.
    pub fn stock_qty(&self) -> Qty {
        LineUnit::in_stock_units(self.unit.as_ref(), self.qty)
    }
}

/// A quantity of one SKU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockLine {
    /// The SKU.
    pub sku: String,
    /// Quantity (positive).
    pub qty: Qty,
}

/// Why stock moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MovementKind {
    /// Goods received from a supplier.
    Receive,
    /// A manual correction (damage, loss, found).
    Adjust,
    /// A stocktake: `qty` is the delta against what the counting till knew.
    Opname,
    /// Goods moved to or from another store.
    Transfer,
    /// Goods sent back to their supplier (rusak, kedaluwarsa): `qty` is negative.
    SupplierReturn,
    /// Derived from a sale line (never stored as a movement record).
    Sale,
    /// Derived from a void (never stored as a movement record).
    Void,
    /// Derived from a refund (never stored as a movement record).
    Refund,
}

impl MovementKind {
    /// The name used in APIs and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            MovementKind::Receive => "receive",
            MovementKind::Adjust => "adjust",
            MovementKind::Opname => "opname",
            MovementKind::Transfer => "transfer",
            MovementKind::SupplierReturn => "supplier_return",
            MovementKind::Sale => "sale",
            MovementKind::Void => "void",
            MovementKind::Refund => "refund",
        }
    }
}

/// A stock movement record written by a till.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockMovement {
    /// UUIDv7.
    pub id: String,
    /// Why.
    pub kind: MovementKind,
    /// Which SKU.
    pub sku: String,
    /// Signed change to on-hand stock.
    pub qty: Qty,
    /// For an opname: the counted quantity.
    #[serde(default)]
    pub counted: Option<Qty>,
    /// For a transfer: the other store.
    #[serde(default)]
    pub other_store: Option<String>,
    /// Free text.
    #[serde(default)]
    pub note: Option<String>,
    /// When (ms).
    pub at_ms: i64,
    /// Who recorded it.
    #[serde(default)]
    pub user: Option<String>,
    /// Who approved it (adjustments and stocktakes by a cashier).
    #[serde(default)]
    pub approved_by: Option<String>,
    /// For a receipt: what one stock unit cost (harga beli), so margins use what was
    /// paid; for a return to the supplier: what it is credited at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Rupiah>,
    /// For a receipt or a return: the supplier (pemasok).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supplier: Option<String>,
    /// For a transfer between outlets: the sending movement's id (on the sending
    /// outlet, its own id; on the receiving one, the id on the sender's slip), which
    /// pairs the two halves at head office.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_id: Option<String>,
}

/// Opening a cash shift (buka kasir).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShiftOpen {
    /// UUIDv7.
    pub id: String,
    /// The cashier.
    pub cashier: String,
    /// Cash in the drawer at the start.
    pub opening_cash: Rupiah,
    /// When (ms).
    pub at_ms: i64,
    /// The till's code (one open shift per till).
    #[serde(default)]
    pub till_code: Option<String>,
    /// The cashier's user id, when logged in.
    #[serde(default)]
    pub user_id: Option<String>,
}

/// Closing a cash shift (tutup kasir) with the counted cash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShiftClose {
    /// UUIDv7.
    pub id: String,
    /// The shift closed.
    pub shift_id: String,
    /// Cash counted in the drawer.
    pub counted_cash: Rupiah,
    /// Cash the till expected (opening + cash sales − change − cash refunds).
    pub expected_cash: Rupiah,
    /// When (ms).
    pub at_ms: i64,
    /// Money taken during the shift by method (cash net of change, refunds and voids
    /// taken off; cash in/out not included).
    #[serde(default)]
    pub by_method: std::collections::BTreeMap<String, Rupiah>,
    /// Who closed it.
    #[serde(default)]
    pub cashier: Option<String>,
}

/// Cash put into or taken out of the drawer during a shift, not for a sale (change
/// float, paying a supplier, a deposit to the bank).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CashMove {
    /// UUIDv7.
    pub id: String,
    /// The open shift.
    pub shift_id: String,
    /// In or out.
    pub kind: CashMoveKind,
    /// How much (positive).
    pub amount: Rupiah,
    /// Why.
    #[serde(default)]
    pub note: String,
    /// Who.
    #[serde(default)]
    pub cashier: Option<String>,
    /// When (ms).
    pub at_ms: i64,
    /// The till's code.
    #[serde(default)]
    pub till_code: Option<String>,
}

/// The direction of a [`CashMove`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CashMoveKind {
    /// Into the drawer.
    In,
    /// Out of the drawer.
    Out,
}

/// Something a person did that is not itself a sale, void, refund, movement or shift
/// record: a login, a failed login, a reprint, a price or profile change, user changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// UUIDv7.
    pub id: String,
    /// `login`, `login_failed`, `logout`, `reprint`, `price_change`, `profile_change`,
    /// `user_add`, `user_disable`, `pin_change`...
    pub action: String,
    /// Who (a user's name), when known.
    #[serde(default)]
    pub user: Option<String>,
    /// Who approved it.
    #[serde(default)]
    pub approved_by: Option<String>,
    /// What it was about (a sale, a SKU, a user id).
    #[serde(default)]
    pub record_id: Option<String>,
    /// When (ms).
    pub at_ms: i64,
    /// The till's code.
    #[serde(default)]
    pub till_code: Option<String>,
    /// Why, in the person's words (opening the drawer without a sale).
    #[serde(default)]
    pub detail: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unit_line_takes_its_pieces_and_the_largest_reached_tier_prices_it() {
        let dus = LineUnit {
            name: "dus".into(),
            per: Qty(40_000),
        };
        assert_eq!(dus.stock_qty(Qty(2_000)), Qty(80_000));
        assert_eq!(dus.stock_qty(Qty(-1_000)), Qty(-40_000));
        let half_kg = LineUnit {
            name: "ons".into(),
            per: Qty(100),
        };
        assert_eq!(half_kg.stock_qty(Qty(1_005)), Qty(101), "rounded half away");
        let mut p: Product = serde_json::from_value(serde_json::json!({
            "id": "p", "sku": "IDM", "name": "Indomie", "price": 3500
        }))
        .expect("product");
        let at = |p: &Product, qty| tier_price(p.tiers.iter().map(|t| (t.min_qty, t.price)), qty);
        assert_eq!(at(&p, Qty(50_000)), None, "no tiers");
        p.tiers = vec![
            PriceTier {
                min_qty: Qty(20_000),
                price: 3_200,
            },
            PriceTier {
                min_qty: Qty(10_000),
                price: 3_300,
            },
        ];
        assert_eq!(at(&p, Qty(9_999)), None);
        assert_eq!(at(&p, Qty(10_000)), Some(3_300));
        assert_eq!(
            at(&p, Qty(25_000)),
            Some(3_200),
            "unsorted tiers still pick the largest"
        );
    }
}
