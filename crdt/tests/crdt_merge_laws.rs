//! Merge laws of Kasir's documents, checked on random histories with `proptest`.
//!
//! A *world* is 2–5 tills. Every till holds its own replica of the store catalog (each
//! created independently with `CatalogDoc::create` from the deterministic genesis) and a
//! replica of every till's ledger for the day, but writes only its own ledger. Random
//! operations — sales of 1–3 lines over a small SKU set, voids (also two tills voiding the
//! same sale), refunds, receives, adjustments, opnames, and catalog upserts (the same SKU
//! edited concurrently on several tills) — are interleaved with random partial syncs
//! between random pairs: `Doc::merge`, the sync protocol with persistent `PeerState`s
//! (sometimes re-encoded, as after a reconnect), and raw bytes from `save_incremental` or
//! `save` delivered through `merge_bytes`, sometimes twice.
//!
//! An independent model follows the ledgers. A ledger has a single writer, so every
//! replica holds a *prefix* of its writer's records, plus changes parked by Automerge
//! until their predecessors arrive (an incremental save delivered out of order). After
//! every sync step each touched replica is compared with the model, and an opname checks
//! that the till's local stock view equals the model's sum over what that till has seen.
//!
//! Laws checked:
//! - convergence: after syncing every replica in a random order, every document has equal
//!   heads (`heads_hash`) and equal decoded content on every replica;
//! - no sale lost or duplicated: the sale ids over all ledgers, on every replica, are
//!   exactly the sales created, each once, and every ledger equals what its till wrote;
//! - stock is the sum of all movements: `stock::stock_levels` equals the model (sale lines
//!   out, receives/adjusts/opname deltas, a voided sale's lines back once however many
//!   tills voided it, refunds back), on every replica;
//! - the catalog keeps every product added on any replica, each with values some till
//!   wrote (and exactly the last write when only one till wrote that SKU);
//! - merging is idempotent (the same replica or the same bytes twice changes nothing) and
//!   order-independent (A⊔B⊔C = C⊔A⊔B = B⊔C⊔A in heads and content).
//!
//! Plain tests check that truncated, garbage or foreign bytes (another kind, another
//! till's ledger) are refused with an error, never a panic, and change nothing; and pin
//! down fixed scenarios: two tills voiding one sale, products added on several tills, and
//! `Doc::merge` passing on changes that still wait for their predecessors.
#![allow(missing_docs)]

use std::collections::{BTreeMap, BTreeSet};

use kasir_crdt::catalog::CatalogDoc;
use kasir_crdt::ids::{BusinessDate, DeviceId, DocId, DocKind, StoreId, product_id};
use kasir_crdt::ledger::{LedgerDoc, LedgerMeta};
use kasir_crdt::money::Qty;
use kasir_crdt::records::{
    MovementKind, Payment, Product, Refund, RefundLine, Sale, SaleLine, StockLine, StockMovement,
    Void,
};
use kasir_crdt::stock::{self, StockLevels};
use kasir_crdt::sync::PeerState;
use kasir_crdt::tax::TaxRule;
use kasir_crdt::{ActorId, Doc, DocError};
use proptest::prelude::*;

/// The SKUs sold in every world, with their base prices.
const SKUS: [(&str, i64); 4] = [
    ("KOPI", 5_000),
    ("TEH", 4_000),
    ("GULA", 16_500),
    ("CABE", 60_000),
];
/// The most tills a world has.
const MAX_TILLS: usize = 5;
/// The clock at the start of every history (ms).
const START_MS: i64 = 1_795_400_000_000;
/// Upper bound on sync protocol rounds between two replicas of one document.
const MAX_SYNC_ROUNDS: usize = 32;

fn store_id() -> StoreId {
    StoreId(uuid::Uuid::from_u128(0x4b41_5349_5200_0001))
}

fn business_date() -> BusinessDate {
    "2026-11-23".parse().expect("valid business date")
}

fn device(till: usize) -> DeviceId {
    DeviceId([u8::try_from(till).expect("small till index") + 1; 32])
}

fn ledger_meta(till: usize) -> LedgerMeta {
    LedgerMeta {
        store: store_id(),
        till: device(till),
        date: business_date(),
    }
}

// ---------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------

/// One step of a random history. Till, document and record choices are raw numbers,
/// reduced modulo what exists when the step runs, so every generated history is valid.
#[derive(Debug, Clone)]
enum Op {
    /// Till sells `(sku, quarter units)` lines.
    Sale {
        till: usize,
        lines: Vec<(usize, i64)>,
    },
    /// Till voids a sale it knows.
    Void { till: usize, pick: usize },
    /// `first` voids a sale it knows; `second` learns of it from `first`, then voids it too
    /// without syncing in between.
    DoubleVoid {
        first: usize,
        second: usize,
        pick: usize,
    },
    /// Till refunds `quarters`/4 of one line of a sale it knows.
    Refund {
        till: usize,
        pick: usize,
        line: usize,
        quarters: i64,
    },
    /// Till receives whole units from a supplier.
    Receive { till: usize, sku: usize, units: i64 },
    /// Till corrects stock by `quarter units` (signed, never zero).
    Adjust {
        till: usize,
        sku: usize,
        quarters: i64,
    },
    /// Till counts `counted` whole units and records the delta against what it knows.
    Opname {
        till: usize,
        sku: usize,
        counted: i64,
    },
    /// Till writes a product of the catalog.
    Upsert {
        till: usize,
        sku: usize,
        variant: usize,
        price_step: i64,
        active: bool,
    },
    /// `dst` merges `src`'s replica of a document (`Doc::merge`).
    Merge { dst: usize, src: usize, doc: usize },
    /// `a` and `b` run the sync protocol on a document until neither has anything to say.
    SyncProtocol {
        a: usize,
        b: usize,
        doc: usize,
        reconnect: bool,
    },
    /// `src`'s `save_incremental` bytes are applied at `dst` (twice if `twice`). With
    /// `own`, the document is `src`'s own ledger (a till pushing what it just wrote), so
    /// changes often arrive before their predecessors and wait for them.
    DeliverIncremental {
        src: usize,
        dst: usize,
        doc: usize,
        own: bool,
        twice: bool,
    },
    /// `src`'s `save` bytes are applied at `dst` (twice if `twice`).
    DeliverSnapshot {
        src: usize,
        dst: usize,
        doc: usize,
        twice: bool,
    },
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let till = || 0..MAX_TILLS;
    let pick = || 0usize..64;
    let doc = || 0..MAX_TILLS + 2;
    let sku = || 0..SKUS.len();
    prop_oneof![
        6 => (till(), prop::collection::vec((sku(), 1i64..=12), 1..=3))
            .prop_map(|(till, lines)| Op::Sale { till, lines }),
        2 => (till(), pick()).prop_map(|(till, pick)| Op::Void { till, pick }),
        2 => (till(), till(), pick())
            .prop_map(|(first, second, pick)| Op::DoubleVoid { first, second, pick }),
        2 => (till(), pick(), 0usize..3, 1i64..=4)
            .prop_map(|(till, pick, line, quarters)| Op::Refund { till, pick, line, quarters }),
        2 => (till(), sku(), 1i64..=24).prop_map(|(till, sku, units)| Op::Receive { till, sku, units }),
        1 => (till(), sku(), 1i64..=20, any::<bool>()).prop_map(|(till, sku, q, down)| Op::Adjust {
            till,
            sku,
            quarters: if down { -q } else { q },
        }),
        2 => (till(), sku(), 0i64..=30).prop_map(|(till, sku, counted)| Op::Opname { till, sku, counted }),
        4 => (till(), sku(), 0usize..3, 0i64..4, any::<bool>()).prop_map(
            |(till, sku, variant, price_step, active)| Op::Upsert { till, sku, variant, price_step, active }
        ),
        3 => (till(), till(), doc()).prop_map(|(dst, src, doc)| Op::Merge { dst, src, doc }),
        3 => (till(), till(), doc(), any::<bool>())
            .prop_map(|(a, b, doc, reconnect)| Op::SyncProtocol { a, b, doc, reconnect }),
        5 => (till(), till(), doc(), any::<bool>(), any::<bool>())
            .prop_map(|(src, dst, doc, own, twice)| Op::DeliverIncremental { src, dst, doc, own, twice }),
        2 => (till(), till(), doc(), any::<bool>())
            .prop_map(|(src, dst, doc, twice)| Op::DeliverSnapshot { src, dst, doc, twice }),
    ]
}

// ---------------------------------------------------------------------------------------
// Documents and their decoded content
// ---------------------------------------------------------------------------------------

/// Which document of a till.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    Catalog,
    /// The ledger written by till `k`.
    Ledger(usize),
}

fn all_slots(tills: usize) -> Vec<Slot> {
    std::iter::once(Slot::Catalog)
        .chain((0..tills).map(Slot::Ledger))
        .collect()
}

/// A raw document choice: the catalog, one ledger, or every document.
fn resolve_slots(raw: usize, tills: usize) -> Vec<Slot> {
    match raw % (tills + 2) {
        0 => vec![Slot::Catalog],
        k if k <= tills => vec![Slot::Ledger(k - 1)],
        _ => all_slots(tills),
    }
}

/// Everything a document says, decoded into plain records.
#[derive(Debug, Clone, PartialEq)]
enum Content {
    Catalog(Vec<Product>),
    Ledger {
        meta: LedgerMeta,
        sales: Vec<Sale>,
        voids: Vec<Void>,
        refunds: Vec<Refund>,
        movements: Vec<StockMovement>,
    },
}

fn decoded<T>(items: Vec<Result<T, DocError>>) -> Vec<T> {
    items
        .into_iter()
        .map(|item| item.expect("every record decodes"))
        .collect()
}

fn ledger_content(ledger: &LedgerDoc) -> Content {
    Content::Ledger {
        meta: ledger.meta().clone(),
        sales: decoded(ledger.sales()),
        voids: decoded(ledger.voids()),
        refunds: decoded(ledger.refunds()),
        movements: decoded(ledger.movements()),
    }
}

fn catalog_content(catalog: &CatalogDoc) -> Content {
    Content::Catalog(decoded(catalog.products()))
}

/// The ids of every record in a ledger, over all of its record maps.
fn ledger_record_ids(ledger: &LedgerDoc) -> BTreeSet<String> {
    let mut ids: BTreeSet<String> = ledger.sale_ids().into_iter().collect();
    ids.extend(decoded(ledger.voids()).into_iter().map(|v| v.id));
    ids.extend(decoded(ledger.refunds()).into_iter().map(|r| r.id));
    ids.extend(decoded(ledger.movements()).into_iter().map(|m| m.id));
    ids
}

/// A standalone copy of one document, typed.
enum AnyDoc {
    Catalog(CatalogDoc),
    Ledger(LedgerDoc),
}

impl AnyDoc {
    /// Loads saved bytes through `Doc::load` and the typed `from_doc`.
    fn load(slot: Slot, bytes: &[u8]) -> AnyDoc {
        match slot {
            Slot::Catalog => {
                let doc = Doc::load(
                    DocId::catalog(store_id()),
                    DocKind::Catalog,
                    [bytes],
                    ActorId::random(),
                )
                .expect("a saved catalog loads");
                AnyDoc::Catalog(CatalogDoc::from_doc(doc).expect("a catalog"))
            }
            Slot::Ledger(k) => {
                let meta = ledger_meta(k);
                let doc = Doc::load(
                    LedgerDoc::id_for(&meta),
                    DocKind::Ledger,
                    [bytes],
                    ActorId::random(),
                )
                .expect("a saved ledger loads");
                let ledger = LedgerDoc::from_doc(doc).expect("a ledger");
                assert_eq!(ledger.meta(), &meta, "loaded ledger meta");
                AnyDoc::Ledger(ledger)
            }
        }
    }

    fn doc(&mut self) -> &mut Doc {
        match self {
            AnyDoc::Catalog(c) => c.doc(),
            AnyDoc::Ledger(l) => l.doc(),
        }
    }

    fn content(&self) -> Content {
        match self {
            AnyDoc::Catalog(c) => catalog_content(c),
            AnyDoc::Ledger(l) => ledger_content(l),
        }
    }

    /// Heads hash and decoded content: what two equal replicas share.
    fn state(&mut self) -> ([u8; 32], Content) {
        (self.doc().heads_hash(), self.content())
    }
}

// ---------------------------------------------------------------------------------------
// Tills
// ---------------------------------------------------------------------------------------

/// One till: its catalog replica, its replicas of every till's ledger, its sync states.
struct Till {
    catalog: CatalogDoc,
    /// `ledgers[k]` is this till's replica of the ledger written by till `k`.
    ledgers: Vec<LedgerDoc>,
    /// Sync protocol state about `(peer, document)`.
    peers: BTreeMap<(usize, Slot), PeerState>,
}

impl Till {
    /// A till of a world of `tills`, creating every document itself from its genesis.
    fn new(tills: usize) -> Till {
        Till {
            catalog: CatalogDoc::create(store_id(), ActorId::random()).expect("catalog genesis"),
            ledgers: (0..tills)
                .map(|k| {
                    LedgerDoc::create(ledger_meta(k), ActorId::random()).expect("ledger genesis")
                })
                .collect(),
            peers: BTreeMap::new(),
        }
    }

    fn doc(&mut self, slot: Slot) -> &mut Doc {
        match slot {
            Slot::Catalog => self.catalog.doc(),
            Slot::Ledger(k) => self.ledgers[k].doc(),
        }
    }

    fn content(&self, slot: Slot) -> Content {
        match slot {
            Slot::Catalog => catalog_content(&self.catalog),
            Slot::Ledger(k) => ledger_content(&self.ledgers[k]),
        }
    }
}

/// Two distinct tills, both mutable.
fn two_tills(tills: &mut [Till], a: usize, b: usize) -> (&mut Till, &mut Till) {
    assert_ne!(a, b, "two distinct tills");
    if a < b {
        let (left, right) = tills.split_at_mut(b);
        (&mut left[a], &mut right[0])
    } else {
        let (left, right) = tills.split_at_mut(a);
        (&mut right[0], &mut left[b])
    }
}

/// Runs the sync protocol between two replicas until neither has a message; returns rounds.
fn run_sync_protocol(
    a: &mut Doc,
    a_about_b: &mut PeerState,
    b: &mut Doc,
    b_about_a: &mut PeerState,
) -> usize {
    for round in 0..MAX_SYNC_ROUNDS {
        let to_b = a.generate_sync_message(a_about_b);
        let to_a = b.generate_sync_message(b_about_a);
        if to_b.is_none() && to_a.is_none() {
            return round;
        }
        if let Some(message) = to_b {
            b.receive_sync_message(b_about_a, &message)
                .expect("a sync message from a replica applies");
        }
        if let Some(message) = to_a {
            a.receive_sync_message(a_about_b, &message)
                .expect("a sync message from a replica applies");
        }
    }
    panic!("sync protocol did not settle in {MAX_SYNC_ROUNDS} rounds");
}

// ---------------------------------------------------------------------------------------
// The independent model
// ---------------------------------------------------------------------------------------

/// A record a till wrote into its own ledger.
#[derive(Debug, Clone)]
enum Record {
    Sale(Box<Sale>),
    Void(Void),
    Refund(Refund),
    Movement(StockMovement),
}

impl Record {
    fn id(&self) -> &str {
        match self {
            Record::Sale(s) => &s.id,
            Record::Void(v) => &v.id,
            Record::Refund(r) => &r.id,
            Record::Movement(m) => &m.id,
        }
    }
}

/// What one replica holds of one ledger: the writer's records `0..applied`, plus records
/// that arrived without their predecessors and are parked until those arrive. Parked
/// records are invisible (not in heads, not in content) but travel with `save` and
/// `Doc::merge`; incremental saves and the sync protocol carry applied records only.
#[derive(Debug, Clone, Default)]
struct View {
    applied: usize,
    parked: BTreeSet<usize>,
    /// Records before this were already returned by this replica's last save.
    save_cursor: usize,
}

impl View {
    /// Records `indices` of the writer arrive at this replica.
    fn receive(&mut self, indices: impl IntoIterator<Item = usize>) {
        self.parked
            .extend(indices.into_iter().filter(|&i| i >= self.applied));
        while self.parked.remove(&self.applied) {
            self.applied += 1;
        }
    }

    /// Everything this replica holds, applied or parked: what a snapshot or a merge carries.
    fn held(&self) -> Vec<usize> {
        (0..self.applied)
            .chain(self.parked.iter().copied())
            .collect()
    }
}

/// Sums stock effects the way the domain defines them, from records alone: sale lines go
/// out, a voided sale's lines come back once, refunds come back, movements are signed.
fn model_stock<'a>(
    records: impl IntoIterator<Item = &'a Record>,
    sales_by_id: &BTreeMap<String, Sale>,
) -> StockLevels {
    let mut levels = StockLevels::new();
    let mut add = |sku: &str, milli: i64| levels.entry(sku.to_owned()).or_default().0 += milli;
    let mut voided = BTreeSet::new();
    for record in records {
        match record {
            Record::Sale(sale) => sale.lines.iter().for_each(|l| add(&l.sku, -l.qty.0)),
            Record::Void(void) => {
                if voided.insert(void.sale_id.clone()) {
                    let sale = &sales_by_id[&void.sale_id];
                    sale.lines.iter().for_each(|l| add(&l.sku, l.qty.0));
                }
            }
            Record::Refund(refund) => refund.lines.iter().for_each(|l| add(&l.sku, l.qty.0)),
            Record::Movement(m) => add(&m.sku, m.qty.0),
        }
    }
    levels
}

fn without_stamp(product: &Product) -> Product {
    Product {
        updated_at_ms: 0,
        ..product.clone()
    }
}

// ---------------------------------------------------------------------------------------
// The world
// ---------------------------------------------------------------------------------------

struct World {
    tills: Vec<Till>,
    /// `written[k]`: the records till `k` wrote, in order.
    written: Vec<Vec<Record>>,
    /// `views[r][k]`: what till `r` holds of till `k`'s ledger.
    views: Vec<Vec<View>>,
    /// Every product write, by SKU: `(till, product)`.
    product_writes: BTreeMap<String, Vec<(usize, Product)>>,
    clock_ms: i64,
    next_id: u128,
}

impl World {
    fn new(tills: usize) -> World {
        World {
            tills: (0..tills).map(|_| Till::new(tills)).collect(),
            written: vec![Vec::new(); tills],
            views: vec![vec![View::default(); tills]; tills],
            product_writes: BTreeMap::new(),
            clock_ms: START_MS,
            next_id: 0,
        }
    }

    fn size(&self) -> usize {
        self.tills.len()
    }

    fn tick(&mut self) -> i64 {
        self.clock_ms += 1_000;
        self.clock_ms
    }

    fn fresh_id(&mut self) -> String {
        self.next_id += 1;
        uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | self.next_id).to_string()
    }

    fn all_sales(&self) -> BTreeMap<String, Sale> {
        self.written
            .iter()
            .flatten()
            .filter_map(|r| match r {
                Record::Sale(s) => Some((s.id.clone(), (**s).clone())),
                _ => None,
            })
            .collect()
    }

    /// The records the model says till `r` has applied, over all ledgers.
    fn known_records(&self, r: usize) -> impl Iterator<Item = &Record> + '_ {
        self.written
            .iter()
            .enumerate()
            .flat_map(move |(k, records)| &records[..self.views[r][k].applied])
    }

    /// A sale till `t` knows, with the ledger it is in; read back from `t`'s replica.
    fn pick_known_sale(&self, t: usize, pick: usize) -> Option<(usize, Sale)> {
        let known: Vec<(usize, &Sale)> = (0..self.size())
            .flat_map(|k| {
                self.written[k][..self.views[t][k].applied]
                    .iter()
                    .filter_map(move |r| match r {
                        Record::Sale(s) => Some((k, &**s)),
                        _ => None,
                    })
            })
            .collect();
        if known.is_empty() {
            return None;
        }
        let (owner, sale) = known[pick % known.len()];
        let local = self.tills[t].ledgers[owner]
            .sale(&sale.id)
            .expect("sale decodes")
            .expect("a known sale is in the till's replica");
        assert_eq!(&local, sale, "till {t} reads the sale as written");
        Some((owner, sale.clone()))
    }

    /// Till `t` writes `record` into its own ledger.
    fn write(&mut self, t: usize, record: Record) {
        let ledger = &mut self.tills[t].ledgers[t];
        let added = match &record {
            Record::Sale(s) => ledger.record_sale(s),
            Record::Void(v) => ledger.record_void(v),
            Record::Refund(r) => ledger.record_refund(r),
            Record::Movement(m) => ledger.record_movement(m),
        }
        .expect("writing a record");
        assert!(added, "a fresh record id is added");
        // A till repeating a record (a retry) must be a no-op.
        let repeated = match &record {
            Record::Sale(s) => ledger.record_sale(s),
            Record::Void(v) => ledger.record_void(v),
            Record::Refund(r) => ledger.record_refund(r),
            Record::Movement(m) => ledger.record_movement(m),
        }
        .expect("repeating a record");
        assert!(!repeated, "a repeated record id is not added twice");
        self.written[t].push(record);
        let own = &mut self.views[t][t];
        assert!(
            own.parked.is_empty(),
            "a writer never waits for its own records"
        );
        own.applied += 1;
        assert_eq!(own.applied, self.written[t].len());
    }

    fn new_sale(&mut self, t: usize, lines: &[(usize, i64)]) -> Sale {
        let at_ms = self.tick();
        let id = self.fresh_id();
        let lines: Vec<SaleLine> = lines
            .iter()
            .map(|&(sku, quarters)| {
                let (sku, price) = SKUS[sku % SKUS.len()];
                let qty = Qty(quarters * 250);
                SaleLine {
                    product_id: product_id(store_id(), sku),
                    sku: sku.to_owned(),
                    name: sku.to_owned(),
                    qty,
                    unit_price: price,
                    discount: 0,
                    tax: 0,
                    line_total: qty.times_price(price),
                    tax_code: None,
                    unit: None,
                    promo: None,
                }
            })
            .collect();
        let total: i64 = lines.iter().map(|l| l.line_total).sum();
        Sale {
            receipt_no: format!(
                "T{t}-{}-{}",
                business_date().compact(),
                self.written[t].len() + 1
            ),
            id,
            client_id: None,
            till: device(t).to_string(),
            till_code: format!("T{t}"),
            cashier: Some("Sari".into()),
            user_id: None,
            approved_by: None,
            created_at_ms: at_ms,
            business_date: business_date().to_string(),
            lines,
            subtotal: total,
            service_charge: 0,
            tax: 0,
            dpp: total,
            dpp_other: total,
            tax_rule: TaxRule::none(),
            taxes: Vec::new(),
            seller: None,
            customer_id: None,
            due_date: None,
            customer_name: None,
            rounding: 0,
            total,
            payments: vec![Payment {
                method: "cash".into(),
                amount: total,
                reference: None,
                confirmed_by: None,
            }],
            change: 0,
        }
    }

    fn new_void(&mut self, sale: &Sale) -> Void {
        Void {
            id: self.fresh_id(),
            sale_id: sale.id.clone(),
            reason: "salah input".into(),
            cashier: None,
            approved_by: None,
            at_ms: self.tick(),
            lines: sale
                .lines
                .iter()
                .map(|l| StockLine {
                    sku: l.sku.clone(),
                    qty: l.qty,
                })
                .collect(),
            till_code: None,
            payments: Vec::new(),
            reversed: None,
        }
    }

    fn new_movement(
        &mut self,
        kind: MovementKind,
        sku: usize,
        qty: Qty,
        counted: Option<Qty>,
    ) -> StockMovement {
        StockMovement {
            id: self.fresh_id(),
            kind,
            sku: SKUS[sku % SKUS.len()].0.to_owned(),
            qty,
            counted,
            other_store: None,
            note: None,
            at_ms: self.tick(),
            user: None,
            approved_by: None,
            cost: None,
            supplier: None,
            transfer_id: None,
        }
    }

    /// Till `t`'s stock over its own replicas, checked against the model of what it knows.
    fn local_stock(&self, t: usize) -> StockLevels {
        let local = stock::stock_levels(&self.tills[t].ledgers);
        let expected = model_stock(self.known_records(t), &self.all_sales());
        assert_eq!(
            local, expected,
            "till {t}'s stock view equals the sum of what it has seen"
        );
        local
    }

    fn apply(&mut self, op: &Op) {
        let n = self.size();
        match *op {
            Op::Sale { till, ref lines } => {
                let t = till % n;
                let sale = self.new_sale(t, lines);
                self.write(t, Record::Sale(Box::new(sale)));
            }
            Op::Void { till, pick } => {
                let t = till % n;
                if let Some((_, sale)) = self.pick_known_sale(t, pick) {
                    let void = self.new_void(&sale);
                    self.write(t, Record::Void(void));
                }
            }
            Op::DoubleVoid {
                first,
                second,
                pick,
            } => {
                let (a, b) = (first % n, second % n);
                if let Some((owner, sale)) = self.pick_known_sale(a, pick) {
                    self.merge(b, a, Slot::Ledger(owner));
                    let first_void = self.new_void(&sale);
                    self.write(a, Record::Void(first_void));
                    let second_void = self.new_void(&sale);
                    self.write(b, Record::Void(second_void));
                }
            }
            Op::Refund {
                till,
                pick,
                line,
                quarters,
            } => {
                let t = till % n;
                if let Some((_, sale)) = self.pick_known_sale(t, pick) {
                    let idx = line % sale.lines.len();
                    let line = &sale.lines[idx];
                    let qty = Qty((line.qty.0 * quarters / 4).max(1));
                    let refund = Refund {
                        id: self.fresh_id(),
                        sale_id: sale.id.clone(),
                        lines: vec![RefundLine {
                            line: idx as u32,
                            sku: line.sku.clone(),
                            qty,
                            amount: qty.times_price(line.unit_price),
                            tax: 0,
                            unit: None,
                        }],
                        amount: qty.times_price(line.unit_price),
                        reason: "rusak".into(),
                        at_ms: self.tick(),
                        method: "cash".into(),
                        tax: 0,
                        rounding: 0,
                        till_code: None,
                        cashier: None,
                        approved_by: None,
                    };
                    self.write(t, Record::Refund(refund));
                }
            }
            Op::Receive { till, sku, units } => {
                let t = till % n;
                let m = self.new_movement(MovementKind::Receive, sku, Qty::units(units), None);
                self.write(t, Record::Movement(m));
            }
            Op::Adjust {
                till,
                sku,
                quarters,
            } => {
                let t = till % n;
                let m = self.new_movement(MovementKind::Adjust, sku, Qty(quarters * 250), None);
                self.write(t, Record::Movement(m));
            }
            Op::Opname { till, sku, counted } => {
                let t = till % n;
                let name = SKUS[sku % SKUS.len()].0;
                let known = self.local_stock(t).get(name).copied().unwrap_or_default();
                let counted = Qty::units(counted);
                let delta = stock::opname_delta(counted, known);
                let m = self.new_movement(MovementKind::Opname, sku, delta, Some(counted));
                self.write(t, Record::Movement(m));
                let after = self.local_stock(t).get(name).copied().unwrap_or_default();
                assert_eq!(
                    after, counted,
                    "after an opname the till's stock is what was counted"
                );
            }
            Op::Upsert {
                till,
                sku,
                variant,
                price_step,
                active,
            } => {
                let t = till % n;
                self.upsert(t, sku, variant, price_step, active);
            }
            Op::Merge { dst, src, doc } => {
                for slot in resolve_slots(doc, n) {
                    self.merge(dst % n, src % n, slot);
                }
            }
            Op::SyncProtocol {
                a,
                b,
                doc,
                reconnect,
            } => {
                for slot in resolve_slots(doc, n) {
                    self.sync_protocol(a % n, b % n, slot, reconnect);
                }
            }
            Op::DeliverIncremental {
                src,
                dst,
                doc,
                own,
                twice,
            } => {
                let slots = if own {
                    vec![Slot::Ledger(src % n)]
                } else {
                    resolve_slots(doc, n)
                };
                for slot in slots {
                    self.deliver_bytes(src % n, dst % n, slot, false, twice);
                }
            }
            Op::DeliverSnapshot {
                src,
                dst,
                doc,
                twice,
            } => {
                for slot in resolve_slots(doc, n) {
                    self.deliver_bytes(src % n, dst % n, slot, true, twice);
                }
            }
        }
    }

    fn upsert(&mut self, t: usize, sku: usize, variant: usize, price_step: i64, active: bool) {
        let (code, base_price) = SKUS[sku % SKUS.len()];
        let product = Product {
            id: product_id(store_id(), code),
            sku: code.to_owned(),
            name: format!("{code} varian {variant}"),
            barcodes: vec![format!("899{:010}", sku * 10 + variant)],
            price: base_price + price_step * 500,
            cost: (price_step % 2 == 0).then_some(base_price / 2),
            category: Some("Sembako".into()),
            unit: "pcs".into(),
            tax_code: None,
            min_stock: None,
            active,
            updated_at_ms: self.tick(),
            units: Vec::new(),
            tiers: Vec::new(),
            promos: Vec::new(),
        };
        let catalog = &mut self.tills[t].catalog;
        let changed = catalog.upsert_product(&product).expect("upsert");
        let read = catalog
            .product(&product.id)
            .expect("product decodes")
            .expect("an upserted product is there");
        assert_eq!(
            without_stamp(&read),
            without_stamp(&product),
            "a till reads its own write"
        );
        if changed {
            assert_eq!(read.updated_at_ms, product.updated_at_ms);
        }
        self.product_writes
            .entry(code.to_owned())
            .or_default()
            .push((t, product));
    }

    /// `dst` merges `src`'s replica with `Doc::merge` (a till "merging itself" re-applies
    /// its own snapshot instead, which must change nothing).
    fn merge(&mut self, dst: usize, src: usize, slot: Slot) {
        if dst == src {
            self.deliver_bytes(src, dst, slot, true, true);
            return;
        }
        let (d, s) = two_tills(&mut self.tills, dst, src);
        let before = d.doc(slot).heads();
        d.doc(slot)
            .merge(s.doc(slot))
            .expect("merging two replicas");
        check_footprint(d.doc(slot), &before, slot);
        if let Slot::Ledger(k) = slot {
            let held = self.views[src][k].held();
            self.views[dst][k].receive(held);
            self.check_view(dst, k);
        }
    }

    /// `a` and `b` sync one document with the protocol, keeping their peer states.
    fn sync_protocol(&mut self, a: usize, b: usize, slot: Slot, reconnect: bool) {
        if a == b {
            return;
        }
        let mut a_about_b = self.tills[a].peers.remove(&(b, slot)).unwrap_or_default();
        let mut b_about_a = self.tills[b].peers.remove(&(a, slot)).unwrap_or_default();
        if reconnect {
            a_about_b = PeerState::decode(&a_about_b.encode()).expect("peer state round-trips");
            b_about_a = PeerState::decode(&b_about_a.encode()).expect("peer state round-trips");
        }
        let (ta, tb) = two_tills(&mut self.tills, a, b);
        run_sync_protocol(ta.doc(slot), &mut a_about_b, tb.doc(slot), &mut b_about_a);
        assert_eq!(
            ta.doc(slot).heads_hash(),
            tb.doc(slot).heads_hash(),
            "a finished sync leaves equal heads ({slot:?})"
        );
        ta.peers.insert((b, slot), a_about_b);
        tb.peers.insert((a, slot), b_about_a);
        if let Slot::Ledger(k) = slot {
            // Both end with everything either could apply, including parked records
            // that became applicable when the other side's records arrived.
            loop {
                let (at_a, at_b) = (self.views[a][k].applied, self.views[b][k].applied);
                self.views[a][k].receive(0..at_b);
                self.views[b][k].receive(0..at_a);
                if (self.views[a][k].applied, self.views[b][k].applied) == (at_a, at_b) {
                    break;
                }
            }
            self.check_view(a, k);
            self.check_view(b, k);
        }
    }

    /// `src` saves (a snapshot or the changes since its last save) and `dst` merges the
    /// bytes with `merge_bytes`, twice if `twice`: the second delivery changes nothing.
    fn deliver_bytes(&mut self, src: usize, dst: usize, slot: Slot, snapshot: bool, twice: bool) {
        let doc = self.tills[src].doc(slot);
        let bytes = if snapshot {
            doc.save()
        } else {
            doc.save_incremental()
        };
        let sent = match slot {
            Slot::Ledger(k) => {
                let view = &mut self.views[src][k];
                let sent: Vec<usize> = if snapshot {
                    view.held()
                } else {
                    (view.save_cursor..view.applied).collect()
                };
                view.save_cursor = view.applied;
                Some((k, sent))
            }
            Slot::Catalog => None,
        };
        let target = self.tills[dst].doc(slot);
        let before = target.heads_hash();
        let before_heads = target.heads();
        target
            .merge_bytes(&bytes)
            .expect("bytes saved by a replica merge");
        check_footprint(target, &before_heads, slot);
        if src == dst {
            assert_eq!(
                target.heads_hash(),
                before,
                "merging a replica's own bytes changes nothing"
            );
        }
        if twice {
            let once = target.heads_hash();
            target
                .merge_bytes(&bytes)
                .expect("the same bytes merge again");
            assert_eq!(
                target.heads_hash(),
                once,
                "a duplicate delivery changes nothing"
            );
        }
        if let Some((k, sent)) = sent {
            self.views[dst][k].receive(sent);
            self.check_view(dst, k);
        }
    }

    /// Till `r`'s replica of ledger `k` holds exactly what the model says it has applied.
    fn check_view(&self, r: usize, k: usize) {
        let ledger = &self.tills[r].ledgers[k];
        let view = &self.views[r][k];
        let expected: BTreeSet<String> = self.written[k][..view.applied]
            .iter()
            .map(|rec| rec.id().to_owned())
            .collect();
        assert_eq!(
            ledger_record_ids(ledger),
            expected,
            "till {r}'s replica of till {k}'s ledger (parked: {:?})",
            view.parked
        );
    }

    /// A snapshot of till `r`'s replica (keeping the model's save cursor right).
    fn snapshot(&mut self, r: usize, slot: Slot) -> Vec<u8> {
        if let Slot::Ledger(k) = slot {
            let view = &mut self.views[r][k];
            view.save_cursor = view.applied;
        }
        self.tills[r].doc(slot).save()
    }

    /// A standalone copy of till `r`'s replica, checked to load as the same document.
    fn copy_of(&mut self, r: usize, slot: Slot) -> AnyDoc {
        let bytes = self.snapshot(r, slot);
        let mut copy = AnyDoc::load(slot, &bytes);
        assert_eq!(
            copy.state(),
            (
                self.tills[r].doc(slot).heads_hash(),
                self.tills[r].content(slot)
            ),
            "save then load gives the same document"
        );
        copy
    }

    /// Syncs every document along a random chain of tills and back, each link by a method
    /// picked from `methods` (0: `Doc::merge`, 1: sync protocol, 2: snapshot bytes).
    fn converge(&mut self, order: &[usize], methods: &[u8]) {
        let n = self.size();
        let order: Vec<usize> = order.iter().copied().filter(|&t| t < n).collect();
        assert_eq!(order.len(), n, "the order is a permutation of the tills");
        let links: Vec<(usize, usize)> = order
            .windows(2)
            .map(|w| (w[1], w[0]))
            .chain(order.windows(2).rev().map(|w| (w[0], w[1])))
            .collect();
        let mut step = 0;
        for (dst, src) in links {
            for slot in all_slots(n) {
                match methods[step % methods.len()] {
                    0 => self.merge(dst, src, slot),
                    1 => self.sync_protocol(dst, src, slot, false),
                    _ => self.deliver_bytes(src, dst, slot, true, false),
                }
                step += 1;
            }
        }
    }

    /// The laws that hold once every replica has every change.
    fn check_converged(&mut self) {
        let n = self.size();
        // Convergence: equal heads and equal content, document by document.
        for slot in all_slots(n) {
            let heads = self.tills[0].doc(slot).heads_hash();
            let content = self.tills[0].content(slot);
            for r in 1..n {
                assert_eq!(
                    self.tills[r].doc(slot).heads_hash(),
                    heads,
                    "heads of {slot:?} at till {r}"
                );
                assert_eq!(
                    self.tills[r].content(slot),
                    content,
                    "content of {slot:?} at till {r}"
                );
            }
        }
        // Every replica holds every record of every ledger, as its till wrote it.
        for r in 0..n {
            for k in 0..n {
                let view = &self.views[r][k];
                assert!(
                    view.applied == self.written[k].len() && view.parked.is_empty(),
                    "model: till {r} has all of ledger {k}"
                );
                self.check_view(r, k);
            }
        }
        for k in 0..n {
            let mut sales = Vec::new();
            let mut voids = Vec::new();
            let mut refunds = Vec::new();
            let mut movements = Vec::new();
            for record in &self.written[k] {
                match record {
                    Record::Sale(s) => sales.push((**s).clone()),
                    Record::Void(v) => voids.push(v.clone()),
                    Record::Refund(f) => refunds.push(f.clone()),
                    Record::Movement(m) => movements.push(m.clone()),
                }
            }
            sales.sort_by(|a, b| a.id.cmp(&b.id));
            voids.sort_by(|a, b| a.id.cmp(&b.id));
            refunds.sort_by(|a, b| a.id.cmp(&b.id));
            movements.sort_by(|a, b| a.id.cmp(&b.id));
            let expected = Content::Ledger {
                meta: ledger_meta(k),
                sales,
                voids,
                refunds,
                movements,
            };
            assert_eq!(
                self.tills[0].content(Slot::Ledger(k)),
                expected,
                "ledger {k} is what its till wrote"
            );
        }
        // No sale lost or duplicated: sale ids over all ledgers, with repeats, on every till.
        let mut created: Vec<String> = self.all_sales().into_keys().collect();
        created.sort();
        for (r, till) in self.tills.iter().enumerate() {
            let mut seen: Vec<String> = Vec::new();
            for (k, ledger) in till.ledgers.iter().enumerate() {
                let ids = ledger.sale_ids();
                assert_eq!(ledger.sale_count(), ids.len());
                for sale in decoded(ledger.sales()) {
                    assert_eq!(
                        sale.till,
                        device(k).to_string(),
                        "a sale sits in its own till's ledger"
                    );
                }
                seen.extend(ids);
            }
            seen.sort();
            assert_eq!(seen, created, "the sales at till {r}");
        }
        // Stock is the sum of all movements, everywhere, however the ledgers are folded.
        let expected = model_stock(self.written.iter().flatten(), &self.all_sales());
        for (r, till) in self.tills.iter().enumerate() {
            assert_eq!(
                stock::stock_levels(&till.ledgers),
                expected,
                "stock at till {r}"
            );
        }
        let ledgers = &self.tills[0].ledgers;
        assert_eq!(
            stock::stock_levels(ledgers.iter().rev()),
            expected,
            "ledger order"
        );
        assert_eq!(
            stock::stock_levels(ledgers.iter().chain(ledgers.iter())),
            expected,
            "a ledger counted twice counts once"
        );
        // Every product added anywhere survives, with values that some till wrote.
        let products = decoded(self.tills[0].catalog.products());
        let ids: BTreeSet<String> = products.iter().map(|p| p.id.clone()).collect();
        let expected_ids: BTreeSet<String> = self
            .product_writes
            .keys()
            .map(|sku| product_id(store_id(), sku))
            .collect();
        assert_eq!(
            ids, expected_ids,
            "every product written on any till survives"
        );
        for product in &products {
            let writes = &self.product_writes[&product.sku];
            assert_eq!(product.id, product_id(store_id(), &product.sku));
            let written = |f: &dyn Fn(&Product) -> bool| writes.iter().any(|(_, p)| f(p));
            assert!(
                written(&|p| p.name == product.name),
                "name of {}",
                product.sku
            );
            assert!(
                written(&|p| p.price == product.price),
                "price of {}",
                product.sku
            );
            assert!(
                written(&|p| p.cost == product.cost),
                "cost of {}",
                product.sku
            );
            assert!(
                written(&|p| p.barcodes == product.barcodes),
                "barcodes of {}",
                product.sku
            );
            assert!(
                written(&|p| p.active == product.active),
                "active of {}",
                product.sku
            );
            assert!(
                written(&|p| p.updated_at_ms == product.updated_at_ms),
                "stamp of {}",
                product.sku
            );
            let writers: BTreeSet<usize> = writes.iter().map(|(t, _)| *t).collect();
            if writers.len() == 1 {
                let (_, last) = writes.last().expect("at least one write");
                assert_eq!(
                    without_stamp(product),
                    without_stamp(last),
                    "single writer: last write wins"
                );
            }
        }
    }

    /// Idempotence and order independence of merging, on the replicas as they are now.
    fn check_merge_laws(&mut self, a: usize, b: usize, c: usize) {
        for slot in all_slots(self.size()) {
            // Idempotence: merging what is already merged changes nothing.
            let mut x = self.copy_of(a, slot);
            x.doc().merge(self.copy_of(b, slot).doc()).expect("merge");
            let merged = x.state();
            x.doc()
                .merge(self.copy_of(b, slot).doc())
                .expect("merge again");
            assert_eq!(x.state(), merged, "merging B twice ({slot:?})");
            x.doc()
                .merge(self.copy_of(a, slot).doc())
                .expect("merge A again");
            assert_eq!(x.state(), merged, "merging A into A⊔B ({slot:?})");
            let bytes_b = self.snapshot(b, slot);
            x.doc().merge_bytes(&bytes_b).expect("merge bytes");
            x.doc().merge_bytes(&bytes_b).expect("merge bytes again");
            assert_eq!(x.state(), merged, "merging B's bytes twice ({slot:?})");
            let own = x.doc().save();
            x.doc().merge_bytes(&own).expect("merge own bytes");
            assert_eq!(x.state(), merged, "merging A⊔B's own bytes ({slot:?})");

            // Order independence: A⊔B⊔C = C⊔A⊔B = B⊔C⊔A.
            let fold = |world: &mut World, first: usize, rest: [usize; 2]| {
                let mut acc = world.copy_of(first, slot);
                for r in rest {
                    acc.doc()
                        .merge(world.copy_of(r, slot).doc())
                        .expect("merge");
                }
                acc
            };
            let mut abc = fold(self, a, [b, c]);
            let mut cab = fold(self, c, [a, b]);
            let mut bca = fold(self, b, [c, a]);
            let abc_state = abc.state();
            assert_eq!(cab.state(), abc_state, "C⊔A⊔B = A⊔B⊔C ({slot:?})");
            assert_eq!(bca.state(), abc_state, "B⊔C⊔A = A⊔B⊔C ({slot:?})");
            // And the merge of ledgers is the union of what each replica held.
            if let (Slot::Ledger(k), AnyDoc::Ledger(ledger)) = (slot, &abc) {
                let mut union = View::default();
                for r in [a, b, c] {
                    union.receive(self.views[r][k].held());
                }
                let expected: BTreeSet<String> = self.written[k][..union.applied]
                    .iter()
                    .map(|r| r.id().to_owned())
                    .collect();
                assert_eq!(
                    ledger_record_ids(ledger),
                    expected,
                    "A⊔B⊔C of ledger {k} is the union"
                );
            }
        }
    }
}

/// The records a merge touched, read from its operations (`Doc::footprint`, what a
/// replica re-indexes after a merge), include every record a diff of the two states
/// shows changed; a ledger's records have one writer and never change, so there the two
/// are equal.
fn check_footprint(doc: &mut Doc, before: &[kasir_crdt::doc::ChangeHash], slot: Slot) {
    let by_ops = doc
        .footprint(before, false)
        .expect("the merged changes place")
        .records;
    let by_diff = doc.changed_records_by_diff(before);
    assert!(
        by_ops.is_superset(&by_diff),
        "a changed record is missing from the footprint ({slot:?}): {:?}",
        by_diff.difference(&by_ops).collect::<Vec<_>>()
    );
    if matches!(slot, Slot::Ledger(_)) {
        assert_eq!(by_ops, by_diff, "a ledger's footprint is its new records");
    }
}

fn run_history(tills: usize, ops: &[Op]) -> World {
    let mut world = World::new(tills);
    for op in ops {
        world.apply(op);
    }
    world
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random histories on 2–5 tills, synced in a random order, converge without losing a
    /// sale, a stock movement or a product.
    #[test]
    fn random_histories_converge_without_losing_sales_stock_or_products(
        tills in 2usize..=MAX_TILLS,
        ops in prop::collection::vec(op_strategy(), 1..60),
        order in Just((0..MAX_TILLS).collect::<Vec<usize>>()).prop_shuffle(),
        methods in prop::collection::vec(0u8..3, 1..8),
    ) {
        let mut world = run_history(tills, &ops);
        world.converge(&order, &methods);
        world.check_converged();
    }

    /// Merging diverged replicas is idempotent and order-independent.
    #[test]
    fn merging_is_idempotent_and_order_independent(
        tills in 2usize..=MAX_TILLS,
        ops in prop::collection::vec(op_strategy(), 1..60),
        operands in (0..MAX_TILLS, 0..MAX_TILLS, 0..MAX_TILLS),
    ) {
        let mut world = run_history(tills, &ops);
        let (a, b, c) = operands;
        world.check_merge_laws(a % tills, b % tills, c % tills);
    }
}

// ---------------------------------------------------------------------------------------
// Plain tests
// ---------------------------------------------------------------------------------------

/// A two-till world where till 0 sold, received and wrote a product.
fn small_world() -> World {
    run_history(
        2,
        &[
            Op::Sale {
                till: 0,
                lines: vec![(0, 4), (1, 2)],
            },
            Op::Receive {
                till: 0,
                sku: 2,
                units: 10,
            },
            Op::Upsert {
                till: 0,
                sku: 0,
                variant: 0,
                price_step: 1,
                active: true,
            },
            Op::Sale {
                till: 1,
                lines: vec![(3, 1)],
            },
        ],
    )
}

/// Deterministic pseudo-random bytes (xorshift), so a failure is reproducible.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

#[test]
fn truncated_or_garbage_bytes_are_errors_and_change_nothing() {
    let mut world = small_world();
    let ledger = &mut world.tills[0].ledgers[0];
    let id = ledger.doc_ref().id();
    let snapshot = ledger.doc().save();
    let heads = ledger.doc().heads_hash();
    let content = ledger_content(ledger);

    // A snapshot is one chunk: every proper prefix is corrupt.
    for len in 0..snapshot.len() {
        let cut = &snapshot[..len];
        assert!(
            Doc::load(id, DocKind::Ledger, [cut], ActorId::random()).is_err(),
            "loading the first {len} of {} bytes",
            snapshot.len()
        );
        if len > 0 {
            assert!(
                ledger.doc().merge_bytes(cut).is_err(),
                "merging the first {len} bytes"
            );
        }
    }
    // Incremental changes cut inside their last chunk.
    let mut fresh = LedgerDoc::create(ledger_meta(0), ActorId::random()).expect("genesis");
    let mut other = World::new(1);
    other.apply(&Op::Sale {
        till: 0,
        lines: vec![(0, 1)],
    });
    other.apply(&Op::Sale {
        till: 0,
        lines: vec![(1, 1)],
    });
    let changes = other.tills[0].ledgers[0].doc().save_incremental();
    for cut in [1, 2, 7, changes.len() / 2] {
        let bytes = &changes[..changes.len() - cut];
        assert!(
            fresh.doc().merge_bytes(bytes).is_err(),
            "changes cut by {cut} bytes"
        );
        assert!(
            Doc::load(id, DocKind::Ledger, [bytes], ActorId::random()).is_err(),
            "loading changes cut by {cut} bytes"
        );
    }
    assert_eq!(
        fresh.sale_count(),
        0,
        "nothing of a corrupt delivery is applied"
    );
    // Garbage, including garbage behind Automerge's magic bytes and a flipped byte.
    let mut flipped = snapshot.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x55;
    let mut magic = vec![0x85, 0x6f, 0x4a, 0x83];
    magic.extend(noise(200, 7));
    let garbage = [
        b"bukan dokumen automerge".to_vec(),
        vec![0; 64],
        vec![0xff; 3],
        noise(1_000, 42),
        magic,
        flipped,
    ];
    for (i, bytes) in garbage.iter().enumerate() {
        assert!(
            Doc::load(id, DocKind::Ledger, [bytes.as_slice()], ActorId::random()).is_err(),
            "loading garbage #{i}"
        );
        assert!(
            ledger.doc().merge_bytes(bytes).is_err(),
            "merging garbage #{i}"
        );
        assert!(
            Doc::load(
                id,
                DocKind::Ledger,
                [snapshot.as_slice(), bytes.as_slice()],
                ActorId::random()
            )
            .is_err(),
            "a good snapshot followed by garbage #{i}"
        );
    }
    assert_eq!(
        ledger.doc().heads_hash(),
        heads,
        "refused bytes leave the heads"
    );
    assert_eq!(
        ledger_content(ledger),
        content,
        "refused bytes leave the content"
    );
    // Sync messages and peer states from garbage are errors too.
    for bytes in &garbage {
        assert!(
            ledger
                .doc()
                .receive_sync_message(&mut PeerState::new(), bytes)
                .is_err()
        );
    }
    assert!(PeerState::decode(b"not a peer state").is_err());
    // Nothing broke: the replica still loads and merges.
    let loaded = Doc::load(
        id,
        DocKind::Ledger,
        [snapshot.as_slice()],
        ActorId::random(),
    )
    .expect("load");
    assert_eq!(
        ledger_content(&LedgerDoc::from_doc(loaded).expect("a ledger")),
        content
    );
    assert_eq!(
        ledger.doc().merge_bytes(&[]).expect("no bytes, no changes"),
        0
    );
}

#[test]
fn documents_of_another_kind_or_id_are_refused() {
    // Several stores, so both orders of the two genesis actors are exercised.
    for seed in 1..=8u128 {
        let store = StoreId(uuid::Uuid::from_u128(seed));
        let meta = |till: usize| LedgerMeta {
            store,
            till: device(till),
            date: business_date(),
        };
        let mut catalog = CatalogDoc::create(store, ActorId::random()).expect("catalog");
        let mut ledger = LedgerDoc::create(meta(0), ActorId::random()).expect("ledger");
        let mut other_ledger = LedgerDoc::create(meta(1), ActorId::random()).expect("ledger");
        let catalog_bytes = catalog.doc().save();
        let ledger_bytes = ledger.doc().save();
        let other_bytes = other_ledger.doc().save();
        let catalog_id = DocId::catalog(store);
        let ledger_id = LedgerDoc::id_for(&meta(0));

        // A catalog is not a ledger, whichever way it is offered.
        let as_catalog = Doc::load(
            catalog_id,
            DocKind::Catalog,
            [catalog_bytes.as_slice()],
            ActorId::random(),
        )
        .expect("a catalog loads as a catalog");
        assert!(
            LedgerDoc::from_doc(as_catalog).is_err(),
            "store {seed}: ledger from a catalog"
        );
        assert!(
            Doc::load(
                ledger_id,
                DocKind::Ledger,
                [catalog_bytes.as_slice()],
                ActorId::random()
            )
            .is_err()
        );
        assert!(
            Doc::load(
                catalog_id,
                DocKind::Catalog,
                [ledger_bytes.as_slice()],
                ActorId::random()
            )
            .is_err()
        );
        let as_ledger = Doc::load(
            ledger_id,
            DocKind::Ledger,
            [ledger_bytes.as_slice()],
            ActorId::random(),
        )
        .expect("a ledger loads as a ledger");
        assert!(
            CatalogDoc::from_doc(as_ledger).is_err(),
            "store {seed}: catalog from a ledger"
        );
        // Another till's ledger is not this ledger.
        assert!(
            Doc::load(
                ledger_id,
                DocKind::Ledger,
                [other_bytes.as_slice()],
                ActorId::random()
            )
            .is_err()
        );

        // Merging another document is refused and leaves this one as it was.
        let heads = ledger.doc().heads_hash();
        assert!(
            ledger.doc().merge(catalog.doc()).is_err(),
            "store {seed}: merge a catalog"
        );
        assert!(
            ledger.doc().merge(other_ledger.doc()).is_err(),
            "store {seed}: merge another ledger"
        );
        assert!(
            ledger.doc().merge_bytes(&catalog_bytes).is_err(),
            "store {seed}: catalog bytes"
        );
        assert!(
            ledger.doc().merge_bytes(&other_bytes).is_err(),
            "store {seed}: another ledger's bytes"
        );
        // Another ledger's history followed by a change whose predecessor is missing.
        let receive = |n: u128| StockMovement {
            id: uuid::Uuid::from_u128(n).to_string(),
            kind: MovementKind::Receive,
            sku: "KOPI".into(),
            qty: Qty::units(1),
            counted: None,
            other_store: None,
            note: None,
            at_ms: START_MS,
            user: None,
            approved_by: None,
            cost: None,
            supplier: None,
            transfer_id: None,
        };
        let mut third_ledger = LedgerDoc::create(meta(2), ActorId::random()).expect("ledger");
        let mut chunks = Vec::new();
        for n in 1..=3 {
            third_ledger.record_movement(&receive(n)).expect("receive");
            // The first of these starts with the third ledger's genesis.
            chunks.push(third_ledger.doc().save_incremental());
        }
        let out_of_order = [chunks[0].as_slice(), chunks[2].as_slice()].concat();
        assert!(
            ledger.doc().merge_bytes(&out_of_order).is_err(),
            "store {seed}: another ledger's history with a gap"
        );
        assert_eq!(
            ledger.doc().heads_hash(),
            heads,
            "store {seed}: refused merges change nothing"
        );
        assert!(
            ledger.movements().is_empty(),
            "store {seed}: nothing foreign was parked or applied"
        );
        assert_eq!(ledger.meta(), &meta(0));
        let reloaded = Doc::load(
            ledger_id,
            DocKind::Ledger,
            [ledger.doc().save().as_slice()],
            ActorId::random(),
        )
        .expect("still a ledger");
        assert!(LedgerDoc::from_doc(reloaded).is_ok());
    }
}

#[test]
fn two_tills_voiding_one_sale_return_its_stock_once() {
    let mut world = run_history(
        3,
        &[
            Op::Receive {
                till: 0,
                sku: 0,
                units: 10,
            },
            Op::Sale {
                till: 0,
                lines: vec![(0, 8), (1, 4)],
            },
            // Tills 1 and 2 both learn of the sale, then void it while partitioned.
            Op::Merge {
                dst: 1,
                src: 0,
                doc: 1,
            },
            Op::Merge {
                dst: 2,
                src: 0,
                doc: 1,
            },
            Op::Void { till: 1, pick: 0 },
            Op::Void { till: 2, pick: 0 },
        ],
    );
    world.converge(&[2, 0, 1, 3, 4], &[1, 0, 2]);
    world.check_converged();
    let levels = stock::stock_levels(&world.tills[0].ledgers);
    assert_eq!(
        levels.get("KOPI"),
        Some(&Qty::units(10)),
        "the voided sale's KOPI is back once"
    );
    assert_eq!(
        levels.get("TEH"),
        Some(&Qty::ZERO),
        "the voided sale's TEH is back once"
    );
    let voids: usize = world.tills[0].ledgers.iter().map(|l| l.voids().len()).sum();
    assert_eq!(voids, 2, "both voids are kept as records");
}

#[test]
fn products_added_on_different_tills_all_survive() {
    let mut world = run_history(
        3,
        &[
            Op::Upsert {
                till: 0,
                sku: 0,
                variant: 0,
                price_step: 0,
                active: true,
            },
            Op::Upsert {
                till: 1,
                sku: 1,
                variant: 1,
                price_step: 1,
                active: true,
            },
            Op::Upsert {
                till: 2,
                sku: 2,
                variant: 2,
                price_step: 2,
                active: false,
            },
            // The same SKU edited concurrently on two tills.
            Op::Upsert {
                till: 1,
                sku: 3,
                variant: 0,
                price_step: 0,
                active: true,
            },
            Op::Upsert {
                till: 2,
                sku: 3,
                variant: 1,
                price_step: 3,
                active: true,
            },
        ],
    );
    world.converge(&[1, 2, 0, 3, 4], &[1]);
    world.check_converged();
    assert_eq!(world.tills[0].catalog.product_ids().len(), SKUS.len());
}

#[test]
fn merge_passes_on_changes_still_waiting_for_their_predecessors() {
    let mut world = run_history(
        3,
        &[
            Op::Receive {
                till: 0,
                sku: 0,
                units: 1,
            },
            Op::DeliverIncremental {
                src: 0,
                dst: 1,
                doc: 0,
                own: true,
                twice: false,
            },
            Op::Receive {
                till: 0,
                sku: 0,
                units: 2,
            },
            // Till 2 gets the second receive without the first: it waits, invisible.
            Op::DeliverIncremental {
                src: 0,
                dst: 2,
                doc: 0,
                own: true,
                twice: false,
            },
        ],
    );
    assert_eq!(world.views[2][0].parked, BTreeSet::from([1]));
    assert!(world.tills[2].ledgers[0].movements().is_empty());
    // Either order of merging gives the same document...
    world.check_merge_laws(1, 1, 2);
    world.check_merge_laws(2, 1, 2);
    // ...and till 1 gets the waiting receive from till 2, whose first one it holds.
    world.merge(1, 2, Slot::Ledger(0));
    let levels = stock::stock_levels(&world.tills[1].ledgers);
    assert_eq!(levels.get("KOPI"), Some(&Qty::units(3)));
}
