//! Token verification: HS256, the secret chosen by `iss`, `exp` required, 60 s leeway.
//!
//! Pure function of (token, keys, now). Time checks use the injected clock rather than the JWT
//! library's own, so tests can pin "now".

use std::collections::HashMap;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey};

use super::claims::{Claims, RawClaims};
use crate::config::Keys;

/// Clock-skew tolerance applied to `exp` and `nbf`, as LiveKit.
pub const LEEWAY_SECS: i64 = 60;

/// Why a token was refused. The `Display` text is what the 401 body says after
/// `invalid authorization token: `, worded like LiveKit's (golang-jwt) messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Not three base64url JSON parts.
    #[error("token is malformed")]
    Malformed,
    /// `iss` names no configured key.
    #[error("invalid API key")]
    UnknownApiKey,
    /// Signature does not match the key's secret.
    #[error("token signature is invalid: signature is invalid")]
    BadSignature,
    /// Not HS256.
    #[error("token signature is invalid: signing method {0} is invalid")]
    WrongAlgorithm(String),
    /// No `exp` claim.
    #[error("token has invalid claims: token is missing required claim: exp claim is required")]
    MissingExpiry,
    /// `exp` + leeway is in the past.
    #[error("token has invalid claims: token is expired")]
    Expired,
    /// `nbf` − leeway is in the future.
    #[error("token has invalid claims: token is not valid yet")]
    NotYetValid,
    /// `Authorization` header without the `Bearer ` prefix.
    #[error("invalid authorization header. Must start with Bearer ")]
    BadHeader,
}

impl AuthError {
    /// The plain-text body LiveKit answers with (HTTP 401).
    pub fn http_body(&self) -> String {
        match self {
            Self::Malformed => "invalid authorization token".into(),
            Self::UnknownApiKey | Self::BadHeader => self.to_string(),
            other => format!("invalid authorization token: {other}"),
        }
    }
}

/// Verifies tokens against the configured keys.
///
/// Holds one prepared HMAC key per API key. A verification decodes the payload once, finds the
/// key by `iss`, and checks the signature over the token's first two parts.
#[derive(Clone)]
pub struct TokenVerifier {
    keys: HashMap<String, DecodingKey>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.keys.keys()).finish()
    }
}

/// The only header field we read.
#[derive(serde::Deserialize)]
struct JwtHeader {
    #[serde(default)]
    alg: String,
}

impl TokenVerifier {
    /// A verifier accepting tokens signed by any of `keys`.
    pub fn new(keys: Keys) -> Self {
        let keys = keys
            .iter()
            .filter_map(|(k, s)| DecodingKey::from_secret(s.as_bytes()).ok().map(|d| (k.to_string(), d)))
            .collect();
        Self { keys }
    }

    /// Verifies `token` at Unix time `now_secs` and returns its claims.
    pub fn verify(&self, token: &str, now_secs: i64) -> Result<Claims, AuthError> {
        // Step 1: split and decode, to learn which key signed it (nothing is trusted yet).
        let (signed, signature) = token.rsplit_once('.').ok_or(AuthError::Malformed)?;
        let (header, payload) = signed.split_once('.').ok_or(AuthError::Malformed)?;
        if payload.contains('.') {
            return Err(AuthError::Malformed);
        }
        let header: JwtHeader = decode_part(header)?;
        let raw: RawClaims = decode_part(payload)?;
        let api_key = raw.iss.clone().unwrap_or_default();
        let key = self.keys.get(&api_key).ok_or(AuthError::UnknownApiKey)?;

        // Step 2: algorithm and signature.
        if header.alg != "HS256" {
            return Err(AuthError::WrongAlgorithm(header.alg));
        }
        match jsonwebtoken::crypto::verify(signature, signed.as_bytes(), key, Algorithm::HS256) {
            Ok(true) => {}
            _ => return Err(AuthError::BadSignature),
        }

        // Step 3: time, with leeway.
        let exp = raw.exp.ok_or(AuthError::MissingExpiry)?;
        if now_secs > exp.saturating_add(LEEWAY_SECS) {
            return Err(AuthError::Expired);
        }
        let nbf = raw.nbf.unwrap_or(0);
        if nbf.saturating_sub(LEEWAY_SECS) > now_secs {
            return Err(AuthError::NotYetValid);
        }

        let sub = raw.sub.unwrap_or_default();
        let identity = if sub.is_empty() { raw.jti.unwrap_or_default() } else { sub };
        Ok(Claims {
            api_key,
            identity,
            name: raw.name.unwrap_or_default(),
            kind: raw.kind.unwrap_or_default(),
            metadata: raw.metadata.unwrap_or_default(),
            attributes: raw.attributes.unwrap_or_default(),
            video: raw.video,
            expires_at: exp,
            not_before: nbf,
            issued_at: raw.iat.unwrap_or(0),
            sha256: raw.sha256.unwrap_or_default(),
        })
    }
}

/// Decodes one base64url JSON part of a token.
fn decode_part<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, AuthError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| AuthError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| AuthError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{VideoGrant, mint::TokenMinter};

    const NOW: i64 = 1_800_000_000;

    fn keys() -> Keys {
        Keys::new([("k1".to_string(), "s1-secret".to_string()), ("k2".to_string(), "s2-secret".to_string())])
    }

    fn token(f: impl FnOnce(&mut RawClaims)) -> String {
        let mut c =
            RawClaims { iss: Some("k1".into()), sub: Some("alice".into()), exp: Some(NOW + 600), ..Default::default() };
        f(&mut c);
        TokenMinter::sign(&c, "s1-secret").unwrap()
    }

    #[test]
    fn accepts_a_good_token_and_reads_grants() {
        let t = token(|c| {
            c.name = Some("Alice".into());
            c.video = Some(VideoGrant { room_admin: true, room: "r".into(), ..Default::default() });
        });
        let claims = TokenVerifier::new(keys()).verify(&t, NOW).unwrap();
        assert_eq!(claims.identity, "alice");
        assert_eq!(claims.api_key, "k1");
        assert_eq!(claims.name, "Alice");
        assert!(claims.video().room_admin);
        assert_eq!(claims.video().room, "r");
    }

    #[test]
    fn identity_falls_back_to_jti_when_sub_is_empty() {
        // The Python SDK writes `"sub": ""`; the Node SDK writes no `sub` at all.
        let t = token(|c| {
            c.sub = Some(String::new());
            c.jti = Some("from-jti".into());
        });
        assert_eq!(TokenVerifier::new(keys()).verify(&t, NOW).unwrap().identity, "from-jti");
        let t = token(|c| c.sub = None);
        assert_eq!(TokenVerifier::new(keys()).verify(&t, NOW).unwrap().identity, "");
    }

    #[test]
    fn expiry_is_required_and_has_sixty_seconds_leeway() {
        let v = TokenVerifier::new(keys());
        assert_eq!(v.verify(&token(|c| c.exp = None), NOW), Err(AuthError::MissingExpiry));
        assert!(v.verify(&token(|c| c.exp = Some(NOW - 60)), NOW).is_ok());
        assert_eq!(v.verify(&token(|c| c.exp = Some(NOW - 61)), NOW), Err(AuthError::Expired));
        assert!(v.verify(&token(|c| c.nbf = Some(NOW + 60)), NOW).is_ok());
        assert_eq!(v.verify(&token(|c| c.nbf = Some(NOW + 61)), NOW), Err(AuthError::NotYetValid));
    }

    #[test]
    fn fractional_times_are_accepted_as_in_golang_jwt() {
        let body = serde_json::json!({"iss": "k1", "sub": "a", "exp": (NOW + 60) as f64 + 0.5, "nbf": 1.5e9});
        let key = jsonwebtoken::EncodingKey::from_secret(b"s1-secret").unwrap();
        let t = jsonwebtoken::encode(&jsonwebtoken::Header::new(Algorithm::HS256), &body, &key).unwrap();
        let claims = TokenVerifier::new(keys()).verify(&t, NOW).unwrap();
        assert_eq!((claims.expires_at, claims.not_before), (NOW + 60, 1_500_000_000));
    }

    #[test]
    fn refuses_wrong_key_secret_and_algorithm() {
        let v = TokenVerifier::new(keys());
        assert_eq!(v.verify(&token(|c| c.iss = Some("nope".into())), NOW), Err(AuthError::UnknownApiKey));
        assert_eq!(v.verify(&token(|c| c.iss = None), NOW), Err(AuthError::UnknownApiKey));
        // Signed by k1's secret but claiming k2.
        assert_eq!(v.verify(&token(|c| c.iss = Some("k2".into())), NOW), Err(AuthError::BadSignature));
        let c = RawClaims { iss: Some("k1".into()), exp: Some(NOW + 60), ..Default::default() };
        let hs512 = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS512),
            &c,
            &jsonwebtoken::EncodingKey::from_secret(b"s1-secret").unwrap(),
        )
        .unwrap();
        assert_eq!(v.verify(&hs512, NOW), Err(AuthError::WrongAlgorithm("HS512".into())));
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let v = TokenVerifier::new(keys());
        for t in ["", "abc", "a.b.c", "a.b.c.d", "..", "eyJhbGciOiJIUzI1NiJ9.!!!.x", "\u{0}.\u{1}.\u{2}"] {
            assert_eq!(v.verify(t, NOW), Err(AuthError::Malformed), "{t:?}");
        }
        // Valid payload JSON but a truncated signature.
        let mut t = token(|_| {});
        t.truncate(t.len() - 4);
        assert_eq!(v.verify(&t, NOW), Err(AuthError::BadSignature));
    }

    #[test]
    fn http_bodies_match_livekit() {
        assert_eq!(AuthError::Malformed.http_body(), "invalid authorization token");
        assert_eq!(AuthError::UnknownApiKey.http_body(), "invalid API key");
        assert_eq!(
            AuthError::Expired.http_body(),
            "invalid authorization token: token has invalid claims: token is expired"
        );
        assert_eq!(AuthError::BadHeader.http_body(), "invalid authorization header. Must start with Bearer ");
    }
}
