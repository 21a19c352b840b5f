//! Assembles the HTTP service: routes, and the layers in LiveKit's order.
//!
//! Outermost first: catch-panic → trace (one span per request, path only, so tokens in query
//! strings never reach logs) → CORS → double-slash fix → body-size limit → authentication →
//! routes. The double-slash fix wraps the router so it runs before routing.

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{any, get},
};
use http::{HeaderValue, Method, StatusCode, header};
use tower_http::{
    catch_panic::CatchPanicLayer,
    cors::{AllowHeaders, AllowOrigin, CorsLayer, ExposeHeaders},
    trace::TraceLayer,
};

use crate::{
    app::AppState,
    auth::layer::{AuthState, authenticate},
    twirp,
};

/// The complete service, ready for `axum::serve`.
pub fn service(app: Arc<AppState>) -> Router {
    let auth = AuthState {
        verifier: Arc::clone(&app.verifier),
        clock: Arc::clone(&app.clock),
    };
    let body_limit = app.config.limit.max_api_request_body_size;
    let routes = Router::new()
        .route("/", get(health))
        .route("/twirp/{*rest}", any(twirp::handle))
        .fallback(not_found)
        .with_state(Arc::clone(&app))
        .layer(middleware::from_fn_with_state(auth, authenticate))
        .layer(middleware::from_fn_with_state(body_limit, limit_body))
        .layer(cors())
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            tracing::info_span!(
                "request",
                method = %req.method(),
                path = %req.uri().path(),
                rpc = tracing::field::Empty,
                room = tracing::field::Empty,
            )
        }))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("handler panicked");
            twirp::error::TwirpError::new(twirp::error::Code::Internal, "Internal service panic").into_response()
        }));
    // Routing sees the fixed path because this layer wraps the whole router.
    Router::new()
        .fallback_service(routes)
        .layer(middleware::map_request(strip_double_slash))
}

/// `GET /`: the health check load balancers and SDK tests use.
async fn health() -> &'static str {
    "OK"
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "404 page not found\n",
    )
        .into_response()
}

/// CORS as LiveKit: any origin (echoed), any header, preflight cached a day.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_methods([
            Method::OPTIONS,
            Method::HEAD,
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers(ExposeHeaders::any())
        .max_age(Duration::from_secs(86_400))
}

/// Rejects bodies whose declared length is over the limit before anything reads them.
async fn limit_body(State(limit): State<u64>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if limit > 0 && declared.is_some_and(|n| n > limit) {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "request body too large",
        )
            .into_response();
    }
    next.run(req).await
}

/// Clients with a trailing slash in their base URL send `//twirp/…`; serve those as `/twirp/…`.
async fn strip_double_slash(mut req: Request<Body>) -> Request<Body> {
    let uri = req.uri();
    if uri.path().starts_with("//") {
        let fixed = match uri.query() {
            Some(q) => format!("{}?{q}", &uri.path()[1..]),
            None => uri.path()[1..].to_string(),
        };
        if let Ok(pq) = fixed.parse::<http::uri::PathAndQuery>() {
            let mut parts = uri.clone().into_parts();
            parts.path_and_query = Some(pq);
            if let Ok(new) = http::Uri::from_parts(parts) {
                *req.uri_mut() = new;
            }
        }
    }
    req
}

/// Header value helper for tests and handlers.
pub fn text_plain() -> HeaderValue {
    HeaderValue::from_static("text/plain; charset=utf-8")
}
