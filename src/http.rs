//! Assembles the HTTP service: routes, and the layers in LiveKit's order.
//!
//! Outermost first: trace (one span per request, path only, so tokens in query strings never
//! reach logs; debug level, since creating it at info cost ~5% of an RPC's CPU in
//! `benches/load.rs`) → CORS → panic guard → gate (body-size limit, then authentication) →
//! routes.
//! Each layer costs about a microsecond per request (see BENCHMARKS.md), so the body limit and
//! authentication share one middleware instead of two.
//!
//! Clients with a trailing slash in their base URL send `//twirp/…`; the Twirp handler is the
//! router's fallback and accepts both spellings, so no path rewriting layer is needed.

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{Request, State},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::any,
};
use http::{Method, StatusCode, header};
use tower_http::{
    catch_panic::CatchPanicLayer,
    cors::{AllowHeaders, AllowOrigin, CorsLayer, ExposeHeaders},
    trace::TraceLayer,
};

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
        .layer(middleware::from_fn_with_state(gate, gate_request))
        .layer(CatchPanicLayer::custom(panicked))
        .layer(cors())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    tracing::debug_span!(
                        "request",
                        method = %req.method(),
                        path = %req.uri().path(),
                        rpc = tracing::field::Empty,
                        room = tracing::field::Empty,
                        participant = tracing::field::Empty,
                    )
                })
                // 4xx/5xx answers are mostly client mistakes (or "not served yet"); they are
                // logged at debug with every response. Our own failures log where they happen.
                .on_failure(()),
        )
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

/// CORS as LiveKit: any origin (echoed), any header, preflight cached a day.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_methods([Method::OPTIONS, Method::HEAD, Method::GET, Method::POST, Method::PATCH, Method::DELETE])
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers(ExposeHeaders::any())
        .max_age(Duration::from_secs(86_400))
}

/// What the gate middleware needs.
#[derive(Clone)]
struct Gate {
    auth: AuthState,
    /// `limit.max_api_request_body_size`; 0 = unlimited.
    body_limit: u64,
}

/// Rejects bodies whose declared length is over the limit before anything reads them (413, as
/// LiveKit's limiter), then authenticates. One middleware, not two: each costs ~1 µs a request.
async fn gate_request(State(gate): State<Gate>, req: Request, next: Next) -> Response {
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
