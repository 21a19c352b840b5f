//! Minting tokens: `usher token create`, tests, and (later) refresh and webhook tokens.

use jsonwebtoken::{Algorithm, EncodingKey, Header};

use super::claims::{RawClaims, VideoGrant};

/// Signs claim sets with HS256.
#[derive(Debug, Clone, Copy)]
pub struct TokenMinter;

/// What a join/API token should say; turned into [`RawClaims`] by [`TokenMinter::mint`].
#[derive(Debug, Clone, Default)]
pub struct TokenSpec {
    /// API key id (`iss`).
    pub api_key: String,
    /// Participant identity (`sub`).
    pub identity: String,
    /// Display name.
    pub name: String,
    /// Metadata.
    pub metadata: String,
    /// Grants.
    pub video: VideoGrant,
    /// Issue time, Unix seconds (`iat`, `nbf`).
    pub now_secs: i64,
    /// Lifetime in seconds (`exp` = now + ttl).
    pub ttl_secs: i64,
}

impl TokenMinter {
    /// Signs an arbitrary claim set.
    pub fn sign(claims: &RawClaims, secret: &str) -> Result<String, jsonwebtoken::errors::Error> {
        let key = EncodingKey::from_secret(secret.as_bytes())?;
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key)
    }

    /// Builds and signs a token from a spec.
    pub fn mint(spec: &TokenSpec, secret: &str) -> Result<String, jsonwebtoken::errors::Error> {
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let claims = RawClaims {
            iss: Some(spec.api_key.clone()),
            sub: non_empty(&spec.identity),
            exp: Some(spec.now_secs.saturating_add(spec.ttl_secs)),
            nbf: Some(spec.now_secs),
            iat: Some(spec.now_secs),
            name: non_empty(&spec.name),
            metadata: non_empty(&spec.metadata),
            video: Some(spec.video.clone()),
            ..Default::default()
        };
        Self::sign(&claims, secret)
    }
}
