//! Twirp transport for `livekit.RoomService`: routing, decoding, and the RPC handlers.
//!
//! Every call goes through [`handle`]: method and path → content type → body (size-capped) →
//! decode → handler → encode. Handlers live in [`room_service`] and all look alike: claims →
//! grant check → limits → one registry call → proto.

pub mod codec;
pub mod error;
pub mod room_service;

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    response::{IntoResponse, Response},
};
use http_body_util::{BodyExt as _, Limited};

use self::{
    codec::{Encoding, decode, encode},
    error::TwirpError,
};
use crate::{app::AppState, auth::Claims};

/// Path prefix of the service.
pub const PREFIX: &str = "/twirp/livekit.RoomService/";

/// Handles every request under `/twirp/`.
pub async fn handle(State(app): State<Arc<AppState>>, req: Request) -> Response {
    // Everything up to the body is read from borrowed parts of the request (no copies on the
    // way to a handler); only refusals build owned strings.
    let routed = {
        let method = req.method().as_str();
        // `//twirp/…` (a base URL with a trailing slash) is served as `/twirp/…`, as LiveKit does.
        let full = req.uri().path();
        let path = full.strip_prefix('/').filter(|p| p.starts_with('/')).unwrap_or(full);
        route(&req, method, path)
    };
    let (rpc_fn, encoding) = match routed {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let claims = req.extensions().get::<Arc<Claims>>().cloned();

    // The declared length was already checked by the body-limit layer; this catches bodies
    // that lie about it or stream without one.
    let limit = match app.config.limit.max_api_request_body_size {
        0 => usize::MAX, // 0 means unlimited, as LiveKit
        n => usize::try_from(n).unwrap_or(usize::MAX),
    };
    let body = match Limited::new(req.into_body(), limit).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            tracing::debug!(error = %e, "request body unreadable");
            return TwirpError::malformed(match encoding {
                Encoding::Protobuf => "failed to read request body",
                Encoding::Json => "the json request could not be decoded",
            })
            .into_response();
        }
    };
    let ctx = room_service::Call { app: &app, claims: claims.as_deref() };
    rpc_fn(&ctx, encoding, &body)
}

/// The handler and encoding for a request to `path`, or the Twirp refusal.
fn route(req: &Request, method: &str, path: &str) -> Result<(room_service::Rpc, Encoding), TwirpError> {
    if method != "POST" {
        return Err(TwirpError::bad_route(
            format!("unsupported method {method:?} (only POST is allowed)"),
            method,
            path,
        ));
    }
    let no_handler = || TwirpError::bad_route(format!("no handler for path {path:?}"), method, path);
    let rpc = path.strip_prefix(PREFIX).filter(|m| !m.contains('/')).ok_or_else(no_handler)?;
    let rpc_fn = room_service::route(rpc).ok_or_else(no_handler)?;
    let encoding = codec::encoding_of(req.headers(), method, path)?;
    tracing::Span::current().record("rpc", rpc);
    Ok((rpc_fn, encoding))
}

/// Decodes `body` as `Req`, runs `f`, encodes its answer: the shape of every RPC.
pub(crate) fn unary<Req, Resp>(
    encoding: Encoding,
    body: &[u8],
    f: impl FnOnce(Req) -> Result<Resp, TwirpError>,
) -> Response
where
    Req: prost::Message + Default + serde::de::DeserializeOwned,
    Resp: codec::Reply,
{
    match decode::<Req>(encoding, body).and_then(f) {
        Ok(resp) => encode(encoding, &resp),
        Err(e) => e.into_response(),
    }
}
