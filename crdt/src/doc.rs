//! The Automerge document wrapper shared by every document kind.
//!
//! Three ideas live here:
//! - **Deterministic genesis.** Every document starts with the same first change on every
//!   replica (fixed actor, fixed time, same content), so the top-level maps are the *same*
//!   objects everywhere. Two tills that create "their" catalog independently therefore
//!   still merge into one catalog, instead of two conflicting root maps where one wins and
//!   the other's products vanish.
//! - **Records through serde.** Immutable records (sales, movements) are written as one
//!   nested Automerge map in one batch and read back by a serde deserializer that walks
//!   the document ([`crate::record_de`]), so the typed structs stay plain Rust.
//! - **Remote input never panics.** Loading and merging foreign bytes returns errors; a
//!   record that does not decode is reported, not unwrapped.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};

use automerge::PatchAction;
use automerge::hydrate;
use automerge::transaction::{CommitOptions, Transactable};
use automerge::{
    ActorId, AutoCommit, LoadOptions, ObjId, ObjType, OnPartialLoad, ROOT, ReadDoc, ScalarValue,
    VerificationMode,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ids::{DocId, DocKind};

/// The hash of one Automerge change (document heads are lists of these).
pub use automerge::ChangeHash;

/// Errors from reading or changing a document.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DocError {
    /// The bytes are not a valid Automerge document or change.
    #[error("corrupt document data: {0}")]
    Corrupt(String),
    /// The document is valid Automerge but not a Kasir document of the expected shape.
    #[error("document {doc} is not a {expected} document")]
    WrongShape {
        /// The document.
        doc: DocId,
        /// The kind that was expected.
        expected: &'static str,
    },
    /// A record could not be encoded or decoded.
    #[error("record {key:?}: {reason}")]
    BadRecord {
        /// The record's key in its map.
        key: String,
        /// Why it failed.
        reason: String,
    },
    /// An Automerge operation failed.
    #[error("automerge: {0}")]
    Automerge(#[from] automerge::AutomergeError),
}

/// Deepest nesting of maps and lists a Kasir document holds: records are a few levels
/// deep. Anything deeper is refused before it is read, so a hostile record can never
/// overflow the stack of the recursive readers (`hydrate`).
pub const MAX_DEPTH: usize = 16;

/// A change as the trust rules see it: what a merge would add, before it is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingChange {
    /// Its hash (what a signature signs).
    pub hash: ChangeHash,
    /// The actor that wrote it (see [`crate::author`]).
    pub actor: ActorId,
    /// Its sequence number for that actor.
    pub seq: u64,
    /// The changes it builds on.
    pub deps: Vec<ChangeHash>,
    /// When the author's clock says it was made (seconds since the epoch).
    pub time_s: i64,
}

/// One Automerge document with its Kasir identity.
#[derive(Debug)]
pub struct Doc {
    id: DocId,
    kind: DocKind,
    am: AutoCommit,
    /// Heads of everything already handed out by `save`/`save_incremental` (or loaded).
    /// Automerge's own cursor starts empty after a load, which would re-save the whole
    /// history with the first incremental save.
    saved_heads: Vec<ChangeHash>,
    /// The last whole [`Doc::footprint`], with the heads it was taken between, until it
    /// is asked for again: a merge asks twice (the trust check's depth, then the
    /// records to index), and listing a day's changes again costs as much as the first
    /// time.
    footprint_memo: Option<FootprintMemo>,
    /// The whole-document chunk a bulk merge loaded ([`Doc::bulk_successor`]), with its
    /// heads, until the next [`Doc::save_incremental`] hands it on instead of encoding
    /// the same changes again.
    bulk_chunk: Option<(Vec<ChangeHash>, Vec<u8>)>,
}

/// A [`Footprint`] of the changes from `before` to `heads`.
#[derive(Debug, Clone)]
struct FootprintMemo {
    before: Vec<ChangeHash>,
    heads: Vec<ChangeHash>,
    footprint: Footprint,
}

/// A scalar written into the genesis change.
#[derive(Debug, Clone)]
pub(crate) enum GenesisValue {
    Str(String),
    Map,
}

impl Doc {
    /// A new document at its deterministic genesis, then switched to `actor` for writes.
    pub(crate) fn genesis(
        id: DocId,
        kind: DocKind,
        fields: &[(&str, GenesisValue)],
        actor: ActorId,
    ) -> Result<Doc, DocError> {
        let genesis_actor = ActorId::from(&blake3::hash(&id.0).as_bytes()[..16]);
        let mut am = AutoCommit::new().with_actor(genesis_actor);
        am.put(ROOT, "kind", kind.as_str())?;
        am.put(ROOT, "doc_id", id.to_string())?;
        for (key, value) in fields {
            match value {
                GenesisValue::Str(s) => am.put(ROOT, *key, s.as_str())?,
                GenesisValue::Map => {
                    am.put_object(ROOT, *key, ObjType::Map)?;
                }
            }
        }
        am.commit_with(CommitOptions::default().with_time(0));
        am.set_actor(actor);
        Ok(Doc {
            id,
            kind,
            am,
            saved_heads: Vec::new(),
            footprint_memo: None,
            bulk_chunk: None,
        })
    }

    /// Loads a document from saved chunks (snapshots and incremental changes, any order).
    pub fn load<'a>(
        id: DocId,
        kind: DocKind,
        chunks: impl IntoIterator<Item = &'a [u8]>,
        actor: ActorId,
    ) -> Result<Doc, DocError> {
        // One strict load over all chunks (a snapshot, then changes): every byte must
        // parse, and the result must be this document. Loading chunk by chunk through
        // `load_incremental` would silently keep a truncated prefix, and cost a pass more.
        let mut all = Vec::new();
        for chunk in chunks {
            all.extend_from_slice(chunk);
        }
        let mut am = load_strict(&all)?.with_actor(actor);
        let saved_heads = am.get_heads();
        let doc = Doc {
            id,
            kind,
            am,
            saved_heads,
            footprint_memo: None,
            bulk_chunk: None,
        };
        doc.check_shape()?;
        Ok(doc)
    }

    /// Checks foreign bytes *before* anything of them is applied. Automerge's
    /// `load_incremental` applies the chunks that parse and silently drops the rest, so
    /// corrupt bytes would "merge" without error; and a history of another document
    /// would merge in as a second genesis, conflicting on the root keys.
    fn check_incoming(&self, bytes: &[u8]) -> Result<(), DocError> {
        if bytes.is_empty() {
            return Ok(());
        }
        let mut incoming = load_strict(bytes)?;
        if incoming.get_heads().is_empty() {
            // Nothing applies on its own: changes waiting for history this replica may hold.
            return Ok(());
        }
        // What applies on its own starts from a genesis, which must be this document's.
        Doc {
            id: self.id,
            kind: self.kind,
            am: incoming,
            saved_heads: Vec::new(),
            footprint_memo: None,
            bulk_chunk: None,
        }
        .check_shape()
    }

    /// Checks that the document still is what its id says: its kind and id at the root
    /// (a merge must never change them).
    pub fn check_identity(&self) -> Result<(), DocError> {
        self.check_shape()
    }

    /// Takes over `other`'s state (a checked copy of this document).
    pub(crate) fn replace_with(&mut self, other: Doc) {
        self.am = other.am;
        self.saved_heads = other.saved_heads;
        self.footprint_memo = other.footprint_memo;
        self.bulk_chunk = other.bulk_chunk;
    }

    fn check_shape(&self) -> Result<(), DocError> {
        let ok = self.root_str("kind").as_deref() == Some(self.kind.as_str())
            && self.root_str("doc_id") == Some(self.id.to_string());
        if ok {
            Ok(())
        } else {
            Err(DocError::WrongShape {
                doc: self.id,
                expected: self.kind.as_str(),
            })
        }
    }

    /// The document id.
    pub fn id(&self) -> DocId {
        self.id
    }

    /// Whether changes are held back here for predecessors not received yet.
    pub fn has_waiting_changes(&mut self) -> bool {
        !self.am.get_missing_deps(&[]).is_empty()
    }

    /// A copy to try changes on before they are kept (see
    /// [`Doc::receive_sync_message_checked`]).
    pub fn fork_for_check(&self) -> Doc {
        self.with_history(self.am.clone())
    }

    /// This document holding the history `am` (a copy, or a successor of it): same
    /// identity and save position, nothing memoised.
    fn with_history(&self, am: AutoCommit) -> Doc {
        Doc {
            id: self.id,
            kind: self.kind,
            am,
            saved_heads: self.saved_heads.clone(),
            footprint_memo: None,
            bulk_chunk: None,
        }
    }

    /// The document `chunk` holds, when it is one whole saved document (Automerge sends
    /// its saved document when more than a third of its history is new to the peer)
    /// that holds every change of this one: the columnar load of such a chunk replaces
    /// rebuilding each of its changes and applying them one by one, the cost of a new
    /// till's catch-up. `None` sends the caller down the general path: other chunk
    /// types, a chunk that does not load whole, one that lacks some of this replica's
    /// changes, or a replica holding changes back for a missing predecessor (a load
    /// would drop them).
    pub(crate) fn bulk_successor(&mut self, chunk: &[u8]) -> Option<Doc> {
        const DOCUMENT_CHUNK: u8 = 0;
        let is_document =
            chunk.len() > 8 && chunk[..4] == [0x85, 0x6f, 0x4a, 0x83] && chunk[8] == DOCUMENT_CHUNK;
        if !is_document || self.has_waiting_changes() {
            return None;
        }
        let am = load_checked(chunk, OnPartialLoad::Error)
            .ok()?
            .ok()?
            .with_actor(self.am.get_actor().clone());
        let mut successor = self.with_history(am);
        let heads = self.heads();
        if !heads.iter().all(|h| successor.has_change(h)) {
            return None;
        }
        successor.bulk_chunk = Some((successor.heads(), chunk.to_vec()));
        Some(successor)
    }

    /// A copy of the applied history alone, for stepping through a merge one change at
    /// a time ([`Doc::apply_change_of`]).
    ///
    /// [`Doc::fork_for_check`] keeps the changes Automerge holds back for a missing
    /// predecessor, and applying that predecessor to such a copy applies them too, in
    /// the same step: a check going change by change would see two changes as one (an
    /// invite created already used). Without held-back changes this is a cheap clone;
    /// with some, the copy is rebuilt from the applied changes.
    pub fn fork_applied(&mut self) -> Result<Doc, DocError> {
        let am = if self.am.get_missing_deps(&[]).is_empty() {
            self.am.clone()
        } else {
            let heads = self.am.get_heads();
            let actor = self.am.get_actor().clone();
            let source = &mut self.am;
            let mut am = guarded(|| source.fork_at(&heads))?;
            am.set_actor(actor);
            am
        };
        Ok(self.with_history(am))
    }

    /// The changes not covered by `heads`, in causal order.
    pub fn changes_after(&mut self, heads: &[ChangeHash]) -> Vec<IncomingChange> {
        self.am
            .get_changes_meta(heads)
            .into_iter()
            .map(|m| IncomingChange {
                hash: m.hash,
                actor: m.actor.into_owned(),
                seq: m.seq,
                deps: m.deps,
                time_s: m.timestamp,
            })
            .collect()
    }

    /// What `device` wrote into this document: per actor of the device (hex), the
    /// highest sequence number held — the history a revoker vouches for
    /// ([`crate::store::Device::vouched`]). Merged over documents with
    /// [`merge_history`].
    pub fn device_history(&mut self, device: crate::ids::DeviceId) -> BTreeMap<String, u64> {
        let mut last = BTreeMap::new();
        for change in self.am.get_changes_meta(&[]) {
            if crate::author::actor_device(&change.actor) == Some(device) {
                let seq = last.entry(change.actor.to_hex_string()).or_insert(0);
                *seq = change.seq.max(*seq);
            }
        }
        last
    }

    /// The changes the next [`Doc::save_incremental`] will write: after a local write,
    /// the changes this replica made (to sign).
    pub fn unsaved_changes(&mut self) -> Vec<IncomingChange> {
        let saved = self.saved_heads.clone();
        self.changes_after(&saved)
    }

    /// Copies one change of `other` into this document (the trust rules replay a merge
    /// change by change).
    pub fn apply_change_of(&mut self, other: &mut Doc, hash: &ChangeHash) -> Result<(), DocError> {
        let change = other
            .am
            .get_change_by_hash(hash)
            .ok_or_else(|| DocError::Corrupt(format!("change {hash} is not in the document")))?;
        guarded(|| self.am.apply_changes([change]))
    }

    /// How deep the deepest value written by the changes after `before` sits (0 when
    /// nothing changed), given up past [`MAX_DEPTH`] (see [`Doc::footprint`]).
    pub fn changed_depth(&mut self, before: &[ChangeHash]) -> Result<usize, DocError> {
        Ok(self.footprint(before, true)?.deepest)
    }

    /// Where the changes after `before` wrote, from their operations: linear in the
    /// operations, whatever the nesting (a diff would build every patch's full path and
    /// value, quadratic in the depth and the bulk of a large merge's cost).
    ///
    /// An object the changes create sits one below where its creating operation put
    /// it; only the objects they write into that existed before are placed by walking
    /// the document's parents (once each). With `stop_past_depth` the walk ends as soon
    /// as a value lies deeper than [`MAX_DEPTH`].
    pub fn footprint(
        &mut self,
        before: &[ChangeHash],
        stop_past_depth: bool,
    ) -> Result<Footprint, DocError> {
        let heads = self.am.get_heads();
        if let Some(memo) = self.footprint_memo.take()
            && memo.before == before
            && memo.heads == heads
        {
            // Asked once more (the second of a merge's two uses): handed over, not kept.
            return Ok(memo.footprint);
        }
        let footprint = self.walk_footprint(before, stop_past_depth)?;
        if !stop_past_depth || footprint.deepest <= MAX_DEPTH {
            // Walked to the end: the whole footprint, worth keeping.
            self.footprint_memo = Some(FootprintMemo {
                before: before.to_vec(),
                heads,
                footprint: footprint.clone(),
            });
        }
        Ok(footprint)
    }

    fn walk_footprint(
        &mut self,
        before: &[ChangeHash],
        stop_past_depth: bool,
    ) -> Result<Footprint, DocError> {
        use automerge::legacy::{Key, ObjectId, OpId, OpType};
        let am = &mut self.am;
        let changes = catch_unwind(AssertUnwindSafe(|| am.get_changes(before)))
            .map_err(|_| DocError::Corrupt("automerge could not list the changes".into()))?;
        let mut places: HashMap<ObjectId, Place> = HashMap::new();
        let mut out = Footprint::default();
        for change in changes {
            let change = change.decode();
            let start = change.start_op.get();
            for (index, op) in change.operations.iter().enumerate() {
                let place = match (&op.obj, places.get(&op.obj)) {
                    (ObjectId::Root, _) => Place::default(),
                    (_, Some(p)) => p.clone(),
                    (obj, None) => {
                        let p = self.place_of(&obj.to_string())?;
                        places.insert(obj.clone(), p.clone());
                        p
                    }
                };
                out.deepest = out.deepest.max(place.depth + 1);
                if stop_past_depth && out.deepest > MAX_DEPTH {
                    return Ok(out);
                }
                let key = match &op.key {
                    Key::Map(k) => Some(k.to_string()),
                    Key::Seq(_) => None,
                };
                if let Some(record) = place.below(key.as_deref()).record() {
                    out.records.insert(record);
                }
                if matches!(op.action, OpType::Make(_)) {
                    let made = OpId(start.saturating_add(index as u64), change.actor_id.clone());
                    places.insert(ObjectId::Id(made), place.below(key.as_deref()));
                }
            }
        }
        Ok(out)
    }

    /// Where an object that exists in the document sits (the root: depth 0), its path
    /// walked up to past [`MAX_DEPTH`].
    fn place_of(&self, obj: &str) -> Result<Place, DocError> {
        if obj == "_root" {
            return Ok(Place::default());
        }
        let am = &self.am;
        let path = catch_unwind(AssertUnwindSafe(
            || -> Result<Vec<automerge::Prop>, automerge::AutomergeError> {
                let id = am.import_obj(obj)?;
                Ok(am
                    .parents(&id)?
                    .take(MAX_DEPTH + 1)
                    .map(|p| p.prop)
                    .collect())
            },
        ))
        .map_err(|_| DocError::Corrupt(format!("object {obj} has no place in the document")))?
        .map_err(|e| DocError::Corrupt(e.to_string()))?;
        let key = |prop: Option<&automerge::Prop>| match prop {
            Some(automerge::Prop::Map(k)) => Some(k.to_string()),
            _ => None,
        };
        // Parents come nearest first; the last is the root's key.
        let whole = path.len() <= MAX_DEPTH;
        Ok(Place {
            depth: path.len(),
            root: key(path.last()).filter(|_| whole),
            record: key(path.iter().rev().nth(1)).filter(|_| whole),
        })
    }

    /// The top-level keys that the changes after `before` wrote at or under.
    pub fn changed_roots(&mut self, before: &[ChangeHash]) -> Result<BTreeSet<String>, DocError> {
        let after = self.am.get_heads();
        let mut out = BTreeSet::new();
        if before == after.as_slice() {
            return Ok(out);
        }
        let am = &mut self.am;
        let patches = catch_unwind(AssertUnwindSafe(|| am.diff(before, &after)))
            .map_err(|_| DocError::Corrupt("automerge could not diff the document".into()))?;
        for patch in patches {
            let key = match (patch.path.first(), &patch.action) {
                (Some((_, automerge::Prop::Map(k))), _) => Some(k.to_string()),
                (None, PatchAction::PutMap { key, .. } | PatchAction::DeleteMap { key }) => {
                    Some(key.to_string())
                }
                (
                    None,
                    PatchAction::Conflict {
                        prop: automerge::Prop::Map(k),
                    },
                ) => Some(k.to_string()),
                _ => None,
            };
            out.extend(key);
        }
        Ok(out)
    }

    /// The whole document as JSON (the trust rules compare store documents with it).
    /// Refuses a document nested deeper than [`MAX_DEPTH`] before reading it.
    pub fn to_json(&self) -> Result<serde_json::Value, DocError> {
        check_depth(&self.am, &ROOT, "document")?;
        Ok(hydrate_to_json(&guarded(|| self.am.hydrate(&ROOT, None))?))
    }

    /// The hash of the deterministic change that creates the lazily added top-level map
    /// `key` (see [`Doc::lazy_root_map`]): every replica makes the same one, so it needs
    /// no author.
    pub fn lazy_map_change_hash(&mut self, key: &'static str) -> Option<ChangeHash> {
        self.lazy_map_change(key).ok().map(|c| c.hash())
    }

    /// The document kind.
    pub fn kind(&self) -> DocKind {
        self.kind
    }

    /// The underlying Automerge document, for the sync protocol.
    pub fn automerge(&mut self) -> &mut AutoCommit {
        &mut self.am
    }

    /// Read-only access to the underlying Automerge document.
    pub fn automerge_ref(&self) -> &AutoCommit {
        &self.am
    }

    /// Whether the document holds (has merged) the change `hash`; a change Automerge
    /// holds back until its predecessors arrive does not count.
    pub fn has_change(&mut self, hash: &ChangeHash) -> bool {
        // The metadata, not the change rebuilt from the op set: asked of every incoming
        // message's heads.
        self.am.get_change_meta_by_hash(hash).is_some()
    }

    /// The current heads.
    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.am.get_heads()
    }

    /// A hash over the sorted heads: equal iff two replicas hold the same changes.
    pub fn heads_hash(&mut self) -> [u8; 32] {
        heads_hash_of(&self.am.get_heads())
    }

    /// The `(top-level map, record key)` pairs that changes after `before` touched, e.g.
    /// `("sales", sale_id)`. Used to update read tables after a merge without rescanning
    /// the document; read from the changes' operations ([`Doc::footprint`]), or from a
    /// diff of the two states should those not place.
    pub fn changed_records(&mut self, before: &[ChangeHash]) -> BTreeSet<(String, String)> {
        match self.footprint(before, false) {
            Ok(f) => f.records,
            Err(_) => self.changed_records_by_diff(before),
        }
    }

    /// [`Doc::changed_records`] from a diff of the document between `before` and now.
    pub fn changed_records_by_diff(&mut self, before: &[ChangeHash]) -> BTreeSet<(String, String)> {
        let after = self.am.get_heads();
        let mut out = BTreeSet::new();
        if before == after.as_slice() {
            return out;
        }
        let key_of = |prop: &automerge::Prop| match prop {
            automerge::Prop::Map(k) => Some(k.to_string()),
            automerge::Prop::Seq(_) => None,
        };
        for patch in self.am.diff(before, &after) {
            let (root, record) = match patch.path.as_slice() {
                [] => continue, // the root itself: genesis fields
                [(_, root)] => {
                    let record = match &patch.action {
                        PatchAction::PutMap { key, .. } | PatchAction::DeleteMap { key } => {
                            Some(key.to_string())
                        }
                        PatchAction::Conflict { prop } => key_of(prop),
                        _ => None,
                    };
                    (key_of(root), record)
                }
                [(_, root), (_, record), ..] => (key_of(root), key_of(record)),
            };
            if let (Some(root), Some(record)) = (root, record) {
                out.insert((root, record));
            }
        }
        out
    }

    /// The changes since the last `save_incremental` or `save` (after a bulk merge, the
    /// whole document it loaded).
    pub fn save_incremental(&mut self) -> Vec<u8> {
        if let Some((heads, chunk)) = self.bulk_chunk.take()
            && heads == self.am.get_heads()
        {
            // Everything up to these heads, what was saved before included: loading it
            // after the earlier chunks merges what they share.
            self.saved_heads = heads;
            return chunk;
        }
        let bytes = self.am.save_after(&self.saved_heads);
        if !bytes.is_empty() {
            self.saved_heads = self.am.get_heads();
        }
        bytes
    }

    /// The whole document, compacted.
    pub fn save(&mut self) -> Vec<u8> {
        self.bulk_chunk = None;
        let bytes = self.am.save();
        self.saved_heads = self.am.get_heads();
        bytes
    }

    /// Merges foreign bytes (a saved document or changes). Never panics on bad input;
    /// corrupt bytes or another document's history are refused and change nothing.
    pub fn merge_bytes(&mut self, bytes: &[u8]) -> Result<usize, DocError> {
        self.check_incoming(bytes)?;
        let n = guarded(|| self.am.load_incremental(bytes))?;
        self.check_shape()?;
        Ok(n)
    }

    /// Merges another replica of the same document.
    pub fn merge(&mut self, other: &mut Doc) -> Result<(), DocError> {
        if other.id != self.id {
            return Err(DocError::WrongShape {
                doc: other.id,
                expected: self.kind.as_str(),
            });
        }
        guarded(|| self.am.merge(&mut other.am))?;
        // Automerge's `merge` skips the changes `other` holds but cannot apply yet (their
        // predecessors have not reached it; `save` keeps them). Skipping them would make
        // merging order-dependent (C⊔A applies them once A brings the predecessors,
        // A⊔C never sees them), so pass them on as a save would, from a fork so that
        // `other`'s `save_incremental` position is untouched. Rare: only after changes
        // arrived out of order.
        if !other.am.get_missing_deps(&[]).is_empty() {
            let bytes = other.am.fork().save();
            guarded(|| self.am.load_incremental(&bytes))?;
        }
        Ok(())
    }

    /// Commits pending operations at `time_ms`.
    pub(crate) fn commit(&mut self, time_ms: i64) {
        self.am
            .commit_with(CommitOptions::default().with_time(time_ms / 1000));
    }

    /// Discards uncommitted operations.
    pub(crate) fn rollback(&mut self) {
        self.am.rollback();
    }

    pub(crate) fn root_str(&self, key: &str) -> Option<String> {
        match self.am.get(ROOT, key) {
            Ok(Some((automerge::Value::Scalar(s), _))) => match s.as_ref() {
                ScalarValue::Str(s) => Some(s.to_string()),
                _ => None,
            },
            _ => None,
        }
    }

    /// The object id of a top-level map created at genesis.
    pub(crate) fn root_map(&self, key: &'static str) -> Result<ObjId, DocError> {
        match self.am.get(ROOT, key)? {
            Some((automerge::Value::Object(ObjType::Map), id)) => Ok(id),
            _ => Err(DocError::WrongShape {
                doc: self.id,
                expected: self.kind.as_str(),
            }),
        }
    }

    /// The object id of a top-level map added *after* genesis, creating it if this replica
    /// does not have it yet.
    ///
    /// The map is created by a deterministic change: the actor is derived from the
    /// document id and `key`, the only dependency is the genesis change, the time is 0.
    /// Every replica that creates it therefore produces the byte-identical change (same
    /// hash), so concurrent creations on two tills merge into one map instead of two
    /// conflicting ones. Documents created before the map existed keep working: they get
    /// the map the first time something is written to it.
    pub(crate) fn lazy_root_map(&mut self, key: &'static str) -> Result<ObjId, DocError> {
        if let Ok(obj) = self.root_map(key) {
            return Ok(obj);
        }
        let change = self.lazy_map_change(key)?;
        guarded(|| self.am.apply_changes([change]))?;
        self.root_map(key)
    }

    /// The deterministic change creating the top-level map `key`: the actor is derived
    /// from the document id and `key`, the only dependency is the genesis change, the
    /// time is 0.
    fn lazy_map_change(&mut self, key: &'static str) -> Result<automerge::Change, DocError> {
        let genesis_actor = ActorId::from(&blake3::hash(&self.id.0).as_bytes()[..16]);
        let Some(genesis) = self
            .am
            .get_changes(&[])
            .into_iter()
            .find(|c| c.deps().is_empty() && c.seq() == 1 && *c.actor_id() == genesis_actor)
        else {
            return Err(DocError::WrongShape {
                doc: self.id,
                expected: self.kind.as_str(),
            });
        };
        let mut hasher = blake3::Hasher::new();
        hasher.update(&self.id.0);
        hasher.update(b"/lazy-root-map/");
        hasher.update(key.as_bytes());
        let actor = ActorId::from(&hasher.finalize().as_bytes()[..16]);
        let mut fresh = AutoCommit::new().with_actor(actor);
        guarded(|| fresh.apply_changes([genesis]))?;
        fresh.put_object(ROOT, key, ObjType::Map)?;
        fresh.commit_with(CommitOptions::default().with_time(0));
        fresh
            .get_last_local_change()
            .ok_or_else(|| DocError::Corrupt("lazy map change was not produced".into()))
    }

    /// The object id of a top-level map added after genesis to a *single-writer*
    /// document (a ledger), created in the pending change when missing. Only the one
    /// writer ever creates it, so no two replicas can create it twice; the creation
    /// travels, signed, with the first record written into it.
    pub(crate) fn own_root_map(&mut self, key: &'static str) -> Result<ObjId, DocError> {
        if let Some(obj) = self.existing_root_map(key) {
            return Ok(obj);
        }
        Ok(self.am.put_object(ROOT, key, ObjType::Map)?)
    }

    /// The object id of a lazily added top-level map, if this replica has it.
    pub(crate) fn existing_root_map(&self, key: &str) -> Option<ObjId> {
        match self.am.get(ROOT, key) {
            Ok(Some((automerge::Value::Object(ObjType::Map), id))) => Some(id),
            _ => None,
        }
    }

    /// Writes an immutable record under `key` in `map` (one batch of operations).
    pub(crate) fn put_record<T: Serialize>(
        &mut self,
        map: &ObjId,
        key: &str,
        record: &T,
    ) -> Result<(), DocError> {
        let json = serde_json::to_value(record).map_err(|e| DocError::BadRecord {
            key: key.to_owned(),
            reason: e.to_string(),
        })?;
        let value = json_to_hydrate(&json);
        if value.is_scalar() {
            return Err(DocError::BadRecord {
                key: key.to_owned(),
                reason: "a record must be an object".into(),
            });
        }
        self.am.batch_create_object(map, key, &value, false)?;
        Ok(())
    }

    /// Whether `map` has `key`.
    pub(crate) fn has_key(&self, map: &ObjId, key: &str) -> bool {
        matches!(self.am.get(map, key), Ok(Some(_)))
    }

    /// Reads the record under `key` in `map`.
    pub(crate) fn get_record<T: DeserializeOwned>(
        &self,
        map: &ObjId,
        key: &str,
    ) -> Result<Option<T>, DocError> {
        let Some((value, id)) = self.am.get(map, key)? else {
            return Ok(None);
        };
        decode_record(&self.am, key, value, id).map(Some)
    }

    /// All records of `map` in key order; undecodable records are returned as errors.
    pub(crate) fn records<'a, T: DeserializeOwned + 'a>(
        &'a self,
        map: &ObjId,
    ) -> impl Iterator<Item = Result<T, DocError>> + 'a {
        self.am.map_range(map.clone(), ..).map(move |item| {
            let id = item.id();
            decode_record(&self.am, &item.key, item.value.into(), id)
        })
    }

    /// The keys of `map`.
    pub(crate) fn keys(&self, map: &ObjId) -> impl Iterator<Item = String> + '_ {
        self.am.keys(map.clone())
    }

    /// Number of entries in `map`.
    pub(crate) fn len(&self, map: &ObjId) -> usize {
        self.am.length(map.clone())
    }

    /// Sets scalar fields of the map under `key` in `parent` (creating it), LWW per field.
    /// Only fields whose value differs are written, so unchanged fields keep their clock.
    pub(crate) fn put_fields(
        &mut self,
        parent: &ObjId,
        key: &str,
        fields: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<bool, DocError> {
        let obj = match self.am.get(parent, key)? {
            Some((automerge::Value::Object(ObjType::Map), id)) => id,
            _ => self.am.put_object(parent, key, ObjType::Map)?,
        };
        let mut changed = false;
        for (field, value) in fields {
            let new = json_to_scalar(value);
            let current = match self.am.get(&obj, field.as_str())? {
                Some((automerge::Value::Scalar(s), _)) => Some(s.into_owned()),
                _ => None,
            };
            if current.as_ref() != Some(&new) {
                self.am.put(&obj, field.as_str(), new)?;
                changed = true;
            }
        }
        Ok(changed)
    }
}

/// Loads bytes that must parse completely. Changes whose predecessors the bytes do not
/// carry are allowed (they wait, "parked", for history a replica may already hold);
/// anything that does not parse is `Corrupt`.
/// Automerge's load of untrusted bytes with every hash verified; a panic is caught.
fn load_checked(
    bytes: &[u8],
    on_partial: OnPartialLoad,
) -> std::thread::Result<Result<AutoCommit, automerge::AutomergeError>> {
    let options = LoadOptions::new()
        .on_partial_load(on_partial)
        .verification_mode(VerificationMode::Check);
    catch_unwind(AssertUnwindSafe(|| {
        AutoCommit::load_with_options(bytes, options)
    }))
}

fn load_strict(bytes: &[u8]) -> Result<AutoCommit, DocError> {
    let load = |on_partial| load_checked(bytes, on_partial);
    let corrupt = |e: &dyn std::fmt::Display| DocError::Corrupt(e.to_string());
    match load(OnPartialLoad::Error) {
        Ok(Ok(am)) => Ok(am),
        // Well-formed, but some changes build on history the bytes do not carry.
        Ok(Err(automerge::AutomergeError::MissingDeps)) => match load(OnPartialLoad::Ignore) {
            Ok(Ok(am)) => Ok(am),
            Ok(Err(e)) => Err(corrupt(&e)),
            Err(_) => Err(corrupt(&"automerge rejected the data")),
        },
        Ok(Err(e)) => Err(corrupt(&e)),
        Err(_) => Err(corrupt(&"automerge rejected the data")),
    }
}

fn decode_record<T: DeserializeOwned>(
    am: &AutoCommit,
    key: &str,
    value: automerge::Value<'_>,
    id: ObjId,
) -> Result<T, DocError> {
    crate::record_de::from_doc(am, value, id).map_err(|e| DocError::BadRecord {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

/// Refuses an object nested deeper than [`MAX_DEPTH`], walking it without recursion (so
/// the walk itself cannot overflow the stack whatever a peer wrote).
fn check_depth(am: &AutoCommit, obj: &ObjId, key: &str) -> Result<(), DocError> {
    let mut stack: Vec<(ObjId, usize)> = vec![(obj.clone(), 1)];
    while let Some((id, depth)) = stack.pop() {
        if depth > MAX_DEPTH {
            return Err(DocError::BadRecord {
                key: key.to_owned(),
                reason: format!("nested deeper than {MAX_DEPTH} levels"),
            });
        }
        for (value, child) in am.values(&id) {
            if let automerge::Value::Object(_) = value {
                stack.push((child, depth + 1));
            }
        }
    }
    Ok(())
}

/// Where a merge's changes wrote ([`Doc::footprint`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Footprint {
    /// How deep the deepest written value sits (a root key: 1).
    pub deepest: usize,
    /// The `(top-level map, record key)` pairs written at or under.
    pub records: BTreeSet<(String, String)>,
}

/// An object's place: how many objects lie above it, and the first two map keys of its
/// path from the root (the top-level map and the record), when it has them.
#[derive(Debug, Clone, Default)]
struct Place {
    depth: usize,
    root: Option<String>,
    record: Option<String>,
}

impl Place {
    /// The place of the value at `key` of this object (`None`: a list position).
    fn below(&self, key: Option<&str>) -> Place {
        let key = key.map(str::to_string);
        let (root, record) = match self.depth {
            0 => (key, None),
            1 => (self.root.clone(), key),
            _ => (self.root.clone(), self.record.clone()),
        };
        Place {
            depth: self.depth + 1,
            root,
            record,
        }
    }

    /// The `(top-level map, record key)` this place lies at or under.
    fn record(self) -> Option<(String, String)> {
        self.root.zip(self.record)
    }
}

fn guarded<T>(f: impl FnOnce() -> Result<T, automerge::AutomergeError>) -> Result<T, DocError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(DocError::Corrupt(e.to_string())),
        Err(_) => Err(DocError::Corrupt("automerge rejected the data".into())),
    }
}

fn json_to_scalar(value: &serde_json::Value) -> ScalarValue {
    match value {
        serde_json::Value::Null => ScalarValue::Null,
        serde_json::Value::Bool(b) => ScalarValue::Boolean(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => ScalarValue::Int(i),
            None => ScalarValue::F64(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => ScalarValue::Str(s.as_str().into()),
        // Nested values in an LWW field are stored as JSON text.
        other => ScalarValue::Str(other.to_string().into()),
    }
}

pub(crate) fn json_to_hydrate(value: &serde_json::Value) -> hydrate::Value {
    match value {
        serde_json::Value::Array(items) => {
            hydrate::Value::from(items.iter().map(json_to_hydrate).collect::<Vec<_>>())
        }
        serde_json::Value::Object(map) => {
            let m: HashMap<String, hydrate::Value> = map
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), json_to_hydrate(v)))
                .collect();
            hydrate::Value::Map(hydrate::Map::from(m))
        }
        scalar => hydrate::Value::Scalar(json_to_scalar(scalar)),
    }
}

pub(crate) fn hydrate_to_json(value: &hydrate::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        hydrate::Value::Scalar(s) => match s {
            ScalarValue::Str(s) => J::String(s.to_string()),
            ScalarValue::Int(i) => J::from(*i),
            ScalarValue::Uint(u) => J::from(*u),
            ScalarValue::F64(f) => J::from(*f),
            ScalarValue::Counter(c) => J::from(i64::from(c)),
            ScalarValue::Timestamp(t) => J::from(*t),
            ScalarValue::Boolean(b) => J::Bool(*b),
            ScalarValue::Null | ScalarValue::Bytes(_) | ScalarValue::Unknown { .. } => J::Null,
        },
        hydrate::Value::Map(m) => J::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), hydrate_to_json(&v.value)))
                .collect(),
        ),
        hydrate::Value::List(l) => J::Array(l.iter().map(|v| hydrate_to_json(&v.value)).collect()),
        hydrate::Value::Text(t) => J::String(t.to_string()),
    }
}

/// Reads a map of scalar fields (an LWW record such as a product) as JSON.
pub(crate) fn map_fields(
    am: &AutoCommit,
    obj: &ObjId,
) -> Result<serde_json::Map<String, serde_json::Value>, DocError> {
    check_depth(am, obj, "fields")?;
    match am.hydrate(obj, None)? {
        hydrate::Value::Map(m) => Ok(m
            .iter()
            .map(|(k, v)| (k.clone(), hydrate_to_json(&v.value)))
            .collect()),
        _ => Ok(serde_json::Map::new()),
    }
}

/// The hash [`Doc::heads_hash`] gives for a document with these heads (in any order):
/// what a replica lists for a document it keeps out of memory.
pub fn heads_hash_of(heads: &[ChangeHash]) -> [u8; 32] {
    let mut heads = heads.to_vec();
    heads.sort();
    let mut h = blake3::Hasher::new();
    for head in &heads {
        h.update(&head.0);
    }
    *h.finalize().as_bytes()
}

/// Adds `more` (a [`Doc::device_history`]) into `into`, keeping the higher sequence
/// number of each actor.
pub fn merge_history(into: &mut BTreeMap<String, u64>, more: BTreeMap<String, u64>) {
    for (actor, seq) in more {
        let last = into.entry(actor).or_insert(0);
        *last = seq.max(*last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::CatalogDoc;
    use crate::ids::{StoreId, product_id};
    use crate::records::Product;

    fn product(store: StoreId, sku: &str) -> Product {
        Product {
            id: product_id(store, sku),
            sku: sku.into(),
            name: sku.into(),
            barcodes: vec![],
            price: 1_000,
            cost: None,
            category: None,
            unit: "pcs".into(),
            tax_code: None,
            min_stock: None,
            active: true,
            updated_at_ms: 1,
            units: Vec::new(),
            tiers: Vec::new(),
            promos: Vec::new(),
        }
    }

    #[test]
    fn changed_depth_measures_new_and_extended_nesting_without_recursion() {
        let store = StoreId(uuid::Uuid::from_u128(4));
        let mut catalog = CatalogDoc::create(store, ActorId::random()).expect("create");
        catalog
            .upsert_product(&product(store, "A"))
            .expect("upsert");
        let doc = catalog.doc();
        let before = doc.heads();
        let record_depth = doc.changed_depth(&[]).expect("depth");
        assert!(
            (2..=MAX_DEPTH).contains(&record_depth),
            "a product is shallow: {record_depth}"
        );
        // A new object 1,000 levels deep, created in one change.
        let am = doc.automerge();
        let mut obj = am.put_object(ROOT, "deep", ObjType::Map).expect("put");
        for _ in 0..1_000 {
            obj = am.put_object(&obj, "x", ObjType::Map).expect("nest");
        }
        am.commit();
        assert!(doc.changed_depth(&before).expect("depth") > MAX_DEPTH);
        // Deepening an object that already exists, one level per change.
        let mut catalog = CatalogDoc::create(store, ActorId::random()).expect("create");
        let doc = catalog.doc();
        let am = doc.automerge();
        let mut obj = am.put_object(ROOT, "deep", ObjType::Map).expect("put");
        for _ in 0..MAX_DEPTH {
            obj = am.put_object(&obj, "x", ObjType::Map).expect("nest");
        }
        am.commit();
        let before = doc.heads();
        let am = doc.automerge();
        am.put_object(&obj, "x", ObjType::Map).expect("one deeper");
        am.commit();
        assert!(doc.changed_depth(&before).expect("depth") > MAX_DEPTH);
    }

    #[test]
    fn a_loaded_document_saves_only_new_changes() {
        let store = StoreId(uuid::Uuid::from_u128(3));
        let mut catalog = CatalogDoc::create(store, ActorId::random()).expect("create");
        for i in 0..50 {
            catalog
                .upsert_product(&product(store, &format!("SKU{i}")))
                .expect("upsert");
        }
        let history = catalog.doc().save_incremental();
        let mut loaded = Doc::load(
            catalog.doc().id(),
            DocKind::Catalog,
            [history.as_slice()],
            ActorId::random(),
        )
        .expect("load");
        assert!(
            loaded.save_incremental().is_empty(),
            "nothing new since the load"
        );
        let mut loaded = CatalogDoc::from_doc(loaded).expect("catalog");
        loaded
            .upsert_product(&product(store, "NEW"))
            .expect("upsert");
        let delta = loaded.doc().save_incremental();
        assert!(!delta.is_empty());
        assert!(
            delta.len() * 10 < history.len(),
            "one product, not the history: {} vs {}",
            delta.len(),
            history.len()
        );
    }
}
