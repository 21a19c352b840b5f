//! The authentication middleware: finds the token, verifies it, stores [`Claims`].
//!
//! Runs for every path before routing, as LiveKit's does. A request without a token passes
//! through with no claims (each RPC then refuses it); a bad token is answered here with
//! LiveKit's plain-text 401.

use std::sync::Arc;

use axum::{
    extract::Request,
    middleware::Next,
    response::{IntoResponse, Response},
};
use http::{StatusCode, header};

use super::{AuthError, Claims, TokenVerifier};
use crate::clock::SharedClock;

/// What the middleware needs: the verifier and the clock.
#[derive(Clone)]
pub struct AuthState {
    /// Verifies against the configured keys.
    pub verifier: Arc<TokenVerifier>,
    /// Wall clock for `exp`/`nbf`.
    pub clock: SharedClock,
}

/// Extracts the token: `Authorization: Bearer …`, else the `access_token` query parameter.
///
/// Empty values count as absent (LiveKit checks for `""`), so the request goes on without
/// claims and the RPC answers `permissions denied` rather than a token error.
pub fn find_token(req: &Request) -> Result<Option<String>, AuthError> {
    if let Some(value) = req.headers().get(header::AUTHORIZATION).filter(|v| !v.is_empty()) {
        let text = value.to_str().map_err(|_| AuthError::BadHeader)?;
        return text.strip_prefix("Bearer ").map(|t| Some(t.to_string())).ok_or(AuthError::BadHeader);
    }
    let query = req.uri().query().unwrap_or("");
    Ok(query
        .split('&')
        .find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == "access_token").then(|| percent_decode(v))
        })
        .filter(|t| !t.is_empty()))
}

/// Minimal `application/x-www-form-urlencoded` value decoding (tokens are URL-safe anyway).
/// Invalid escapes are kept as they are.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[i], escaped) {
            (_, Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (b, None) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Authenticates `req`, then runs the rest of the stack (called by the HTTP gate middleware).
pub async fn authenticate(state: &AuthState, mut req: Request, next: Next) -> Response {
    let token = match find_token(&req) {
        Ok(t) => t,
        Err(e) => return unauthorized(&e),
    };
    if let Some(token) = token {
        match state.verifier.verify(&token, state.clock.now_secs()) {
            Ok(claims) => {
                req.extensions_mut().insert(Arc::new(claims));
            }
            Err(e) => {
                tracing::debug!(error = %e, "refused access token");
                return unauthorized(&e);
            }
        }
    }
    next.run(req).await
}

/// Claims of the current request, if a valid token came with it.
pub type MaybeClaims = Option<Arc<Claims>>;

fn unauthorized(e: &AuthError) -> Response {
    (StatusCode::UNAUTHORIZED, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], e.http_body()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(uri: &str, auth: Option<&str>) -> Request {
        let mut b = http::Request::builder().uri(uri);
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        b.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn header_wins_and_must_say_bearer() {
        assert_eq!(find_token(&req("/x", Some("Bearer abc"))).unwrap().as_deref(), Some("abc"));
        assert_eq!(find_token(&req("/x?access_token=q", Some("Bearer abc"))).unwrap().as_deref(), Some("abc"));
        assert_eq!(find_token(&req("/x", Some("bearer abc"))), Err(AuthError::BadHeader));
        assert_eq!(find_token(&req("/x", Some("Basic abc"))), Err(AuthError::BadHeader));
    }

    #[test]
    fn query_parameter_is_the_fallback() {
        assert_eq!(find_token(&req("/rtc?x=1&access_token=a.b%2Ec", None)).unwrap().as_deref(), Some("a.b.c"));
        assert_eq!(find_token(&req("/rtc?x=1", None)).unwrap(), None);
        assert_eq!(find_token(&req("/rtc", None)).unwrap(), None);
        assert_eq!(find_token(&req("/rtc?access_token=%zz%4", None)).unwrap().as_deref(), Some("%zz%4"));
        // Empty is absent, in the header and in the query.
        assert_eq!(find_token(&req("/rtc?access_token=", None)).unwrap(), None);
        assert_eq!(find_token(&req("/rtc?access_token=q", Some(""))).unwrap().as_deref(), Some("q"));
    }
}
