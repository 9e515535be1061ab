//! People at the till: users with PINs, login sessions, and the device token.
//!
//! - **Users** live in the store document, so every till knows them and anyone can log
//!   in anywhere; only owner and manager devices may write them (the trust rules refuse
//!   anything else, `kasir_sync::trust`). A PIN is kept only as its argon2id hash, with a
//!   salt of its own, in PHC format; the PIN itself is never stored or logged.
//! - **Sessions** are this till's own (SQLite `sessions`, never synced): a bearer token
//!   of 32 random bytes, of which only the blake3 hash is stored, bound to a user and
//!   expiring after [`SESSION_TTL_MS`]. A session stops working as soon as its user is
//!   disabled on this till, which a disable made on any till reaches by sync.
//! - The **device token** (`device.token` in the data directory, mode 0600) acts with
//!   the device's own role, for scripts and the `kasir` command: whoever can read the
//!   data directory already owns the device.
//! - **Lockout**: [`MAX_PIN_FAILURES`] wrong PINs in a row lock a user out on this till
//!   for [`LOCKOUT_MS`].

use std::path::Path;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use kasir_crdt::store::{Role, User, UserRole};
use kasir_sync::Membership;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::error::NodeError;
use crate::node::Node;
use kasir_sync::now_ms;

/// The device token's file in the data directory.
pub const DEVICE_TOKEN_FILE: &str = "device.token";
/// How long a login session lasts: one long shift.
pub const SESSION_TTL_MS: i64 = 12 * 3600 * 1000;
/// How long a one-time login link works.
pub const LOGIN_LINK_TTL_MS: i64 = 24 * 3600 * 1000;
/// Wrong PINs in a row before a user is locked out on this till.
pub const MAX_PIN_FAILURES: i64 = 5;
/// How long a lockout lasts.
pub const LOCKOUT_MS: i64 = 5 * 60 * 1000;

/// Who makes a request: a logged-in user, or the device itself (its token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Principal {
    /// A user logged in with a PIN.
    User {
        /// The user's id.
        user_id: String,
        /// Their name.
        name: String,
        /// Their role.
        role: UserRole,
    },
    /// The device token: the device's own role.
    Device {
        /// What the device's roster role allows.
        role: UserRole,
    },
}

impl Principal {
    /// What this principal may do.
    pub fn role(&self) -> UserRole {
        match self {
            Principal::User { role, .. } | Principal::Device { role } => *role,
        }
    }

    /// The user's name, when a person is logged in.
    pub fn user_name(&self) -> Option<&str> {
        match self {
            Principal::User { name, .. } => Some(name),
            Principal::Device { .. } => None,
        }
    }

    /// `(user id, name)` when a person is logged in (what a sale records).
    pub fn user_ref(&self) -> Option<(&str, &str)> {
        match self {
            Principal::User { user_id, name, .. } => Some((user_id, name)),
            Principal::Device { .. } => None,
        }
    }

    /// The user's id, when a person is logged in.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Principal::User { user_id, .. } => Some(user_id),
            Principal::Device { .. } => None,
        }
    }
}

/// What a person at the till may ask for; who may do it is [`PERMISSIONS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Ring up a sale.
    Sell,
    /// Open a cash shift.
    OpenShift,
    /// Void a whole sale.
    Void,
    /// Refund part of a sale.
    Refund,
    /// A discount above the store's threshold.
    BigDiscount,
    /// Sell at another price than the catalog's.
    PriceOverride,
    /// Print a receipt again.
    Reprint,
    /// Open the cash drawer without a sale.
    OpenDrawer,
    /// Adjust stock or record a stocktake.
    StockAdjust,
    /// Add, disable or re-PIN users.
    ManageUsers,
    /// Add or change products and prices.
    EditCatalog,
    /// Change the store's profile and tax settings, and this till's printer.
    EditSettings,
    /// Invite devices into the store, cancel invites, revoke devices.
    ManageDevices,
}

/// The lowest role that may do each action without an approval: the permission table,
/// kept as data (a role below it needs an `approval` from a user at or above it).
pub const PERMISSIONS: &[(Action, UserRole)] = &[
    (Action::Sell, UserRole::Cashier),
    (Action::OpenShift, UserRole::Cashier),
    (Action::Void, UserRole::Supervisor),
    (Action::Refund, UserRole::Supervisor),
    (Action::BigDiscount, UserRole::Supervisor),
    (Action::PriceOverride, UserRole::Supervisor),
    (Action::Reprint, UserRole::Supervisor),
    (Action::OpenDrawer, UserRole::Supervisor),
    (Action::StockAdjust, UserRole::Supervisor),
    (Action::ManageUsers, UserRole::Manager),
    (Action::EditCatalog, UserRole::Manager),
    (Action::EditSettings, UserRole::Manager),
    (Action::ManageDevices, UserRole::Manager),
];

/// The lowest role that may do `action` (the owner, for an action missing from the
/// table: nothing is allowed by omission).
pub fn required_role(action: Action) -> UserRole {
    PERMISSIONS
        .iter()
        .find(|(a, _)| *a == action)
        .map_or(UserRole::Owner, |(_, r)| *r)
}

/// A PIN-backed approval carried in a request: a user at or above the action's role.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Approval {
    /// The approver's name…
    #[serde(default)]
    pub name: Option<String>,
    /// …or id.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Their PIN.
    pub pin: String,
}

impl Approval {
    /// An approval typed into a form: none when no approver was named.
    pub fn named(name: &str, pin: &str) -> Option<Approval> {
        let name = name.trim();
        (!name.is_empty()).then(|| Approval {
            name: Some(name.to_owned()),
            user_id: None,
            pin: pin.to_owned(),
        })
    }
}

/// A user as the API shows it (never with the PIN hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// The user's id.
    pub user_id: String,
    /// Their name.
    pub name: String,
    /// Their role.
    pub role: UserRole,
    /// Whether they may log in.
    pub active: bool,
}

impl UserInfo {
    fn of(user_id: &str, user: &User) -> UserInfo {
        UserInfo {
            user_id: user_id.to_owned(),
            name: user.name.clone(),
            role: user.role,
            active: user.active,
        }
    }
}

/// A new login session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginSession {
    /// The bearer token (shown once; only its hash is kept).
    pub token: String,
    /// Who logged in.
    pub user: UserInfo,
}

/// Checks that a PIN is 4 to 12 digits.
pub fn validate_pin(pin: &str) -> Result<(), NodeError> {
    if (4..=12).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(NodeError::Invalid("a PIN is 4 to 12 digits".into()))
    }
}

/// The argon2id hash of a PIN, with a fresh salt, in PHC format.
pub fn hash_pin(pin: &str) -> Result<String, NodeError> {
    validate_pin(pin)?;
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(pin.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| NodeError::Invalid(format!("cannot hash the PIN: {e}")))
}

/// Whether `pin` matches a stored hash (a hash that does not parse matches nothing).
pub fn pin_matches(hash: &str, pin: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(pin.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

fn token_hash(token: &str) -> [u8; 32] {
    *blake3::hash(token.as_bytes()).as_bytes()
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    format!("kt_{}", data_encoding::BASE64URL_NOPAD.encode(&bytes))
}

fn validate_name(name: &str) -> Result<String, NodeError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 40 || name.chars().any(char::is_control) {
        return Err(NodeError::Invalid(
            "a user's name is 1 to 40 printable characters".into(),
        ));
    }
    Ok(name.to_owned())
}

/// The device token of `dir`, created (mode 0600) if the directory has none.
pub(crate) fn load_or_create_device_token(dir: &Path) -> Result<String, NodeError> {
    let path = dir.join(DEVICE_TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(t) if t.trim().starts_with("kt_") => return Ok(t.trim().to_owned()),
        Ok(_) => {
            return Err(NodeError::Corrupt(format!(
                "{} is not a device token",
                path.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(NodeError::io(format!("reading {}", path.display()))(e)),
    }
    let token = new_token();
    crate::storage::write_file_atomic(&path, token.as_bytes(), true)
        .map_err(NodeError::io(format!("writing {}", path.display())))?;
    Ok(token)
}

/// Reads the device token of `dir` without creating one (the `kasir` command, talking
/// to the daemon that holds the directory).
pub fn read_device_token(dir: &Path) -> Option<String> {
    std::fs::read_to_string(dir.join(DEVICE_TOKEN_FILE))
        .ok()
        .map(|t| t.trim().to_owned())
}

impl Node {
    /// The device token, created if the directory has none, with its hash registered;
    /// runs whenever the node opens (a read only, once the token is registered).
    pub(crate) fn ensure_device_token(&self) -> Result<String, NodeError> {
        let token = load_or_create_device_token(&self.dir)?;
        let hash = token_hash(&token);
        let known: Option<i64> = self
            .db
            .query_row(
                "SELECT 1 FROM sessions WHERE token_hash = ?1",
                params![hash.as_slice()],
                |r| r.get(0),
            )
            .optional()?;
        if known.is_none() {
            self.db.execute(
                "INSERT INTO sessions(token_hash, user_id, created_at_ms, expires_at_ms)
                 VALUES (?1, NULL, ?2, NULL)",
                params![hash.as_slice(), now_ms()],
            )?;
        }
        Ok(token)
    }

    /// The device token (`kasir token`).
    pub fn device_token(&self) -> Result<String, NodeError> {
        self.ensure_device_token()
    }

    /// Creates a store in `dir` with this device as its owner till and, when `owner`
    /// (name, PIN) is given, its owner user: `kasir init` and the first-run page. The
    /// PIN is checked before anything is written, so a bad one leaves no half-made store.
    pub fn create_store(
        dir: &std::path::Path,
        opts: &crate::api::InitOptions,
        owner: Option<(&str, &str)>,
    ) -> Result<(Node, Option<UserInfo>), NodeError> {
        if let Some((name, pin)) = owner {
            validate_pin(pin)?;
            if name.trim().is_empty() {
                return Err(NodeError::Invalid("the owner needs a name".into()));
            }
        }
        let mut node = Node::init(dir, opts)?;
        let user = match owner {
            Some((name, pin)) => {
                let by = node.device_principal();
                Some(node.add_user(&by, name.trim(), UserRole::Owner, pin)?)
            }
            None => None,
        };
        Ok((node, user))
    }

    /// What the device token may do: the device's roster role as a user role.
    pub fn device_principal(&self) -> Principal {
        let role = match self.membership(self.device_id()) {
            Membership::Member(Role::Owner) => UserRole::Owner,
            Membership::Member(Role::Manager) => UserRole::Manager,
            _ => UserRole::Cashier,
        };
        Principal::Device { role }
    }

    /// Every user, by name.
    pub fn users(&self) -> Vec<UserInfo> {
        let mut users: Vec<UserInfo> = self
            .store
            .users()
            .iter()
            .map(|(id, u)| UserInfo::of(id, u))
            .collect();
        users.sort_by(|a, b| a.name.cmp(&b.name).then(a.user_id.cmp(&b.user_id)));
        users
    }

    fn require_people_admin(&self, by: &Principal, role: UserRole) -> Result<(), NodeError> {
        self.require_admin("manage users")?;
        if by.role() < UserRole::Manager {
            return Err(NodeError::Forbidden(
                "only a manager or owner may manage users".into(),
            ));
        }
        if role > by.role() {
            return Err(NodeError::Forbidden(format!(
                "a {} may not manage an {}",
                by.role().as_str(),
                role.as_str()
            )));
        }
        Ok(())
    }

    /// Adds a user (`kasir user add`): a manager or owner, on an owner or manager till;
    /// nobody may add a user above their own role.
    pub fn add_user(
        &mut self,
        by: &Principal,
        name: &str,
        role: UserRole,
        pin: &str,
    ) -> Result<UserInfo, NodeError> {
        self.require_people_admin(by, role)?;
        let name = validate_name(name)?;
        let taken = self
            .store
            .users()
            .iter()
            .any(|(_, u)| u.active && u.name.to_lowercase() == name.to_lowercase());
        if taken {
            return Err(NodeError::Conflict(format!(
                "an active user is already named {name}"
            )));
        }
        let user_id = uuid::Uuid::now_v7().to_string();
        let user = User {
            name,
            role,
            pin_hash: hash_pin(pin)?,
            active: true,
            created_at_ms: now_ms(),
            created_by: by
                .user_id()
                .map_or_else(|| self.device_id().to_string(), str::to_owned),
        };
        let now = now_ms();
        self.write_store(|s| s.put_user(&user_id, &user, now))?;
        tracing::info!(%user_id, role = role.as_str(), "added a user");
        self.record_audit("user_add", by.user_name(), Some(&user_id), None)?;
        Ok(UserInfo::of(&user_id, &user))
    }

    fn user_by_id(&self, user_id: &str) -> Result<User, NodeError> {
        self.store
            .user(user_id)?
            .ok_or_else(|| NodeError::NotFound(format!("user {user_id}")))
    }

    /// Disables a user: they cannot log in, and their sessions stop working on every
    /// till once it has synced.
    pub fn disable_user(&mut self, by: &Principal, user_id: &str) -> Result<(), NodeError> {
        let mut user = self.user_by_id(user_id)?;
        self.require_people_admin(by, user.role)?;
        if !user.active {
            return Ok(());
        }
        if by.user_id() == Some(user_id) {
            return Err(NodeError::Conflict(
                "you cannot disable yourself: ask another manager or the owner".into(),
            ));
        }
        let other_owner = self
            .users()
            .iter()
            .any(|u| u.active && u.role == UserRole::Owner && u.user_id != user_id);
        if user.role == UserRole::Owner && !other_owner {
            return Err(NodeError::Conflict(
                "the store's last owner cannot be disabled".into(),
            ));
        }
        user.active = false;
        let now = now_ms();
        self.write_store(|s| s.put_user(user_id, &user, now))?;
        self.db
            .execute("DELETE FROM sessions WHERE user_id = ?1", params![user_id])?;
        tracing::info!(%user_id, "disabled a user");
        self.record_audit("user_disable", by.user_name(), Some(user_id), None)?;
        Ok(())
    }

    /// Sets a user's PIN: the user themself, or a manager or owner above them.
    pub fn set_pin(&mut self, by: &Principal, user_id: &str, pin: &str) -> Result<(), NodeError> {
        let mut user = self.user_by_id(user_id)?;
        if by.user_id() != Some(user_id) {
            self.require_people_admin(by, user.role)?;
        } else {
            self.require_admin("change a PIN")?;
        }
        user.pin_hash = hash_pin(pin)?;
        let now = now_ms();
        self.write_store(|s| s.put_user(user_id, &user, now))?;
        self.db.execute(
            "DELETE FROM pin_failures WHERE user_id = ?1",
            params![user_id],
        )?;
        self.record_audit("pin_change", by.user_name(), Some(user_id), None)?;
        Ok(())
    }

    /// The active user named `name` (case-insensitive) or with id `user_id`.
    fn find_user(
        &self,
        name: Option<&str>,
        user_id: Option<&str>,
    ) -> Result<(String, User), NodeError> {
        let found = self
            .store
            .users()
            .into_iter()
            .find(|(id, u)| match (user_id, name) {
                (Some(want), _) => id == want,
                (None, Some(want)) => {
                    u.active && u.name.to_lowercase() == want.trim().to_lowercase()
                }
                (None, None) => false,
            });
        match found {
            Some(found) => Ok(found),
            None if name.is_none() && user_id.is_none() => {
                Err(NodeError::Invalid("name or user_id is required".into()))
            }
            // The same answer as a wrong PIN: a login does not tell who exists.
            None => Err(NodeError::BadPin),
        }
    }

    /// Checks a user's PIN, counting failures and locking the user out after
    /// [`MAX_PIN_FAILURES`]. Returns the user on success.
    pub fn check_pin(
        &mut self,
        name: Option<&str>,
        user_id: Option<&str>,
        pin: &str,
    ) -> Result<UserInfo, NodeError> {
        self.check_pin_for(name, user_id, pin, "login_failed")
    }

    /// [`Node::check_pin`], auditing a failure of a known user as `failed_action`.
    fn check_pin_for(
        &mut self,
        name: Option<&str>,
        user_id: Option<&str>,
        pin: &str,
        failed_action: &str,
    ) -> Result<UserInfo, NodeError> {
        let (id, user) = self.find_user(name, user_id)?;
        let now = now_ms();
        let locked_until: i64 = self
            .db
            .query_row(
                "SELECT locked_until_ms FROM pin_failures WHERE user_id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0);
        if locked_until > now {
            return Err(NodeError::LockedOut {
                until_ms: locked_until,
            });
        }
        if !user.active || !pin_matches(&user.pin_hash, pin) {
            let failures: i64 = self.db.query_row(
                "INSERT INTO pin_failures(user_id, failures, locked_until_ms) VALUES (?1, 1, 0)
                 ON CONFLICT(user_id) DO UPDATE SET failures = failures + 1
                 RETURNING failures",
                params![id],
                |r| r.get(0),
            )?;
            tracing::warn!(user_id = %id, failures, "wrong PIN");
            // Bounded by the lockout: at most MAX_PIN_FAILURES entries per user per
            // LOCKOUT_MS (a name nobody has is not recorded at all).
            self.record_audit(failed_action, Some(&user.name), Some(&id), None)?;
            if failures >= MAX_PIN_FAILURES {
                self.db.execute(
                    "UPDATE pin_failures SET failures = 0, locked_until_ms = ?2 WHERE user_id = ?1",
                    params![id, now + LOCKOUT_MS],
                )?;
                return Err(NodeError::LockedOut {
                    until_ms: now + LOCKOUT_MS,
                });
            }
            return Err(NodeError::BadPin);
        }
        self.db
            .execute("DELETE FROM pin_failures WHERE user_id = ?1", params![id])?;
        Ok(UserInfo::of(&id, &user))
    }

    /// Whether `by` may do `action`: by their own role, or with `approval` from a user
    /// whose role suffices (their PIN checked, failures counted). Returns the approver's
    /// name when one was needed.
    pub fn authorize(
        &mut self,
        by: &Principal,
        action: Action,
        approval: Option<&Approval>,
    ) -> Result<Option<String>, NodeError> {
        self.authorize_all(by, &[action], approval)
    }

    /// [`Node::authorize`] for several actions at once (a sale with a big discount and a
    /// price override): one approval by a user whose role suffices for all of them.
    pub fn authorize_all(
        &mut self,
        by: &Principal,
        actions: &[Action],
        approval: Option<&Approval>,
    ) -> Result<Option<String>, NodeError> {
        let Some(needed) = actions.iter().map(|a| required_role(*a)).max() else {
            return Ok(None);
        };
        if by.role() >= needed {
            return Ok(None);
        }
        let Some(approval) = approval else {
            return Err(NodeError::ApprovalRequired(format!(
                "this needs a {}'s approval (\"approval\": {{\"name\", \"pin\"}})",
                needed.as_str()
            )));
        };
        let approver = self.check_pin_for(
            approval.name.as_deref(),
            approval.user_id.as_deref(),
            &approval.pin,
            "approval_failed",
        )?;
        if approver.role < needed {
            return Err(NodeError::Forbidden(format!(
                "{} is a {} and may not approve this",
                approver.name,
                approver.role.as_str()
            )));
        }
        Ok(Some(approver.name))
    }

    /// What a sale request needs approval for: a line or cart discount above the
    /// store's threshold, a price other than the catalog's.
    pub fn sale_needs(&self, req: &crate::api::SaleRequest) -> Result<Vec<Action>, NodeError> {
        let mut needs = Vec::new();
        let threshold = i128::from(self.profile.discount_approval_percent);
        let mut net = 0i128;
        for item in &req.items {
            let line = self.resolve_item(item)?;
            if item.price.is_some_and(|p| p != line.listed) {
                needs.push(Action::PriceOverride);
            }
            let gross = i128::from(line.qty.times_price(line.unit_price));
            if line.discount > 0 && i128::from(line.discount) * 100 > gross * threshold {
                needs.push(Action::BigDiscount);
            }
            net += gross - i128::from(line.discount);
        }
        let cart_over = match (req.cart_discount, req.cart_discount_percent) {
            (Some(d), _) => d > 0 && i128::from(d) * 100 > net * threshold,
            (None, Some(p)) => i128::from(p) > threshold,
            (None, None) => false,
        };
        if cart_over {
            needs.push(Action::BigDiscount);
        }
        needs.sort_by_key(|a| *a as u8);
        needs.dedup();
        Ok(needs)
    }

    /// Logs a user in with their PIN (`POST /v1/sessions`): a new session token.
    pub fn login(
        &mut self,
        name: Option<&str>,
        user_id: Option<&str>,
        pin: &str,
    ) -> Result<LoginSession, NodeError> {
        let user = self.check_pin(name, user_id, pin)?;
        self.open_session(user)
    }

    /// A new session for `user` (who has just proved who they are), audited as a login.
    fn open_session(&mut self, user: UserInfo) -> Result<LoginSession, NodeError> {
        let token = new_token();
        let now = now_ms();
        self.db.execute(
            "INSERT INTO sessions(token_hash, user_id, created_at_ms, expires_at_ms)
             VALUES (?1, ?2, ?3, ?4)",
            params![
                token_hash(&token).as_slice(),
                user.user_id,
                now,
                now + SESSION_TTL_MS
            ],
        )?;
        tracing::info!(user_id = %user.user_id, "logged in");
        self.record_audit("login", Some(&user.name), Some(&user.user_id), None)?;
        Ok(LoginSession { token, user })
    }

    /// A one-time link secret logging `user_id` in on this till's app
    /// (`/ui/masuk/{secret}`), valid for [`LOGIN_LINK_TTL_MS`]: for whoever holds the data
    /// directory (the demo, a kiosk launcher), never sent over the network by Kasir.
    pub fn login_link(&mut self, user_id: &str) -> Result<String, NodeError> {
        let user = self.user_by_id(user_id)?;
        if !user.active {
            return Err(NodeError::Forbidden(format!("{} is disabled", user.name)));
        }
        let token = new_token();
        self.db.execute(
            "INSERT INTO login_links(token_hash, user_id, expires_at_ms) VALUES (?1, ?2, ?3)",
            params![
                token_hash(&token).as_slice(),
                user_id,
                now_ms() + LOGIN_LINK_TTL_MS
            ],
        )?;
        Ok(token)
    }

    /// Uses a login link (once): a new session for its user.
    pub fn redeem_login_link(&mut self, link: &str) -> Result<LoginSession, NodeError> {
        let row: Option<(String, i64)> = self
            .db
            .query_row(
                "DELETE FROM login_links WHERE token_hash = ?1 RETURNING user_id, expires_at_ms",
                params![token_hash(link).as_slice()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((user_id, _)) = row.filter(|(_, expires)| *expires > now_ms()) else {
            return Err(NodeError::Unauthenticated(
                "this login link was used or has expired".into(),
            ));
        };
        let user = self.user_by_id(&user_id)?;
        if !user.active {
            return Err(NodeError::Unauthenticated("this user was disabled".into()));
        }
        self.open_session(UserInfo::of(&user_id, &user))
    }

    /// Ends the session of `token` (a device token is not ended this way).
    pub fn logout(&mut self, token: &str) -> Result<(), NodeError> {
        let who = self.authenticate(token).ok();
        let ended = self.db.execute(
            "DELETE FROM sessions WHERE token_hash = ?1 AND user_id IS NOT NULL",
            params![token_hash(token).as_slice()],
        )?;
        if let (1, Some(who)) = (ended, who) {
            self.record_audit("logout", who.user_name(), who.user_id(), None)?;
        }
        Ok(())
    }

    /// Who `token` speaks for, or `Unauthenticated`.
    pub fn authenticate(&self, token: &str) -> Result<Principal, NodeError> {
        let row: Option<(Option<String>, Option<i64>)> = self
            .db
            .query_row(
                "SELECT user_id, expires_at_ms FROM sessions WHERE token_hash = ?1",
                params![token_hash(token).as_slice()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let unauthenticated = |why: &str| NodeError::Unauthenticated(why.to_owned());
        let Some((user_id, expires)) = row else {
            return Err(unauthenticated("unknown or ended session"));
        };
        if expires.is_some_and(|e| e <= now_ms()) {
            return Err(unauthenticated("the session expired: log in again"));
        }
        let Some(user_id) = user_id else {
            return Ok(self.device_principal());
        };
        match self.store.user(&user_id)? {
            Some(user) if user.active => Ok(Principal::User {
                user_id,
                name: user.name,
                role: user.role,
            }),
            _ => Err(unauthenticated("this user was disabled")),
        }
    }
}
