//! Head office's people: who may log in to the dashboard (`kasir-relay user add`), with
//! an argon2id hash of their password and a role per tenant ([`ApiRole`]). Logging in
//! ([`log_in`]) checks the password and mints the same HS256 token the API takes
//! ([`crate::auth`]), so a browser's session and a script's token are one thing.
//!
//! The table is read as the relay's own role only: the API's `kasir_api` role is granted
//! nothing on it.

use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sqlx::PgPool;
use uuid::Uuid;

use crate::auth::{self, ApiRole, AuthError};

/// How long a login lasts.
pub const SESSION: Duration = Duration::from_secs(12 * 3600);

/// Why a user could not be added or could not log in.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UserError {
    /// Not an e-mail address.
    #[error("{0:?} is not an e-mail address")]
    BadEmail(String),
    /// A password shorter than the minimum.
    #[error("a password has at least {MIN_PASSWORD} characters")]
    WeakPassword,
    /// The address is taken.
    #[error("{0} already has an account")]
    Taken(String),
    /// No such tenant.
    #[error("no tenant {0}")]
    NoTenant(Uuid),
    /// Wrong address or password (never saying which).
    #[error("wrong e-mail or password")]
    BadLogin,
    /// Hashing failed.
    #[error("cannot hash the password: {0}")]
    Hash(String),
    /// Minting the session's token.
    #[error(transparent)]
    Token(#[from] AuthError),
    /// PostgreSQL.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// Fewest characters in a password.
pub const MIN_PASSWORD: usize = 10;

fn normalise_email(email: &str) -> Result<String, UserError> {
    let email = email.trim().to_lowercase();
    let ok = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if ok {
        Ok(email)
    } else {
        Err(UserError::BadEmail(email))
    }
}

/// The argon2id hash of a password, with a fresh salt, in PHC format.
pub fn hash_password(password: &str) -> Result<String, UserError> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(UserError::WeakPassword);
    }
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| UserError::Hash(e.to_string()))
}

fn password_matches(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Adds a head-office user to `tenant`; their id.
pub async fn add(
    pool: &PgPool,
    tenant: Uuid,
    email: &str,
    password: &str,
    role: ApiRole,
) -> Result<Uuid, UserError> {
    let email = normalise_email(email)?;
    let password = password.to_owned();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| UserError::Hash(e.to_string()))??;
    let tenant_known: Option<Uuid> =
        sqlx::query_scalar("SELECT tenant_id FROM tenants WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_optional(pool)
            .await?;
    if tenant_known.is_none() {
        return Err(UserError::NoTenant(tenant));
    }
    let id = Uuid::now_v7();
    let inserted = sqlx::query(
        "INSERT INTO ho_users (user_id, tenant_id, email, password_hash, role)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (email) DO NOTHING",
    )
    .bind(id)
    .bind(tenant)
    .bind(&email)
    .bind(&hash)
    .bind(role.as_str())
    .execute(pool)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(UserError::Taken(email));
    }
    Ok(id)
}

/// A successful login.
#[derive(Debug, Clone)]
pub struct Login {
    /// The session's token (also the dashboard's cookie).
    pub token: String,
    /// The user's tenant.
    pub tenant: Uuid,
    /// Their role.
    pub role: ApiRole,
}

/// Checks `email` and `password`; a token for [`SESSION`] when they match. A wrong
/// address costs the same hashing as a wrong password, so timing tells nothing.
pub async fn log_in(
    pool: &PgPool,
    secret: &[u8],
    email: &str,
    password: &str,
) -> Result<Login, UserError> {
    let email = normalise_email(email).map_err(|_| UserError::BadLogin)?;
    let row: Option<(Uuid, String, String)> =
        sqlx::query_as("SELECT tenant_id, password_hash, role FROM ho_users WHERE email = $1")
            .bind(&email)
            .fetch_optional(pool)
            .await?;
    // A fixed hash for unknown addresses: the same work either way.
    const DECOY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$Kq0uSwJ+e3k4sd3X4lG9yNf2Wg9n3e2M5tC2p0s3k1A";
    let hash = row
        .as_ref()
        .map_or_else(|| DECOY.to_owned(), |(_, h, _)| h.clone());
    let password = password.to_owned();
    let matches = tokio::task::spawn_blocking(move || password_matches(&hash, &password))
        .await
        .unwrap_or(false);
    let Some((tenant, _, role)) = row.filter(|_| matches) else {
        return Err(UserError::BadLogin);
    };
    let role: ApiRole = role.parse().map_err(|_| UserError::BadLogin)?;
    let token = auth::mint(secret, tenant, role, SESSION)?;
    Ok(Login {
        token,
        tenant,
        role,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_lowercased_and_checked() {
        assert_eq!(normalise_email(" Ani@Toko.ID ").unwrap(), "ani@toko.id");
        for bad in ["", "ani", "ani@toko", "@toko.id", "a ni@toko.id"] {
            assert!(normalise_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_hash_and_verify() {
        assert!(matches!(
            hash_password("pendek"),
            Err(UserError::WeakPassword)
        ));
        let hash = hash_password("rahasia-kantor-1").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(password_matches(&hash, "rahasia-kantor-1"));
        assert!(!password_matches(&hash, "rahasia-kantor-2"));
        assert!(!password_matches("not a hash", "x"));
    }
}
