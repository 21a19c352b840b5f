//! Assembles the HTTP service: routes, and the layers in LiveKit's order.
//!
//! One middleware, [`front`], stands before the routes and does what LiveKit's layers do, in
//! their order: request span → CORS → panic guard → body-size limit → authentication. Each
//! tower layer costs about a microsecond per request (see BENCHMARKS.md), so they are one.
//!
//! Clients with a trailing slash in their base URL send `//twirp/…`; the Twirp handler is the
//! router's fallback and accepts both spellings, so no path rewriting layer is needed.

use std::{panic::AssertUnwindSafe, sync::Arc};

use axum::{
    Router,
    extract::{Request, State},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::any,
};
use futures_util::FutureExt as _;
use http::{HeaderValue, Method, StatusCode, header};
use tracing::Instrument as _;

use crate::{
    app::AppState,
    auth::layer::{AuthState, authenticate},
    signal, twirp,
};

/// The complete service, ready for `axum::serve`.
pub fn service(app: Arc<AppState>) -> Router {
    let gate = Gate {
        auth: AuthState { verifier: Arc::clone(&app.verifier), clock: Arc::clone(&app.clock) },
        body_limit: app.config.limit.max_api_request_body_size,
    };
    Router::new()
        .route("/", any(health))
        .merge(signal::routes())
        .fallback(fallback)
        .with_state(Arc::clone(&app))
        .layer(middleware::from_fn_with_state(gate, front))
}

/// Last line of defence: a panic is a bug, logged with its message; the caller gets Twirp's
/// `internal` error (inside the CORS layer, so browsers can read it).
fn panicked(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into());
    tracing::error!(panic = %detail, "handler panicked");
    twirp::error::TwirpError::new(twirp::error::Code::Internal, "Internal service panic").into_response()
}

/// Everything that is not `/`: Twirp (also under a doubled leading slash), else 404.
async fn fallback(state: State<Arc<AppState>>, req: Request) -> Response {
    let path = req.uri().path();
    if path.starts_with("/twirp/") || path.starts_with("//twirp/") {
        twirp::handle(state, req).await
    } else {
        not_found().await
    }
}

/// `/`: the health check load balancers and SDK tests use (any method, as LiveKit).
async fn health() -> &'static str {
    "OK"
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "404 page not found\n")
        .into_response()
}

/// Methods a CORS preflight allows (LiveKit's list).
const CORS_METHODS: HeaderValue = HeaderValue::from_static("OPTIONS,HEAD,GET,POST,PATCH,DELETE");
/// How long browsers may cache a preflight (a day, as LiveKit).
const CORS_MAX_AGE: HeaderValue = HeaderValue::from_static("86400");
/// What a CORS answer depends on, for caches.
const CORS_VARY: HeaderValue =
    HeaderValue::from_static("origin, access-control-request-method, access-control-request-headers");

/// A preflight (`OPTIONS`) answered as LiveKit's CORS: any origin (echoed), any header
/// (echoed), the methods above, cached a day.
fn preflight(req: &Request) -> Response {
    let mut resp = StatusCode::OK.into_response();
    let h = resp.headers_mut();
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    }
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, CORS_METHODS);
    if let Some(asked) = req.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
    }
    h.insert(header::ACCESS_CONTROL_MAX_AGE, CORS_MAX_AGE);
    h.insert(header::VARY, CORS_VARY);
    resp
}

/// Marks an answer to a browser (a request with `Origin`) readable by that origin, errors
/// included, with every header exposed.
fn allow_origin(resp: &mut Response, origin: HeaderValue) {
    let h = resp.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("*"));
    h.append(header::VARY, CORS_VARY);
}

/// What the gate middleware needs.
#[derive(Clone)]
struct Gate {
    auth: AuthState,
    /// `limit.max_api_request_body_size`; 0 = unlimited.
    body_limit: u64,
}

/// The one middleware in front of every route, doing in one place (each tower layer costs
/// about a microsecond a request, which the RPC benchmarks showed):
///
/// 1. a request span (path only, so tokens in query strings never reach logs; debug level,
///    since creating it at info cost ~5% of an RPC's CPU in `benches/load.rs`);
/// 2. CORS as LiveKit: preflights answered here; answers to browsers get the origin echoed,
///    refusals included, so browsers can read the error;
/// 3. a panic guard: a panic is a bug, logged, and the caller gets Twirp's `internal` error;
/// 4. bodies whose declared length is over the limit refused before anything reads them (413,
///    as LiveKit's limiter), then authentication.
async fn front(State(gate): State<Gate>, req: Request, next: Next) -> Response {
    let span = tracing::debug_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        rpc = tracing::field::Empty,
        room = tracing::field::Empty,
        participant = tracing::field::Empty,
    );
    if req.method() == Method::OPTIONS {
        return preflight(&req);
    }
    let origin = req.headers().get(header::ORIGIN).cloned();
    let guarded = AssertUnwindSafe(gate_request(gate, req, next)).catch_unwind().instrument(span.clone());
    let mut resp = guarded.await.unwrap_or_else(panicked);
    if let Some(origin) = origin {
        allow_origin(&mut resp, origin);
    } else {
        // The answer would differ for a browser: shared caches must not reuse it for one.
        resp.headers_mut().append(header::VARY, CORS_VARY);
    }
    // 4xx/5xx answers are mostly client mistakes (or "not served yet"): debug, like the rest.
    span.in_scope(|| tracing::debug!(status = resp.status().as_u16(), "answered"));
    resp
}

/// Body-size limit, then authentication, then the routes.
async fn gate_request(gate: Gate, req: Request, next: Next) -> Response {
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if gate.body_limit > 0 && declared.is_some_and(|n| n > gate.body_limit) {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "request body too large",
        )
            .into_response();
    }
    authenticate(&gate.auth, req, next).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::{body::Body, routing::get};
    use tower::ServiceExt as _;

    use super::*;

    fn guarded(router: Router) -> Router {
        let gate = Gate {
            auth: AuthState {
                verifier: Arc::new(crate::auth::TokenVerifier::new(crate::config::Keys::default())),
                clock: Arc::new(crate::clock::SystemClock),
            },
            body_limit: 16,
        };
        router.layer(middleware::from_fn_with_state(gate, front))
    }

    #[tokio::test]
    async fn a_panic_becomes_twirps_internal_error_readable_by_browsers() {
        async fn boom() -> &'static str {
            panic!("bug")
        }
        let app = guarded(Router::new().route("/boom", get(boom)));
        let req = Request::get("/boom").header(header::ORIGIN, "https://a.example").body(Body::empty()).unwrap();
        let resp = app.oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(resp.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://a.example");
        let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["code"], "internal");
    }

    #[tokio::test]
    async fn preflights_are_answered_before_the_routes() {
        let app = guarded(Router::new());
        let req = Request::options("/twirp/livekit.RoomService/ListRooms")
            .header(header::ORIGIN, "https://a.example")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "authorization")
            .body(Body::empty())
            .unwrap();
        let resp = app.oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let h = resp.headers();
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://a.example");
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_HEADERS], "authorization");
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_METHODS], "OPTIONS,HEAD,GET,POST,PATCH,DELETE");
    }
}
