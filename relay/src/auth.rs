//! Head-office tokens: HS256 JWTs naming a tenant and a role.
//!
//! `kasir-relay token --tenant ID --role owner|analyst` mints one with [`mint`]; the HTTP
//! API ([`crate::api`]) checks every request's bearer token with [`verify`]. The secret
//! is the relay's `relay_identity.jwt_secret`, shared by every relay instance. Only HS256
//! is accepted (a token signed with another algorithm, or with none, is refused), and a
//! token must carry an `exp` that has not passed (a few seconds of leeway for clocks of
//! instances that disagree slightly).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Seconds a token stays valid past its `exp`, for relay instances whose clocks differ.
const LEEWAY_SECS: u64 = 5;

/// What a token's holder may do. Every endpoint of the API today is a read both roles
/// may make; the role is carried so that writes can be restricted to owners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiRole {
    /// The tenant's owner: everything.
    Owner,
    /// Reads reports, stock and alerts.
    Analyst,
}

impl ApiRole {
    /// The role's name as in tokens and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiRole::Owner => "owner",
            ApiRole::Analyst => "analyst",
        }
    }
}

impl fmt::Display for ApiRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ApiRole {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<ApiRole, AuthError> {
        match s {
            "owner" => Ok(ApiRole::Owner),
            "analyst" => Ok(ApiRole::Analyst),
            other => Err(AuthError::UnknownRole(other.to_owned())),
        }
    }
}

/// The claims of a head-office token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The tenant whose data the token may read (and nothing else).
    pub tenant: Uuid,
    /// What the holder may do.
    pub role: ApiRole,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Issue time, seconds since the Unix epoch.
    pub iat: i64,
}

/// Why a token could not be minted or was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// A role name other than `owner` or `analyst`.
    #[error("unknown role {0:?}: expected \"owner\" or \"analyst\"")]
    UnknownRole(String),
    /// The secret is too short to sign with (at least 32 bytes).
    #[error("token secret too short: {0} bytes, need at least 32")]
    WeakSecret(usize),
    /// The lifetime does not fit a timestamp.
    #[error("token lifetime too long")]
    TtlTooLong,
    /// The token has expired.
    #[error("token expired")]
    Expired,
    /// Bad signature, wrong algorithm, malformed token or claims.
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// The shortest secret accepted (the schema requires as much of `jwt_secret`).
pub const MIN_SECRET_LEN: usize = 32;

/// Mints a token for `tenant` with `role`, valid for `ttl` from now.
pub fn mint(
    secret: &[u8],
    tenant: Uuid,
    role: ApiRole,
    ttl: Duration,
) -> Result<String, AuthError> {
    let now = chrono::Utc::now().timestamp();
    let ttl = i64::try_from(ttl.as_secs()).map_err(|_| AuthError::TtlTooLong)?;
    let exp = now.checked_add(ttl).ok_or(AuthError::TtlTooLong)?;
    encode_claims(
        secret,
        &Claims {
            tenant,
            role,
            exp,
            iat: now,
        },
    )
}

/// Signs `claims` as they are (HS256).
fn encode_claims(secret: &[u8], claims: &Claims) -> Result<String, AuthError> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(AuthError::WeakSecret(secret.len()));
    }
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|e| AuthError::Invalid(e.to_string()))
}

/// Checks a token's signature (HS256 with `secret`, no other algorithm) and expiry, and
/// returns its claims.
pub fn verify(secret: &[u8], token: &str) -> Result<Claims, AuthError> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(AuthError::WeakSecret(secret.len()));
    }
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = LEEWAY_SECS;
    validation.validate_exp = true;
    validation.set_required_spec_claims(&["exp"]);
    jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(secret), &validation)
        .map(|data| data.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
            _ => AuthError::Invalid(e.to_string()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test";

    #[test]
    fn round_trip() {
        let tenant = Uuid::now_v7();
        let token = mint(SECRET, tenant, ApiRole::Analyst, Duration::from_secs(3600)).unwrap();
        let claims = verify(SECRET, &token).unwrap();
        assert_eq!(claims.tenant, tenant);
        assert_eq!(claims.role, ApiRole::Analyst);
        assert!(claims.exp > claims.iat);
        assert_eq!(claims.exp - claims.iat, 3600);
    }

    #[test]
    fn tampered_token_refused() {
        let token = mint(
            SECRET,
            Uuid::now_v7(),
            ApiRole::Analyst,
            Duration::from_secs(60),
        )
        .unwrap();
        // Swap the payload for one naming another tenant as owner, keeping the signature.
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let forged = Claims {
            tenant: Uuid::now_v7(),
            role: ApiRole::Owner,
            exp: chrono::Utc::now().timestamp() + 60,
            iat: chrono::Utc::now().timestamp(),
        };
        let forged_token = encode_claims(b"another secret, also 32 bytes long!!", &forged).unwrap();
        let forged_payload = forged_token.split('.').nth(1).unwrap();
        let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert!(matches!(
            verify(SECRET, &tampered),
            Err(AuthError::Invalid(_))
        ));
        // A flipped signature character.
        let mut sig = parts[2].to_owned().into_bytes();
        sig[0] = if sig[0] == b'A' { b'B' } else { b'A' };
        let bad_sig = format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            String::from_utf8(sig).unwrap()
        );
        assert!(matches!(
            verify(SECRET, &bad_sig),
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            verify(SECRET, "not.a.token"),
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(verify(SECRET, ""), Err(AuthError::Invalid(_))));
    }

    #[test]
    fn expired_refused() {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            tenant: Uuid::now_v7(),
            role: ApiRole::Owner,
            exp: now - 3600,
            iat: now - 7200,
        };
        let token = encode_claims(SECRET, &claims).unwrap();
        assert!(matches!(verify(SECRET, &token), Err(AuthError::Expired)));
        // A zero lifetime is expired once the leeway has passed; within it, still valid.
        let token = mint(SECRET, Uuid::now_v7(), ApiRole::Owner, Duration::ZERO).unwrap();
        assert!(verify(SECRET, &token).is_ok());
    }

    #[test]
    fn other_secret_refused() {
        let token = mint(
            SECRET,
            Uuid::now_v7(),
            ApiRole::Owner,
            Duration::from_secs(60),
        )
        .unwrap();
        let other = b"fedcba9876543210fedcba9876543210-other";
        assert!(matches!(verify(other, &token), Err(AuthError::Invalid(_))));
    }

    #[test]
    fn other_algorithm_refused() {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            tenant: Uuid::now_v7(),
            role: ApiRole::Owner,
            exp: now + 60,
            iat: now,
        };
        // Same secret, HS512: the header's algorithm is not trusted.
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &claims,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert!(matches!(verify(SECRET, &token), Err(AuthError::Invalid(_))));
        // An unsigned token ("alg": "none").
        // base64url of {"alg":"none","typ":"JWT"}; the payload is the HS256 token's.
        let header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";
        let signed = mint(
            SECRET,
            claims.tenant,
            ApiRole::Owner,
            Duration::from_secs(60),
        )
        .unwrap();
        let payload = signed.split('.').nth(1).unwrap();
        let unsigned = format!("{header}.{payload}.");
        assert!(matches!(
            verify(SECRET, &unsigned),
            Err(AuthError::Invalid(_))
        ));
    }

    #[test]
    fn weak_secret_refused() {
        assert!(matches!(
            mint(
                b"short",
                Uuid::now_v7(),
                ApiRole::Owner,
                Duration::from_secs(60)
            ),
            Err(AuthError::WeakSecret(5))
        ));
    }

    #[test]
    fn roles_parse() {
        assert_eq!("owner".parse::<ApiRole>().unwrap(), ApiRole::Owner);
        assert_eq!("analyst".parse::<ApiRole>().unwrap(), ApiRole::Analyst);
        let err = "admin".parse::<ApiRole>().unwrap_err();
        assert!(err.to_string().contains("owner"), "{err}");
        assert_eq!(
            serde_json::to_string(&ApiRole::Analyst).unwrap(),
            "\"analyst\""
        );
        assert_eq!(ApiRole::Owner.to_string(), "owner");
    }
}
