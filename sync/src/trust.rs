//! Trust inside the store: every change is signed by its author and checked against the
//! store's write rules before it merges — the same code on tills and the relay.
//!
//! - **Authors.** A device writes with an actor that begins with its device id
//!   (`kasir_crdt::author`), and signs every change it makes: an ed25519 signature by
//!   its device key over the change hash ([`ChangeSig`]). The signature travels with the
//!   change in every sync frame, is stored beside it, and is forwarded unchanged, so a
//!   change is verifiable however many hops it took.
//! - **Rules** ([`check_merge`]), applied to what a merge would add before it is kept:
//!   - a ledger of till T takes changes only from T;
//!   - the catalog takes product changes from owner, manager and relay devices; a till
//!     may add photos to the recognition gallery (`ml_references`) only;
//!   - the store document (roster, roles, revocations, invites, users, profile) takes
//!     changes from owners and managers — a manager cannot create, change or invite an
//!     owner — except that a member may record its own addresses, and any member may
//!     admit a device with an invite: the new roster entry must match an unused,
//!     unexpired invite issued by a current owner, manager or relay, which the same
//!     change marks used. While a replica's roster is still empty (a store being created,
//!     a till before its first sync) the history that founds the store is taken as it is;
//!   - a revoked device's changes are refused, except its history up to the revocation
//!     as far as the revoker vouched for it in the roster entry (per actor, the last
//!     sequence number it held: `Device::vouched`), so a till that joins later — a
//!     replacement tablet — still receives the lost till's sales; a change by a device
//!     this replica does not know yet is set aside ([`Verdict::Defer`]) until the store
//!     document brings its admission;
//!   - after the merge every document keeps its identity (checked by
//!     `kasir_crdt::Doc::receive_sync_message_checked`), and nothing is nested deeper
//!     than `kasir_crdt::doc::MAX_DEPTH`.
//! - **History from before signatures** (actors not bound to a device) merges only with
//!   an *adoption* signature: a statement by an owner, manager or relay (or, for its
//!   own ledger, the till) that it vouches for a change already in its history, made
//!   once by `kasir upgrade` / `kasir-relay migrate`.

use std::collections::{BTreeSet, HashMap, HashSet};

use kasir_crdt::author::actor_device;
use kasir_crdt::doc::{ChangeHash, Doc, IncomingChange, MAX_DEPTH};
use kasir_crdt::store::{Device, Invite, Role, StoreSnapshot, StoreView};
use kasir_crdt::sync::PeerState;
use kasir_crdt::{BusinessDate, DeviceId, DocKind};
use serde::{Deserialize, Serialize};

use crate::identity::Identity;

/// What a change signature signs: this context, then the change hash.
const CONTEXT: &[u8] = b"kasir/change/v1\0";

/// The lazily created catalog map tills may write (photos for recognition).
pub const GALLERY: &str = "ml_references";

/// A signature over one change by a device key: its author's, or (for history written
/// before signatures) an owner's adoption.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChangeSig {
    /// The change hash.
    pub hash: [u8; 32],
    /// The signing device.
    pub signer: [u8; 32],
    /// The ed25519 signature (64 bytes).
    pub sig: Vec<u8>,
}

fn signed_message(hash: &[u8; 32]) -> [u8; CONTEXT.len() + 32] {
    let mut msg = [0u8; CONTEXT.len() + 32];
    msg[..CONTEXT.len()].copy_from_slice(CONTEXT);
    msg[CONTEXT.len()..].copy_from_slice(hash);
    msg
}

impl ChangeSig {
    /// Signs `hash` with `identity`.
    pub fn sign(identity: &Identity, hash: &ChangeHash) -> ChangeSig {
        ChangeSig {
            hash: hash.0,
            signer: identity.device_id().0,
            sig: identity.sign(&signed_message(&hash.0)).to_vec(),
        }
    }

    /// Signs those of `changes` that `identity` wrote (its device's actors); changes
    /// every replica makes alike, or other devices wrote, get no signature from it.
    pub fn sign_own(identity: &Identity, changes: &[IncomingChange]) -> Vec<ChangeSig> {
        let me = identity.device_id();
        changes
            .iter()
            .filter(|c| actor_device(&c.actor) == Some(me))
            .map(|c| ChangeSig::sign(identity, &c.hash))
            .collect()
    }

    /// The signing device.
    pub fn signer(&self) -> DeviceId {
        DeviceId(self.signer)
    }

    /// The signed change.
    pub fn change(&self) -> ChangeHash {
        ChangeHash(self.hash)
    }

    /// Whether the signature is the signer's over the hash.
    pub fn is_valid(&self) -> bool {
        ed25519_dalek::VerifyingKey::from_bytes(&self.signer).is_ok_and(|k| self.is_valid_with(&k))
    }

    /// [`ChangeSig::is_valid`] with the signer's key decoded already (it must be the
    /// key of `self.signer`).
    fn is_valid_with(&self, key: &ed25519_dalek::VerifyingKey) -> bool {
        let Ok(sig) = ed25519_dalek::Signature::from_slice(&self.sig) else {
            return false;
        };
        key.verify_strict(&signed_message(&self.hash), &sig).is_ok()
    }
}

/// Signatures of changes a peer sent that have not merged yet.
///
/// Automerge holds a change back until its predecessors arrive, and they may come in a
/// later session, from another peer that no longer sends the held change's signature;
/// the replica keeps the signature here until the change merges. Only valid signatures
/// of changes the document does not hold are kept, at most [`WaitingSigs::MAX`] (the
/// oldest go first: a change whose signature went is refused as unsigned and merges
/// when a peer that has it sends it again, with its signature).
#[derive(Debug, Default)]
pub struct WaitingSigs {
    by_hash: std::collections::HashMap<[u8; 32], ChangeSig>,
    order: std::collections::VecDeque<[u8; 32]>,
}

impl WaitingSigs {
    /// The most signatures kept (about 130 bytes each).
    pub const MAX: usize = 50_000;

    /// After a merge into `doc`: forgets the signatures of the `merged` changes and
    /// keeps those of the frame's `sigs` whose change `doc` does not hold (Automerge
    /// holds it back).
    pub fn after_merge(&mut self, doc: &mut Doc, sigs: &[ChangeSig], merged: &[ChangeSig]) {
        let merged: HashSet<[u8; 32]> = merged.iter().map(|s| s.hash).collect();
        for hash in &merged {
            self.by_hash.remove(hash);
        }
        for sig in sigs {
            if !merged.contains(&sig.hash)
                && !self.by_hash.contains_key(&sig.hash)
                && !doc.has_change(&ChangeHash(sig.hash))
                && sig.is_valid()
            {
                if self.order.len() >= Self::MAX
                    && let Some(oldest) = self.order.pop_front()
                {
                    self.by_hash.remove(&oldest);
                }
                self.order.push_back(sig.hash);
                self.by_hash.insert(sig.hash, sig.clone());
            }
        }
        if self.order.len() > 2 * self.by_hash.len() + 64 {
            let kept = &self.by_hash;
            self.order.retain(|h| kept.contains_key(h));
        }
    }

    /// The kept signature of change `hash`.
    pub fn get(&self, hash: &ChangeHash) -> Option<ChangeSig> {
        self.by_hash.get(&hash.0).cloned()
    }

    /// How many signatures wait.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether none wait.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

/// Why a merge was refused (the label of `kasir_sync_refused_changes_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum RefusalReason {
    /// A change without the signature its author (or an adopter) must give.
    Unsigned,
    /// A signature that does not verify.
    BadSignature,
    /// A ledger change by another device than the ledger's till.
    WrongAuthor,
    /// A change by a device outside the roster.
    NotAMember,
    /// A change by a revoked device.
    Revoked,
    /// A change its author's role may not make.
    Forbidden,
    /// A change to a document's identity (kind, id, store).
    Identity,
    /// Values nested deeper than the documents ever hold.
    TooDeep,
    /// Entries that do not decode, or a change the rules cannot read.
    Malformed,
}

impl RefusalReason {
    /// Every reason, for series that start at zero.
    pub const ALL: [RefusalReason; 9] = [
        RefusalReason::Unsigned,
        RefusalReason::BadSignature,
        RefusalReason::WrongAuthor,
        RefusalReason::NotAMember,
        RefusalReason::Revoked,
        RefusalReason::Forbidden,
        RefusalReason::Identity,
        RefusalReason::TooDeep,
        RefusalReason::Malformed,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::Unsigned => "unsigned",
            RefusalReason::BadSignature => "bad_signature",
            RefusalReason::WrongAuthor => "wrong_author",
            RefusalReason::NotAMember => "not_a_member",
            RefusalReason::Revoked => "revoked",
            RefusalReason::Forbidden => "forbidden",
            RefusalReason::Identity => "identity",
            RefusalReason::TooDeep => "too_deep",
            RefusalReason::Malformed => "malformed",
        }
    }
}

/// A refused merge: nothing of it was applied, persisted or forwarded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("change refused ({}): {detail}", reason.as_str())]
pub struct Refusal {
    /// Why, as a metric label.
    pub reason: RefusalReason,
    /// Which change and rule, for the log.
    pub detail: String,
    /// For [`RefusalReason::Revoked`]: the revoked device. An honest peer that has not
    /// heard of a revocation yet may relay its changes; only that document is then held
    /// back from it (see [`crate::Session`]).
    pub revoked: Option<DeviceId>,
}

impl Refusal {
    /// A refusal for `reason`, explained by `detail`.
    pub fn new(reason: RefusalReason, detail: impl Into<String>) -> Refusal {
        Refusal {
            reason,
            detail: detail.into(),
            revoked: None,
        }
    }

    fn revoked(device: DeviceId) -> Refusal {
        Refusal {
            revoked: Some(device),
            ..Refusal::new(RefusalReason::Revoked, format!("{device} was revoked"))
        }
    }

    /// Whether `peer` may have sent it in good faith: it relayed a change by a device
    /// that was revoked since (the peer may not know yet). Any other refusal means the
    /// peer sent what no honest replica forwards, and its session ends.
    pub fn is_relayed_by(&self, peer: DeviceId) -> bool {
        self.reason == RefusalReason::Revoked && self.revoked.is_some_and(|d| d != peer)
    }
}

/// What the rules decided about a merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Keep it, with the signatures to store beside its changes.
    Accept(Vec<ChangeSig>),
    /// A change by a device this replica does not know yet: set the document aside
    /// until the store document brings news of it (nothing applied).
    Defer(DeviceId),
    /// Refused.
    Refuse(Refusal),
}

/// What a checked merge of one sync message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Merge {
    /// Kept (`changed` when it added changes), with the signatures to store.
    Applied {
        /// Whether the document changed.
        changed: bool,
        /// The signatures of the changes it added.
        sigs: Vec<ChangeSig>,
    },
    /// Set aside unapplied: a change by a device this replica does not know yet.
    Deferred(DeviceId),
    /// Refused; nothing applied.
    Refused(Refusal),
}

/// Applies a peer's sync `msg` to `doc` if [`check_merge`] accepts what it adds — the
/// one path by which tills and the relay take in a peer's changes. A merge that would
/// change the document's identity is refused; a message that does not apply is an error.
pub fn receive_checked(
    doc: &mut Doc,
    state: &mut PeerState,
    msg: &[u8],
    ctx: &MergeContext<'_>,
) -> Result<Merge, kasir_crdt::DocError> {
    let mut accepted = Vec::new();
    let received =
        doc.receive_sync_message_checked(state, msg, |pre, post, added| {
            match check_merge(ctx, pre, post, added) {
                Verdict::Accept(sigs) => {
                    accepted = sigs;
                    Ok(())
                }
                Verdict::Defer(device) => Err(Merge::Deferred(device)),
                Verdict::Refuse(refusal) => Err(Merge::Refused(refusal)),
            }
        });
    match received {
        Ok(Ok(changed)) => Ok(Merge::Applied {
            changed,
            sigs: accepted,
        }),
        Ok(Err(not_applied)) => Ok(not_applied),
        Err(kasir_crdt::DocError::WrongShape { doc, .. }) => Ok(Merge::Refused(Refusal::new(
            RefusalReason::Identity,
            format!("the merge would change the identity of document {doc}"),
        ))),
        Err(e) => Err(e),
    }
}

/// What a check needs besides the document.
pub struct MergeContext<'a> {
    /// The document's kind.
    pub kind: DocKind,
    /// For a ledger, its till.
    pub till: Option<DeviceId>,
    /// The replica's store document (its roster and roles); `None` when the merge is
    /// into the store document itself (its state before the merge is the roster).
    pub roster: Option<StoreView<'a>>,
    /// For a ledger, its business date.
    pub date: Option<&'a BusinessDate>,
    /// This replica's clock (ms since the epoch): no ledger of a day after tomorrow.
    pub now_ms: i64,
    /// The signature of a change: the ones the frame carried, then those stored.
    pub sig: &'a dyn Fn(&ChangeHash) -> Option<ChangeSig>,
}

impl std::fmt::Debug for MergeContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MergeContext")
            .field("kind", &self.kind)
            .field("till", &self.till)
            .finish()
    }
}

/// Who a change speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writer {
    /// Written and signed by this device.
    Device(DeviceId),
    /// A deterministic change every replica makes alike (the gallery map's creation).
    WellKnown,
    /// History from before signatures, vouched for by this device.
    Adopted(DeviceId),
}

impl Writer {
    fn device(self) -> Option<DeviceId> {
        match self {
            Writer::Device(d) | Writer::Adopted(d) => Some(d),
            Writer::WellKnown => None,
        }
    }
}

/// Whether `new` is `old` revoked (with the history the revoker vouches for) and nothing
/// else changed, for a device that is not an owner or a relay (what the relay may write
/// to the roster for head office).
fn revokes_only(old: &Device, new: &Device) -> bool {
    !old.revoked
        && new.revoked
        && !matches!(old.role, Role::Owner | Role::Relay)
        && Device {
            revoked: true,
            vouched: new.vouched.clone(),
            ..old.clone()
        } == *new
}

fn is_admin(role: Role) -> bool {
    matches!(role, Role::Owner | Role::Manager)
}

fn may_issue_invites(role: Role) -> bool {
    matches!(role, Role::Owner | Role::Manager | Role::Relay)
}

/// Checks what a merge into one document would add (`added`, in causal order; `before`
/// is the document as this replica holds it, `after` with the merge applied).
pub fn check_merge(
    ctx: &MergeContext<'_>,
    before: &mut Doc,
    after: &mut Doc,
    added: &[IncomingChange],
) -> Verdict {
    match check(ctx, before, after, added) {
        Ok(Ok(sigs)) => Verdict::Accept(sigs),
        Ok(Err(unknown)) => Verdict::Defer(unknown),
        Err(refusal) => Verdict::Refuse(refusal),
    }
}

type Checked<T> = Result<Result<T, DeviceId>, Refusal>;

fn malformed(e: impl std::fmt::Display) -> Refusal {
    Refusal::new(RefusalReason::Malformed, e.to_string())
}

fn check(
    ctx: &MergeContext<'_>,
    before: &mut Doc,
    after: &mut Doc,
    added: &[IncomingChange],
) -> Checked<Vec<ChangeSig>> {
    if let Some(unknown) = unknown_author(ctx, added) {
        return Ok(Err(unknown));
    }
    let gallery_map = match ctx.kind {
        DocKind::Catalog => after.lazy_map_change_hash(GALLERY),
        _ => None,
    };
    let mut sigs = Vec::with_capacity(added.len());
    let mut writers = Vec::with_capacity(added.len());
    // Told after the depth, as a too-deep merge is refused for that first.
    let mut unsigned = None;
    for change in added {
        let writer = match actor_device(&change.actor) {
            Some(author) => match signature_of(ctx, change, Some(author)) {
                Ok(sig) => {
                    sigs.push(sig);
                    Writer::Device(author)
                }
                Err(refusal) => {
                    unsigned = Some(refusal);
                    break;
                }
            },
            None if Some(change.hash) == gallery_map => Writer::WellKnown,
            None => match signature_of(ctx, change, None) {
                Ok(sig) => {
                    let adopter = sig.signer();
                    sigs.push(sig);
                    Writer::Adopted(adopter)
                }
                Err(refusal) => {
                    unsigned = Some(refusal);
                    break;
                }
            },
        };
        writers.push(writer);
    }
    // The two costly steps of a large merge, side by side: the depth walk here, the
    // signatures on the other cores.
    let before_heads = before.heads();
    let (depth, bad) = if sigs.len() < SIGS_PER_THREAD {
        let depth = after.changed_depth(&before_heads);
        (depth, Ok(first_invalid(&sigs).map(ChangeSig::change)))
    } else {
        std::thread::scope(|scope| {
            let verifying = scope.spawn(|| first_invalid(&sigs).map(ChangeSig::change));
            let depth = after.changed_depth(&before_heads);
            (depth, verifying.join())
        })
    };
    let depth = depth.map_err(malformed)?;
    if depth > MAX_DEPTH {
        return Err(Refusal::new(
            RefusalReason::TooDeep,
            format!("a change nests {depth} levels deep (at most {MAX_DEPTH})"),
        ));
    }
    if let Some(refusal) = unsigned {
        return Err(refusal);
    }
    match bad {
        Ok(None) => {}
        Ok(Some(change)) => {
            return Err(Refusal::new(
                RefusalReason::BadSignature,
                format!("the signature of change {change} does not verify"),
            ));
        }
        Err(_) => {
            return Err(Refusal::new(
                RefusalReason::BadSignature,
                "the signatures could not be verified",
            ));
        }
    }
    let verdict = match (ctx.kind, ctx.roster) {
        (DocKind::Store, _) => check_store(before, after, added, &writers)?,
        (_, None) => {
            return Err(Refusal::new(
                RefusalReason::Malformed,
                "no roster to check the merge against",
            ));
        }
        (DocKind::Ledger, Some(roster)) => {
            check_ledger_dates(ctx, added, &writers)?;
            check_ledger(ctx.till, roster, added, &writers)?
        }
        (DocKind::Catalog, Some(roster)) => check_catalog(roster, before, after, added, &writers)?,
    };
    Ok(verdict.map(|()| sigs))
}

/// The first author of `added` (by its actor, no signature needed to say so) that the
/// roster does not list yet. Such a merge waits for the roster whatever else it holds,
/// so it is told before the costly checks: a new till's catch-up of a day may arrive
/// before the store document that admits the day's till, and is then checked once, not
/// twice. Merges into the store document itself have no roster to wait for.
fn unknown_author(ctx: &MergeContext<'_>, added: &[IncomingChange]) -> Option<DeviceId> {
    let mut roster = Roster::new(ctx.roster?);
    let mut last = None;
    for change in added {
        let Some(author) = actor_device(&change.actor) else {
            continue;
        };
        if last == Some(author) {
            continue; // a day's changes come in long runs by one till
        }
        last = Some(author);
        if roster.entry(author).is_none() {
            return Some(author);
        }
    }
    None
}

/// The signature `change` needs: its author's, or (history from before signatures,
/// `author` `None`) any device's adoption, whose standing the rules check. Whether it
/// verifies is [`first_invalid`]'s to say, for all of a merge's signatures at once.
fn signature_of(
    ctx: &MergeContext<'_>,
    change: &IncomingChange,
    author: Option<DeviceId>,
) -> Result<ChangeSig, Refusal> {
    let Some(sig) = (ctx.sig)(&change.hash) else {
        return Err(Refusal::new(
            RefusalReason::Unsigned,
            format!("change {} carries no signature", change.hash),
        ));
    };
    if author.is_some_and(|a| a != sig.signer()) {
        return Err(Refusal::new(
            RefusalReason::BadSignature,
            format!(
                "change {} is signed by another device than its author",
                change.hash
            ),
        ));
    }
    if sig.hash != change.hash.0 {
        return Err(Refusal::new(
            RefusalReason::BadSignature,
            format!("the signature of change {} does not verify", change.hash),
        ));
    }
    Ok(sig)
}

/// The first of `sigs` that does not verify. A day's catch-up carries thousands of
/// signatures, ed25519 verification the most costly step of its check: they are
/// verified on every core, in slices of at least [`SIGS_PER_THREAD`], each slice
/// decoding its signer's key once for the run of signatures by the same device.
fn first_invalid(sigs: &[ChangeSig]) -> Option<&ChangeSig> {
    kasir_crdt::parallel::slices(sigs, SIGS_PER_THREAD, first_invalid_in)
        .into_iter()
        .find_map(|(range, found)| match found {
            Ok(at) => at.map(|at| range.start + at),
            // A verifier that panicked vouches for nothing in its slice.
            Err(_) => Some(range.start),
        })
        .and_then(|at| sigs.get(at))
}

/// Signatures below which a verifying thread costs more than it saves.
const SIGS_PER_THREAD: usize = 256;

/// The index of the first of `sigs` that does not verify, one thread.
fn first_invalid_in(sigs: &[ChangeSig]) -> Option<usize> {
    let mut key: Option<([u8; 32], Option<ed25519_dalek::VerifyingKey>)> = None;
    sigs.iter().position(|sig| {
        let signer = match &key {
            Some((bytes, k)) if *bytes == sig.signer => k,
            _ => {
                let k = ed25519_dalek::VerifyingKey::from_bytes(&sig.signer).ok();
                &key.insert((sig.signer, k)).1
            }
        };
        !signer.as_ref().is_some_and(|k| sig.is_valid_with(k))
    })
}

/// The roster as a merge's check reads it: each device's entry looked up once (a day's
/// catch-up is thousands of changes by one till, each asking after the same entry).
struct Roster<'a> {
    view: StoreView<'a>,
    seen: HashMap<DeviceId, Option<Device>>,
}

impl<'a> Roster<'a> {
    fn new(view: StoreView<'a>) -> Roster<'a> {
        Roster {
            view,
            seen: HashMap::new(),
        }
    }

    /// The device's roster entry; one that does not decode counts as absent (as in
    /// [`crate::membership::Membership::of`]).
    fn entry(&mut self, device: DeviceId) -> Option<&Device> {
        let view = &self.view;
        self.seen
            .entry(device)
            .or_insert_with(|| view.device(device).ok().flatten())
            .as_ref()
    }

    /// The standing of a change's writer: its role, or why it has none.
    fn standing(&mut self, device: DeviceId) -> Checked<Role> {
        match self.entry(device) {
            Some(d) if d.revoked => Err(Refusal::revoked(device)),
            Some(d) => Ok(Ok(d.role)),
            None => Ok(Err(device)),
        }
    }

    /// The standing of `author` for a change it wrote: as [`Roster::standing`], except
    /// that a revoked device keeps its role for the history its revoker vouched for.
    fn author_standing(&mut self, author: DeviceId, change: &IncomingChange) -> Checked<Role> {
        match self.entry(author) {
            Some(d) if d.revoked && d.vouches_for(&change.actor, change.seq) => Ok(Ok(d.role)),
            _ => self.standing(author),
        }
    }
}

/// How far a ledger's day may be from its writer's clock (time zones, a business day
/// that ends after midnight) and from this replica's.
const LEDGER_DATE_SLACK_MS: i64 = 2 * 86_400_000;

/// A till writes into the ledger of the day its clock says: a signed change into a
/// ledger of another day, or any ledger of a day after tomorrow here, is refused, so a
/// member cannot make every replica keep ledgers for arbitrary dates.
fn check_ledger_dates(
    ctx: &MergeContext<'_>,
    added: &[IncomingChange],
    writers: &[Writer],
) -> Result<(), Refusal> {
    let Some(date) = ctx.date else {
        return Err(malformed("a ledger without its date"));
    };
    if *date > BusinessDate::at(ctx.now_ms.saturating_add(LEDGER_DATE_SLACK_MS), 0) {
        return Err(Refusal::new(
            RefusalReason::Forbidden,
            format!("a ledger of {date} is in the future"),
        ));
    }
    for (change, w) in added.iter().zip(writers) {
        if !matches!(w, Writer::Device(_)) {
            continue; // history from before signatures keeps its dates
        }
        let at = change.time_s.saturating_mul(1000);
        let earliest = BusinessDate::at(at.saturating_sub(LEDGER_DATE_SLACK_MS), 0);
        let latest = BusinessDate::at(at.saturating_add(LEDGER_DATE_SLACK_MS), 0);
        if *date < earliest || *date > latest {
            return Err(Refusal::new(
                RefusalReason::Forbidden,
                format!(
                    "change {} was written at {} but into the ledger of {date}",
                    change.hash,
                    BusinessDate::at(at, 0)
                ),
            ));
        }
    }
    Ok(())
}

fn check_ledger(
    till: Option<DeviceId>,
    roster: StoreView<'_>,
    added: &[IncomingChange],
    writers: &[Writer],
) -> Checked<()> {
    let Some(till) = till else {
        return Err(malformed("a ledger without its till"));
    };
    let mut roster = Roster::new(roster);
    for (change, w) in added.iter().zip(writers) {
        match *w {
            Writer::Device(d) if d != till => {
                return Err(Refusal::new(
                    RefusalReason::WrongAuthor,
                    format!("{d} wrote into the ledger of {till}"),
                ));
            }
            Writer::Device(d) => {
                if let Err(unknown) = roster.author_standing(d, change)? {
                    return Ok(Err(unknown));
                }
            }
            Writer::Adopted(a) => {
                let role = match roster.standing(a)? {
                    Ok(role) => role,
                    Err(unknown) => return Ok(Err(unknown)),
                };
                if a != till && !is_admin(role) && role != Role::Relay {
                    return Err(Refusal::new(
                        RefusalReason::Forbidden,
                        format!("{a} may not adopt the history of {till}'s ledger"),
                    ));
                }
            }
            Writer::WellKnown => return Err(malformed("a ledger has no shared changes")),
        }
    }
    Ok(Ok(()))
}

fn check_catalog(
    roster: StoreView<'_>,
    before: &mut Doc,
    after: &mut Doc,
    added: &[IncomingChange],
    writers: &[Writer],
) -> Checked<()> {
    let mut roster = Roster::new(roster);
    let mut gallery_only = Vec::new();
    for (change, w) in added.iter().zip(writers) {
        let Some(device) = w.device() else {
            continue; // the gallery map's deterministic creation
        };
        let held = match w {
            Writer::Device(author) => roster.author_standing(*author, change)?,
            _ => roster.standing(device)?,
        };
        let role = match held {
            Ok(role) => role,
            Err(unknown) => return Ok(Err(unknown)),
        };
        match (w, role) {
            (_, Role::Owner | Role::Manager | Role::Relay) => {}
            (Writer::Device(_), Role::Till) => gallery_only.push(change.hash),
            _ => {
                return Err(Refusal::new(
                    RefusalReason::Forbidden,
                    format!("{device} may not write the catalog"),
                ));
            }
        }
    }
    if gallery_only.is_empty() {
        return Ok(Ok(()));
    }
    // Replay the merge change by change: what a till wrote must touch the gallery only.
    let mut step = before.fork_applied().map_err(malformed)?;
    for change in added {
        let prev = step.heads();
        step.apply_change_of(after, &change.hash)
            .map_err(malformed)?;
        if gallery_only.contains(&change.hash) {
            let roots = step.changed_roots(&prev).map_err(malformed)?;
            if roots.iter().any(|r| r != GALLERY) {
                return Err(Refusal::new(
                    RefusalReason::Forbidden,
                    format!(
                        "a till's change {} writes {:?}: tills may add gallery photos only",
                        change.hash,
                        roots.into_iter().collect::<Vec<_>>()
                    ),
                ));
            }
        }
    }
    Ok(Ok(()))
}

/// The store document, replayed change by change: each is judged against the roster
/// as it stood just before it.
fn check_store(
    before: &mut Doc,
    after: &mut Doc,
    added: &[IncomingChange],
    writers: &[Writer],
) -> Checked<()> {
    let mut step = before.fork_applied().map_err(malformed)?;
    let mut prev = StoreView::of(&step).snapshot().map_err(malformed)?;
    for (change, writer) in added.iter().zip(writers) {
        step.apply_change_of(after, &change.hash)
            .map_err(malformed)?;
        let next = StoreView::of(&step).snapshot().map_err(malformed)?;
        if let Err(unknown) = authorize_store(&prev, &next, *writer, change)? {
            return Ok(Err(unknown));
        }
        prev = next;
    }
    Ok(Ok(()))
}

/// The identity fields of a store document, set at genesis for ever.
const IDENTITY: [&str; 3] = ["kind", "doc_id", "store_id"];

fn decoded<T: Clone>(entry: Option<&Result<T, String>>, key: &str) -> Result<Option<T>, Refusal> {
    match entry {
        None => Ok(None),
        Some(Ok(v)) => Ok(Some(v.clone())),
        Some(Err(e)) => Err(malformed(format!("{key}: {e}"))),
    }
}

/// Whether one change of the store document is allowed to its writer.
fn authorize_store(
    prev: &StoreSnapshot,
    next: &StoreSnapshot,
    writer: Writer,
    change: &IncomingChange,
) -> Checked<()> {
    for key in IDENTITY {
        if prev.rest.get(key) != next.rest.get(key) {
            return Err(Refusal::new(
                RefusalReason::Identity,
                format!("change {} rewrites the store's {key}", change.hash),
            ));
        }
    }
    // The founding history: a roster with nobody in it yet has nobody to ask.
    if prev.devices.is_empty() {
        return Ok(Ok(()));
    }
    let Some(device) = writer.device() else {
        return Err(malformed("the store document has no shared changes"));
    };
    let role = match prev.devices.get(&device.to_string()) {
        None => {
            return Err(Refusal::new(
                RefusalReason::NotAMember,
                format!("{device} is not in the roster"),
            ));
        }
        Some(Err(e)) => return Err(malformed(e)),
        Some(Ok(d)) if d.revoked => {
            // Its own history from before the revocation, as far as the revoker vouched.
            match writer {
                Writer::Device(_) if d.vouches_for(&change.actor, change.seq) => d.role,
                _ => return Err(Refusal::revoked(device)),
            }
        }
        Some(Ok(d)) => d.role,
    };
    // History from before signatures was accepted by every replica when it was written;
    // an owner or the relay vouches for it once (`kasir upgrade`, `kasir-relay migrate`)
    // and it is taken as it stands. Nobody else may vouch for the store's history.
    if matches!(writer, Writer::Adopted(_)) {
        return match role {
            Role::Owner | Role::Relay => Ok(Ok(())),
            _ => Err(Refusal::new(
                RefusalReason::Forbidden,
                format!(
                    "{device} ({}) may not adopt the store's history",
                    role.as_str()
                ),
            )),
        };
    }
    let forbidden = |what: String| {
        Err(Refusal::new(
            RefusalReason::Forbidden,
            format!("{device} ({}) may not {what}", role.as_str()),
        ))
    };
    let rest_changed = prev.rest != next.rest;
    if rest_changed && !is_admin(role) {
        return forbidden("change the profile, users or settings".into());
    }
    let admitted = admissions(prev, next, change)?;
    let keys: BTreeSet<&String> = prev.devices.keys().chain(next.devices.keys()).collect();
    for key in keys {
        let old = decoded(prev.devices.get(key), key)?;
        let new = decoded(next.devices.get(key), key)?;
        if old == new {
            continue;
        }
        let own = *key == device.to_string();
        match (&old, &new) {
            (None, Some(_)) if admitted.contains(key) => {}
            (Some(o), Some(n)) if own && o.role == n.role && o.revoked == n.revoked => {
                // A member keeps its own addresses (and nothing else) up to date.
                if (o.till_code != n.till_code || o.joined_at_ms != n.joined_at_ms)
                    && !is_admin(role)
                {
                    return forbidden(format!("change its own roster entry {key}"));
                }
            }
            // Head office revokes a lost till through the relay: revocation alone, of a
            // device that is neither an owner nor a relay.
            (Some(o), Some(n)) if role == Role::Relay && revokes_only(o, n) => {}
            _ if !is_admin(role) => return forbidden(format!("change the roster entry {key}")),
            _ => {
                let touches_owner = old.as_ref().is_some_and(|d| d.role == Role::Owner)
                    || new.as_ref().is_some_and(|d| d.role == Role::Owner);
                if role == Role::Manager && touches_owner {
                    return forbidden(format!("create or change the owner {key}"));
                }
            }
        }
    }
    let keys: BTreeSet<&String> = prev.invites.keys().chain(next.invites.keys()).collect();
    for key in keys {
        let old = decoded(prev.invites.get(key), key)?;
        let new = decoded(next.invites.get(key), key)?;
        if old == new {
            continue;
        }
        match (&old, &new) {
            (Some(o), Some(n)) if redeems(o, n) => {
                // Checked with its roster entry in `admissions`.
                if !n.used_by.as_ref().is_some_and(|u| admitted.contains(u)) {
                    return forbidden(format!("mark the invite {key} used"));
                }
            }
            (None, Some(n)) => {
                if !may_issue_invites(role) {
                    return forbidden("invite devices".into());
                }
                if n.created_by != device.to_string() || n.used_by.is_some() {
                    return forbidden(format!("write an invite {key} in another's name"));
                }
                if n.role == Role::Owner && role == Role::Manager {
                    return forbidden("invite an owner".into());
                }
            }
            _ => {
                if !is_admin(role) {
                    return forbidden(format!("change the invite {key}"));
                }
                let owner_invite = old.as_ref().is_some_and(|i| i.role == Role::Owner)
                    || new.as_ref().is_some_and(|i| i.role == Role::Owner);
                if role == Role::Manager && owner_invite {
                    return forbidden(format!("change the owner invite {key}"));
                }
            }
        }
    }
    Ok(Ok(()))
}

/// Whether `new` is `old` marked used and nothing else.
fn redeems(old: &Invite, new: &Invite) -> bool {
    old.used_by.is_none()
        && new.used_by.is_some()
        && Invite {
            used_by: None,
            ..new.clone()
        } == *old
}

/// The devices one change admits with an invite, each checked: a new roster entry
/// whose id the same change wrote into an unused, unexpired invite of an owner,
/// manager or relay that is still a member, with the invite's role and not revoked.
fn admissions(
    prev: &StoreSnapshot,
    next: &StoreSnapshot,
    change: &IncomingChange,
) -> Result<BTreeSet<String>, Refusal> {
    let mut admitted = BTreeSet::new();
    for (key, new) in &next.invites {
        let (Some(Ok(old)), Ok(new)) = (prev.invites.get(key), new) else {
            continue;
        };
        if !redeems(old, new) {
            continue;
        }
        let Some(joiner) = new.used_by.clone() else {
            continue;
        };
        let refuse = |why: &str| {
            Refusal::new(
                RefusalReason::Forbidden,
                format!("admission of {joiner} with invite {key}: {why}"),
            )
        };
        let issuer_ok = matches!(
            prev.devices.get(&new.created_by),
            Some(Ok(d)) if !d.revoked && may_issue_invites(d.role)
        );
        if !issuer_ok {
            return Err(refuse(
                "its issuer is not a current owner, manager or relay",
            ));
        }
        if change.time_s.saturating_mul(1000) > new.expires_at_ms {
            return Err(refuse("the invite had expired"));
        }
        if prev.devices.contains_key(&joiner) {
            return Err(refuse("the device is already in the roster"));
        }
        match next.devices.get(&joiner) {
            Some(Ok(d)) if d.role == new.role && !d.revoked => {}
            _ => return Err(refuse("its roster entry does not match the invite")),
        }
        admitted.insert(joiner);
    }
    Ok(admitted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_hash_and_signer() {
        let id = Identity::generate();
        let hash = ChangeHash([7; 32]);
        let sig = ChangeSig::sign(&id, &hash);
        assert!(sig.is_valid());
        assert_eq!(sig.signer(), id.device_id());
        let mut other_hash = sig.clone();
        other_hash.hash = [8; 32];
        assert!(!other_hash.is_valid());
        let mut other_signer = sig.clone();
        other_signer.signer = Identity::generate().device_id().0;
        assert!(!other_signer.is_valid());
        let mut short = sig;
        short.sig.truncate(10);
        assert!(!short.is_valid());
    }

    #[test]
    fn a_catch_up_finds_the_first_bad_signature_among_thousands() {
        let (a, b) = (Identity::generate(), Identity::generate());
        // Runs of two signers, long enough that the check splits them over threads.
        let mut sigs: Vec<ChangeSig> = (0..1_200u32)
            .map(|i| {
                let mut hash = [0; 32];
                hash[..4].copy_from_slice(&i.to_le_bytes());
                let by = if (i / 250) % 2 == 0 { &a } else { &b };
                ChangeSig::sign(by, &ChangeHash(hash))
            })
            .collect();
        assert!(first_invalid(&sigs).is_none(), "all verify");
        // A signature moved onto another change, late in the list and early: the
        // earliest is the one named, whichever slice found it.
        sigs[1_100].hash = [9; 32];
        assert_eq!(first_invalid(&sigs).map(|s| s.hash), Some([9; 32]));
        sigs[650].signer = b.device_id().0;
        sigs[650].hash = [5; 32];
        assert_eq!(first_invalid(&sigs).map(|s| s.hash), Some([5; 32]));
        let one = &sigs[1_100..1_101];
        assert!(first_invalid(one).is_some(), "one alone, one thread");
    }

    #[test]
    fn the_relay_may_revoke_a_till_and_do_nothing_else_to_the_roster() {
        let till = Device {
            till_code: "T2".into(),
            role: Role::Till,
            revoked: false,
            addrs: vec!["10.0.0.2:7420".into()],
            joined_at_ms: 5,
            vouched: Default::default(),
        };
        let revoked = Device {
            revoked: true,
            ..till.clone()
        };
        assert!(revokes_only(&till, &revoked));
        assert!(!revokes_only(&revoked, &till), "no un-revoking");
        assert!(!revokes_only(&revoked, &revoked), "nothing to do");
        let promoted = Device {
            role: Role::Manager,
            ..revoked.clone()
        };
        assert!(!revokes_only(&till, &promoted), "no role change with it");
        let moved = Device {
            addrs: vec![],
            ..revoked.clone()
        };
        assert!(!revokes_only(&till, &moved), "no other field with it");
        for role in [Role::Owner, Role::Relay] {
            let protected = Device {
                role,
                ..till.clone()
            };
            let gone = Device {
                revoked: true,
                ..protected.clone()
            };
            assert!(!revokes_only(&protected, &gone), "{role:?}");
        }
    }
}
