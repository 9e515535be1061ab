//! Invites, admission, joining and revocation on a till: who may sync with this store.
//!
//! The rules (what an invite is, what admitting a device writes) are `kasir_sync`'s
//! [`kasir_sync::membership`], shared with the relay; this module writes their results
//! into the till's store document, durably.

use std::path::Path;

use kasir_crdt::store::{Device, Invite, Role};
use kasir_crdt::{DeviceId, DocId, DocKind, StoreId};
use kasir_sync::membership::{
    Admission, AdmissionPlan, INVITE_TTL_MS, Membership, Ticket, plan_admission, secret_hash,
};

use crate::error::NodeError;
use crate::node::{Node, now_ms};
use crate::storage::{self, Chunk, READ_TABLES_VERSION};

impl Node {
    /// Makes an invite and its printable ticket. `extra_addrs` are where this node's
    /// sync endpoint listens now; addresses of other members come from the roster.
    pub fn invite_ticket(
        &mut self,
        role: Role,
        till_code: Option<String>,
        extra_addrs: Vec<String>,
    ) -> Result<String, NodeError> {
        let secret = self.create_invite(role, till_code)?;
        let me = self.device_id();
        let mut own: Vec<String> = extra_addrs
            .into_iter()
            .filter(|a| {
                a.parse::<std::net::SocketAddr>()
                    .is_ok_and(|s| !s.ip().is_unspecified())
            })
            .collect();
        if let Ok(Some(d)) = self.store.device(me) {
            for a in d.addrs {
                if !own.contains(&a) {
                    own.push(a);
                }
            }
        }
        let mut members = vec![(me.0, own)];
        for (id, addrs) in self.peer_addresses()? {
            if !addrs.is_empty() && members.len() < 8 {
                members.push((id.0, addrs));
            }
        }
        Ok(Ticket {
            store: *self.store_id().0.as_bytes(),
            secret,
            members,
        }
        .encode())
    }

    pub(crate) fn write_store<T>(
        &mut self,
        change: impl FnOnce(&mut kasir_crdt::store::StoreDoc) -> Result<T, kasir_crdt::DocError>,
    ) -> Result<T, NodeError> {
        let result = (|| -> Result<T, NodeError> {
            let out = change(&mut self.store)?;
            let doc = self.store.doc();
            let chunk = Chunk::local(doc, &self.identity);
            let tx = self.db.transaction()?;
            storage::register_doc(&tx, doc.id(), DocKind::Store, None, None)?;
            storage::append_chunk(&tx, doc.id(), &chunk)?;
            tx.commit()?;
            Ok(out)
        })();
        let out = self.after_write(DocKind::Store, result)?;
        self.maybe_compact(DocId::store(self.store_id()))?;
        Ok(out)
    }

    /// Makes a one-time invite. Returns the secret; the caller builds the ticket with the
    /// member addresses it knows.
    pub fn create_invite(
        &mut self,
        role: Role,
        till_code: Option<String>,
    ) -> Result<[u8; 32], NodeError> {
        self.require_admin("invite devices")?;
        if matches!(role, Role::Owner) {
            return Err(NodeError::Invalid("an invite cannot make an owner".into()));
        }
        let till_code = till_code
            .map(|c| crate::node::validate_till_code(&c))
            .transpose()?;
        if let Some(code) = &till_code {
            self.check_code_free(code, None)?;
        }
        let mut secret = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
        let now = now_ms();
        let invite = Invite {
            role,
            till_code,
            created_by: self.device_id().to_string(),
            created_at_ms: now,
            expires_at_ms: now + INVITE_TTL_MS,
            used_by: None,
        };
        self.write_store(|s| s.put_invite(&secret_hash(&secret), &invite, now))?;
        Ok(secret)
    }

    /// Cancels an unused invite (`kasir invite cancel`): its ticket is refused from now
    /// on, by every member once they sync. Only an owner or manager may; a manager may
    /// not cancel an owner's invite.
    pub fn cancel_invite(&mut self, ticket: &Ticket) -> Result<(), NodeError> {
        let role = self.require_admin("cancel invites")?;
        if ticket.store_id() != self.store_id() {
            return Err(NodeError::Invalid("the ticket is for another store".into()));
        }
        let hash = secret_hash(&ticket.secret);
        let Some(mut invite) = self.store.invite(&hash)? else {
            return Err(NodeError::NotFound("invite".into()));
        };
        if invite.used_by.is_some() {
            return Err(NodeError::Conflict("this invite was already used".into()));
        }
        if invite.role == Role::Owner && role != Role::Owner {
            return Err(NodeError::Forbidden(
                "only an owner may cancel an owner's invite".into(),
            ));
        }
        invite.expires_at_ms = 0;
        let now = now_ms();
        self.write_store(|s| s.put_invite(&hash, &invite, now))
            .map(drop)
    }

    fn check_code_free(&self, code: &str, except: Option<DeviceId>) -> Result<(), NodeError> {
        let taken = self
            .store
            .devices()
            .into_iter()
            .any(|(id, d)| d.till_code == code && !d.revoked && Some(id) != except);
        if taken {
            return Err(NodeError::Conflict(format!(
                "till code {code} is already in use"
            )));
        }
        Ok(())
    }

    /// Admits `device` with an invite secret: adds it to the roster and uses the invite.
    /// Admitting the same device with the same secret again returns the same result.
    pub fn admit(
        &mut self,
        secret: &[u8; 32],
        device: DeviceId,
        requested_code: Option<String>,
        addrs: Vec<String>,
    ) -> Result<Admission, NodeError> {
        let now = now_ms();
        match plan_admission(&self.store, secret, device, requested_code, addrs, now)? {
            AdmissionPlan::Already(a) => Ok(a),
            plan => {
                let a = self.write_store(|s| plan.apply(s, now))?;
                tracing::info!(%device, till_code = %a.till_code, "admitted a new device");
                Ok(a)
            }
        }
    }

    /// Whether this till may link `relay` (an owner or manager, not itself): checked
    /// before an adoption ticket is spent.
    pub fn check_may_link_relay(&self, relay: DeviceId) -> Result<(), NodeError> {
        self.require_admin("link a relay")?;
        if relay == self.device_id() {
            return Err(NodeError::Invalid("a till cannot be its own relay".into()));
        }
        Ok(())
    }

    /// Adds a relay to the roster (or refreshes its addresses), so every till of the
    /// store dials it and accepts it. Only an owner or manager till may link a relay.
    /// Returns the relay's till code (`RELAY`, `RELAY2`, … if an older relay holds it).
    pub fn link_relay(&mut self, relay: DeviceId, addrs: Vec<String>) -> Result<String, NodeError> {
        self.check_may_link_relay(relay)?;
        let now = now_ms();
        let entry = match self.store.device(relay)? {
            Some(d) if d.revoked => {
                return Err(NodeError::Conflict("this relay was revoked".into()));
            }
            Some(d) if d.role != Role::Relay => {
                return Err(NodeError::Conflict(format!(
                    "{relay} is already a member as {}",
                    d.role.as_str()
                )));
            }
            Some(mut d) => {
                if d.addrs == addrs {
                    return Ok(d.till_code);
                }
                d.addrs = addrs;
                d
            }
            None => {
                let used: Vec<String> = self
                    .store
                    .devices()
                    .into_iter()
                    .map(|(_, d)| d.till_code)
                    .collect();
                let till_code = std::iter::once("RELAY".to_owned())
                    .chain((2..).map(|n| format!("RELAY{n}")))
                    .find(|c| !used.contains(c))
                    .unwrap_or_else(|| "RELAY".into());
                Device {
                    till_code,
                    role: Role::Relay,
                    revoked: false,
                    addrs,
                    joined_at_ms: now,
                    vouched: Default::default(),
                }
            }
        };
        let code = entry.till_code.clone();
        self.write_store(|s| s.put_device(relay, &entry, now))?;
        tracing::info!(%relay, "linked a relay");
        Ok(code)
    }

    /// Whether this device may change the store's settings, roster and catalog (an
    /// owner or manager): what its peers accept from it.
    pub fn may_administer(&self) -> bool {
        matches!(
            self.membership(self.device_id()),
            Membership::Member(Role::Owner | Role::Manager)
        )
    }

    /// Refuses, before anything is written, what this device's peers would refuse.
    pub(crate) fn require_admin(&self, what: &str) -> Result<Role, NodeError> {
        match self.membership(self.device_id()) {
            Membership::Member(role @ (Role::Owner | Role::Manager)) => Ok(role),
            Membership::Member(role) => Err(NodeError::Forbidden(format!(
                "only an owner or manager till may {what} (this till is a {})",
                role.as_str()
            ))),
            _ => Err(NodeError::Forbidden(format!(
                "this till is not a member of its store and may not {what}"
            ))),
        }
    }

    /// Revokes a device: it is refused at the connection from now on. Only an owner
    /// or manager may; a manager may not revoke an owner.
    pub fn revoke(&mut self, device: DeviceId) -> Result<(), NodeError> {
        let role = self.require_admin("revoke devices")?;
        let Some(mut d) = self.store.device(device)? else {
            return Err(NodeError::NotFound(format!("device {device}")));
        };
        if device == self.device_id() {
            return Err(NodeError::Invalid("a device cannot revoke itself".into()));
        }
        if d.role == Role::Owner && role != Role::Owner {
            return Err(NodeError::Forbidden(
                "only an owner may revoke an owner".into(),
            ));
        }
        d.revoked = true;
        d.vouched = self.device_history(device)?;
        self.write_store(|s| s.put_device(device, &d, now_ms()))
            .map(drop)
    }

    /// What `device` wrote into the documents this till holds (per actor, the last
    /// sequence number): the history a revocation vouches for, so tills that join later
    /// still receive it (see `kasir_sync::trust`).
    fn device_history(
        &self,
        device: DeviceId,
    ) -> Result<std::collections::BTreeMap<String, u64>, NodeError> {
        let mut history = std::collections::BTreeMap::new();
        let name = device.to_string();
        for e in storage::manifest(&self.db)? {
            if e.kind == DocKind::Ledger && e.till.as_deref() != Some(name.as_str()) {
                continue; // a ledger holds its own till's changes only
            }
            if let Some(mut doc) = storage::load_doc(&self.db, e.id, e.kind, self.actor.clone())? {
                kasir_crdt::doc::merge_history(&mut history, doc.device_history(device));
            }
        }
        Ok(history)
    }

    /// Records the addresses this device listens on in its roster entry (when changed),
    /// so members find it again after restarts without discovery.
    pub fn remember_own_addrs(&mut self, addrs: Vec<String>) -> Result<(), NodeError> {
        let me = self.device_id();
        let Some(mut d) = self.store.device(me)? else {
            return Ok(());
        };
        if d.addrs == addrs {
            return Ok(());
        }
        d.addrs = addrs;
        self.write_store(|s| s.put_device(me, &d, now_ms()))
            .map(drop)
    }

    /// Remembers where a peer was reached (local only).
    pub fn remember_peer_addr(&self, peer: DeviceId, addr: &str) -> Result<(), NodeError> {
        self.db.execute(
            "INSERT INTO peer_addrs(endpoint_id, addr, last_seen_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT(endpoint_id, addr) DO UPDATE SET last_seen_ms = excluded.last_seen_ms",
            rusqlite::params![peer.to_string(), addr, now_ms()],
        )?;
        Ok(())
    }

    /// Every address known for every other roster member (roster and local memory).
    pub fn peer_addresses(&self) -> Result<Vec<(DeviceId, Vec<String>)>, NodeError> {
        let me = self.device_id();
        let mut out = Vec::new();
        for (id, d) in self.store.devices() {
            if id == me || d.revoked {
                continue;
            }
            let mut addrs = d.addrs.clone();
            let mut stmt = self
                .db
                .prepare_cached("SELECT addr FROM peer_addrs WHERE endpoint_id = ?1 ORDER BY last_seen_ms DESC LIMIT 4")?;
            for a in stmt.query_map([id.to_string()], |r| r.get::<_, String>(0))? {
                let a = a?;
                if !addrs.contains(&a) {
                    addrs.push(a);
                }
            }
            out.push((id, addrs));
        }
        Ok(out)
    }

    /// Creates the data directory of a device that joined `store` (the documents arrive
    /// by sync). `identity` must already be stored in `dir`.
    pub fn init_joined(dir: &Path, store: StoreId, till_code: &str) -> Result<Node, NodeError> {
        Node::init_joined_keyed(dir, store, till_code, None)
    }

    /// [`Node::init_joined`] of a directory encrypted with a key the host app holds.
    pub fn init_joined_keyed(
        dir: &Path,
        store: StoreId,
        till_code: &str,
        given: Option<&crate::vault::DbKey>,
    ) -> Result<Node, NodeError> {
        let till_code = crate::node::validate_till_code(till_code)?;
        let key = crate::vault::key_for(dir, given)?;
        crate::vault::load_identity(dir, key.as_ref())?;
        let db = storage::open_db(dir, true, key.as_ref())?;
        if storage::meta_get(&db, "store_id")?.is_some() {
            return Err(NodeError::AlreadyInitialised(dir.display().to_string()));
        }
        storage::meta_set(&db, "store_id", &store.to_string())?;
        storage::meta_set(&db, "till_code", &till_code)?;
        storage::meta_set(&db, "read_tables_version", &READ_TABLES_VERSION.to_string())?;
        storage::meta_set(&db, storage::SIGNED_HISTORY, "1")?;
        drop(db);
        Node::open_with(dir, false, key.as_ref())
    }
}
