//! The structure-aware trust harness: a member of the store (or a stranger, or a revoked
//! device) writes valid Automerge changes — arbitrary records at arbitrary paths, typed
//! sales, roster entries, invites, products, deep nesting — under any author and any
//! signature, and sends them as well-formed frames of a real sync session (optionally
//! with flipped bytes) to a real till (`Node` on SQLite) and to the relay's replica of the
//! store (`StoreReplica`).
//!
//! Besides "never panics", each [`run`] checks what the rules promise: a document that
//! no entitled, correctly signed change was aimed at keeps its heads at the till and at
//! the relay, and every change in a till's ledger is by that till.
//!
//! Driven by the fuzz target `fuzz/fuzz_targets/sync_members.rs` (libFuzzer builds
//! [`Input`]s from bytes) and by `tests/tests/sync_fuzz_corpus.rs`, which replays the
//! kept corpus and crashers on every test run.
#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use automerge::transaction::Transactable;
use automerge::{ObjType, ReadDoc, ScalarValue};
use kasir_crdt::catalog::CatalogDoc;
use kasir_crdt::ledger::LedgerDoc;
use kasir_crdt::records::{Product, Sale};
use kasir_crdt::store::{Device, Invite, Role, StoreDoc};
use kasir_crdt::{BusinessDate, DeviceId, Doc, DocError, DocKind, StoreId};
use kasir_node::Node;
use kasir_node::api::{InitOptions, ProductInput, SaleItem, SaleRequest};
use kasir_relay::replica::StoreReplica;
use kasir_sync::trust::ChangeSig;
use kasir_sync::{DocRef, Identity, SyncReplica, exchange};
use kasir_testkit::hostile::Forger;

/// Who writes or signs.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// The till under test, an owner.
    Owner,
    Manager,
    /// Another till of the store.
    Till,
    Revoked,
    Stranger,
    Relay,
}

#[derive(Arbitrary, Debug)]
pub enum Target {
    Store,
    Catalog,
    Ledger { till: Who, days: i8 },
}

#[derive(Arbitrary, Debug)]
pub enum Signature {
    Right,
    By(Who),
    Garbage([u8; 32]),
    Missing,
}

#[derive(Arbitrary, Debug)]
pub enum Key {
    Known(u8),
    Named(String),
}

#[derive(Arbitrary, Debug)]
pub enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
    Null,
    Map,
    List,
}

#[derive(Arbitrary, Debug)]
pub enum Write {
    Put {
        path: Vec<Key>,
        value: Value,
    },
    Delete {
        path: Vec<Key>,
    },
    Nest {
        depth: u8,
    },
    Sale {
        seq: u8,
        total: i64,
        till: Who,
    },
    Role {
        who: Who,
        role: u8,
        revoked: bool,
        code: String,
    },
    Invite {
        role: u8,
        used_by: Option<Who>,
    },
    Product {
        sku: String,
        price: i64,
    },
}

#[derive(Arbitrary, Debug)]
pub struct Edit {
    pub author: Who,
    pub target: Target,
    pub signature: Signature,
    pub write: Write,
}

/// One fuzz case: the forged edits, where they are sent, and one optional byte flip.
#[derive(Arbitrary, Debug)]
pub struct Input {
    pub edits: Vec<Edit>,
    pub to_till: bool,
    pub to_relay: bool,
    pub tamper: Option<(u8, u16, u8)>,
}

const KNOWN: &[&str] = &[
    "store_id",
    "kind",
    "doc_id",
    "till",
    "date",
    "devices",
    "invites",
    "profile",
    "users",
    "sales",
    "voids",
    "refunds",
    "movements",
    "shifts_open",
    "shifts_close",
    "products",
    "ml_references",
    "ml_model",
    "role",
    "revoked",
    "till_code",
    "used_by",
    "price",
    "lines",
];

/// The store the runs start from, made once per process.
struct World {
    template: tempfile::TempDir,
    store: StoreId,
    owner: DeviceId,
    keys: BTreeMap<u8, Identity>,
    sale: Sale,
    product: Product,
}

fn who_index(w: Who) -> u8 {
    match w {
        Who::Owner => 0,
        Who::Manager => 1,
        Who::Till => 2,
        Who::Revoked => 3,
        Who::Stranger => 4,
        Who::Relay => 5,
    }
}

impl World {
    fn device(&self, w: Who) -> DeviceId {
        self.keys[&who_index(w)].device_id()
    }

    /// Signs as `w` (the owner's key is the till's own).
    fn identity(&self, w: Who) -> Identity {
        self.keys[&who_index(w)].clone()
    }
}

/// A scratch directory in memory when the machine has one (runs are thousands of SQLite
/// databases; fsync on a disk would be most of their time).
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().expect("tempdir")
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let template = scratch();
        let mut node = Node::init(
            template.path(),
            &InitOptions {
                store_name: "Fuzz".into(),
                till_code: "F1".into(),
                encrypt: None,
            },
        )
        .expect("init");
        node.add_product(&ProductInput {
            sku: "KOPI".into(),
            name: "Kopi".into(),
            price: 2_500,
            stock: Some(kasir_crdt::Qty::units(10)),
            ..ProductInput::default()
        })
        .expect("product");
        node.sell(&SaleRequest {
            items: vec![SaleItem {
                code: "KOPI".into(),
                qty: kasir_crdt::Qty::units(1),
                discount: 0,
                discount_percent: None,
                price: None,
                unit: None,
            }],
            ..SaleRequest::default()
        })
        .expect("sale");
        let mut keys = BTreeMap::new();
        for (i, w) in [
            Who::Manager,
            Who::Till,
            Who::Revoked,
            Who::Stranger,
            Who::Relay,
        ]
        .into_iter()
        .enumerate()
        {
            keys.insert(who_index(w), Identity::from_secret_bytes([i as u8 + 1; 32]));
        }
        keys.insert(who_index(Who::Owner), node.identity().clone());
        for (w, role) in [
            (Who::Manager, Role::Manager),
            (Who::Till, Role::Till),
            (Who::Revoked, Role::Till),
        ] {
            let secret = node.create_invite(role, None).expect("invite");
            node.admit(&secret, keys[&who_index(w)].device_id(), None, Vec::new())
                .expect("admit");
        }
        node.revoke(keys[&who_index(Who::Revoked)].device_id())
            .expect("revoke");
        node.link_relay(keys[&who_index(Who::Relay)].device_id(), Vec::new())
            .expect("relay");
        let store = node.store_id();
        let owner = node.device_id();
        // Templates of typed records, read back as any peer would.
        let mut forger = Forger::new(store, owner);
        exchange(&mut forger, owner, &mut node, owner, 1_000, |_, _| {});
        let mut sale = None;
        let mut product = None;
        for (_, doc) in forger.docs_mut() {
            match doc.kind() {
                DocKind::Ledger => {
                    let l = LedgerDoc::from_doc(doc.fork_for_check()).expect("ledger");
                    sale = sale.or_else(|| l.sales().into_iter().find_map(Result::ok));
                }
                DocKind::Catalog => {
                    let c = CatalogDoc::from_doc(doc.fork_for_check()).expect("catalog");
                    product = product.or_else(|| c.products().into_iter().find_map(Result::ok));
                }
                DocKind::Store => {}
            }
        }
        drop(node);
        World {
            template,
            store,
            owner,
            keys,
            sale: sale.expect("a sale"),
            product: product.expect("a product"),
        }
    })
}

fn key(k: &Key) -> String {
    match k {
        Key::Known(i) => KNOWN[*i as usize % KNOWN.len()].to_string(),
        Key::Named(s) => s.chars().take(24).collect(),
    }
}

/// Walks `path` from the root through maps, creating them; returns the last map and key.
fn walk(doc: &mut Doc, path: &[Key]) -> Result<Option<(automerge::ObjId, String)>, DocError> {
    let am = doc.automerge();
    let Some((last, parents)) = path.split_last() else {
        return Ok(None);
    };
    let mut obj = automerge::ROOT;
    for p in parents.iter().take(12) {
        let k = key(p);
        obj = match am.get(&obj, k.as_str()).map_err(DocError::from)? {
            Some((automerge::Value::Object(ObjType::Map), id)) => id,
            _ => am
                .put_object(&obj, k.as_str(), ObjType::Map)
                .map_err(DocError::from)?,
        };
    }
    Ok(Some((obj, key(last))))
}

fn role(r: u8) -> Role {
    match r % 4 {
        0 => Role::Owner,
        1 => Role::Manager,
        2 => Role::Till,
        _ => Role::Relay,
    }
}

fn apply(w: &World, write: &Write, doc: Doc) -> Result<Doc, DocError> {
    let now = kasir_sync::now_ms();
    match write {
        Write::Put { path, value } => {
            let mut doc = doc;
            if let Some((obj, k)) = walk(&mut doc, path)? {
                let am = doc.automerge();
                let k = k.as_str();
                match value {
                    Value::Str(s) => am.put(&obj, k, s.as_str()),
                    Value::Int(i) => am.put(&obj, k, *i),
                    Value::Bool(b) => am.put(&obj, k, *b),
                    Value::Null => am.put(&obj, k, ScalarValue::Null),
                    Value::Map => am.put_object(&obj, k, ObjType::Map).map(|_| ()),
                    Value::List => am.put_object(&obj, k, ObjType::List).map(|_| ()),
                }
                .map_err(DocError::from)?;
            }
            Ok(doc)
        }
        Write::Delete { path } => {
            let mut doc = doc;
            if let Some((obj, k)) = walk(&mut doc, path)? {
                doc.automerge()
                    .delete(&obj, k.as_str())
                    .map_err(DocError::from)?;
            }
            Ok(doc)
        }
        Write::Nest { depth } => {
            let mut doc = doc;
            let root = if doc.kind() == DocKind::Ledger {
                "sales"
            } else {
                "products"
            };
            let am = doc.automerge();
            let mut obj = match am.get(&automerge::ROOT, root).map_err(DocError::from)? {
                Some((automerge::Value::Object(ObjType::Map), id)) => id,
                _ => am
                    .put_object(&automerge::ROOT, root, ObjType::Map)
                    .map_err(DocError::from)?,
            };
            obj = am
                .put_object(&obj, "deep", ObjType::Map)
                .map_err(DocError::from)?;
            for _ in 0..(*depth as usize * 8) {
                obj = am
                    .put_object(&obj, "x", ObjType::Map)
                    .map_err(DocError::from)?;
            }
            Ok(doc)
        }
        Write::Sale { seq, total, till } => {
            let mut l = LedgerDoc::from_doc(doc)?;
            let mut sale = w.sale.clone();
            sale.id = format!("0190ffff-0000-7000-8000-{:012x}", *seq);
            sale.till = w.device(*till).to_string();
            sale.total = *total;
            l.record_sale(&sale)?;
            Ok(l.into_doc())
        }
        Write::Role {
            who,
            role: r,
            revoked,
            code,
        } => {
            let mut s = StoreDoc::from_doc(doc)?;
            s.put_device(
                w.device(*who),
                &Device {
                    till_code: code.chars().take(8).collect(),
                    role: role(*r),
                    revoked: *revoked,
                    addrs: Vec::new(),
                    joined_at_ms: now,
                    vouched: Default::default(),
                },
                now,
            )?;
            Ok(s.into_doc())
        }
        Write::Invite { role: r, used_by } => {
            let mut s = StoreDoc::from_doc(doc)?;
            s.put_invite(
                &format!("{:064x}", *r as u64 + 7),
                &Invite {
                    role: role(*r),
                    till_code: None,
                    created_by: w.owner.to_string(),
                    created_at_ms: now,
                    expires_at_ms: now + 60_000,
                    used_by: used_by.map(|u| w.device(u).to_string()),
                },
                now,
            )?;
            Ok(s.into_doc())
        }
        Write::Product { sku, price } => {
            let mut c = CatalogDoc::from_doc(doc)?;
            let mut p = w.product.clone();
            p.sku = sku.chars().take(16).collect();
            p.id = kasir_crdt::ids::product_id(w.store, &p.sku);
            p.price = *price;
            c.upsert_product(&p)?;
            Ok(c.into_doc())
        }
    }
}

/// Whether an edit could pass the rules: by a device entitled to write the document,
/// signed with its own key. (Generous: the rules refuse more, e.g. a till's store edit
/// other than its own address.) Everything else must leave the document alone.
fn may_pass(e: &Edit) -> bool {
    let signed_by_author = matches!(e.signature, Signature::Right)
        || matches!(e.signature, Signature::By(w) if w == e.author);
    let member = !matches!(e.author, Who::Revoked | Who::Stranger);
    signed_by_author
        && member
        && match &e.target {
            Target::Store | Target::Catalog => true,
            Target::Ledger { till, .. } => *till == e.author,
        }
}

fn heads<R: SyncReplica>(r: &mut R) -> BTreeMap<[u8; 32], [u8; 32]> {
    r.manifest()
        .expect("manifest")
        .into_iter()
        .map(|e| (e.doc.id.0, e.heads))
        .collect()
}

/// Runs one case; panics if a rule was broken (or anything panicked).
pub fn run(input: &Input) {
    let w = world();
    if input.edits.len() > 8 {
        return;
    }
    let dir = scratch();
    kasir_testkit::copy_dir(w.template.path(), dir.path());
    let mut till = Node::open(dir.path()).expect("open the till");
    let relay_id = w.device(Who::Relay);
    let mut relay = StoreReplica::new(
        w.store,
        uuid::Uuid::nil(),
        Some(w.owner),
        w.identity(Who::Relay),
    );
    exchange(&mut till, w.owner, &mut relay, relay_id, 1_000, |_, _| {});
    relay.take_pending();

    let hostile = w.device(Who::Till);
    let mut forger = Forger::new(w.store, hostile);
    exchange(&mut forger, hostile, &mut till, w.owner, 1_000, |_, _| {});

    let mut aimed: BTreeMap<[u8; 32], bool> = BTreeMap::new();
    for e in &input.edits {
        let r = match &e.target {
            Target::Store => DocRef::store(w.store),
            Target::Catalog => DocRef::catalog(w.store),
            Target::Ledger { till, days } => {
                let at = kasir_sync::now_ms() + i64::from(*days) * 86_400_000;
                DocRef::ledger(w.store, w.device(*till), BusinessDate::at(at, 7 * 60))
            }
        };
        let signer = match e.signature {
            Signature::Right => Some(w.identity(e.author)),
            Signature::By(s) => Some(w.identity(s)),
            Signature::Garbage(seed) => Some(Identity::from_secret_bytes(seed)),
            Signature::Missing => None,
        };
        let garbage = matches!(e.signature, Signature::Garbage(_));
        let forged = forger.forge_as(
            &r,
            w.device(e.author),
            |hash| {
                signer.as_ref().map(|s| {
                    let mut sig = ChangeSig::sign(s, hash);
                    if garbage {
                        sig.sig[0] ^= 1;
                    }
                    sig
                })
            },
            |doc| apply(w, &e.write, doc),
        );
        if matches!(forged, Ok(n) if n > 0) {
            *aimed.entry(r.id.0).or_default() |= may_pass(e);
        }
    }

    let mut tamper = |n: usize, buf: &mut bytes::BytesMut| {
        if let Some((frame, at, xor)) = input.tamper
            && n == usize::from(frame) % 16
            && !buf.is_empty()
        {
            let i = usize::from(at) % buf.len();
            buf[i] ^= xor;
        }
    };
    let till_before = heads(&mut till);
    let relay_before = heads(&mut relay);
    if input.to_till {
        exchange(&mut forger, hostile, &mut till, w.owner, 200, &mut tamper);
    }
    if input.to_relay {
        exchange(&mut forger, hostile, &mut relay, relay_id, 200, &mut tamper);
        relay.take_pending();
    }
    for (name, before, after) in [
        ("till", till_before, heads(&mut till)),
        ("relay", relay_before, heads(&mut relay)),
    ] {
        for (doc, passable) in &aimed {
            if !passable {
                assert_eq!(
                    before.get(doc),
                    after.get(doc),
                    "the {name} took a change to a document no entitled, well-signed change was aimed at"
                );
            }
        }
    }
    // Every change in a till's ledger is by that till, wherever it was read.
    let mut reader = Forger::new(w.store, w.owner);
    exchange(&mut reader, w.owner, &mut till, w.owner, 1_000, |_, _| {});
    for (r, doc) in reader.docs_mut() {
        if r.kind != DocKind::Ledger {
            continue;
        }
        let till_of = r.till.expect("ledger till");
        for change in doc.automerge().get_changes(&[]) {
            let author = kasir_crdt::author::actor_device(change.actor_id());
            // Genesis and lazily created maps are written by deterministic actors that
            // name no device; everything else must be the till's.
            assert!(
                author.is_none() || author == Some(till_of),
                "a change in {till_of}'s ledger by {author:?}"
            );
        }
    }
}
