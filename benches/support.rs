//! Shared by the benchmarks: the baseline RPC handler both compare Usher against.

use axum::{
    extract::Request,
    response::{IntoResponse, Response},
};
use http::{StatusCode, header};
use usher::{
    auth::TokenVerifier,
    clock::{Clock as _, SystemClock},
};

/// What a bare server must do for any RPC: read the bearer token, verify it, answer the
/// (pre-encoded) protobuf bytes.
pub fn baseline_rpc(verifier: &TokenVerifier, req: &Request, answer: bytes::Bytes) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    match verifier.verify(token, SystemClock.now_secs()) {
        Ok(_) => ([(header::CONTENT_TYPE, "application/protobuf")], answer).into_response(),
        Err(_) => StatusCode::UNAUTHORIZED.into_response(),
    }
}
