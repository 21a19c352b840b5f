//! The `/rtc` signalling WebSocket (LiveKit protocol "v0"): validation, join, and the routes.
//!
//! Everything that can refuse a join runs **before** the upgrade and answers with LiveKit's
//! plain-text HTTP statuses, because browsers hide a failed handshake's status and clients ask
//! `/rtc/validate` for the same verdict. The join itself also happens before the upgrade (as
//! LiveKit does), so a full room or a missing room is an HTTP answer too; the JoinResponse
//! waits as the first frame in the session's queue. `/rtc/v1` answers a bare 404 so official
//! clients fall back to v0 until the single-peer-connection mode exists.

pub mod session;

use std::{collections::HashMap, sync::Arc};

use axum::{
    Extension, Router,
    extract::{Query, State, WebSocketUpgrade},
    response::{IntoResponse, Response},
    routing::{any, get},
};
use http::{StatusCode, header};
use tracing::Instrument as _;

use crate::{
    app::AppState,
    auth::{
        Claims,
        claims::{VideoGrant, participant_kind},
    },
    ids::{ParticipantIdentity, RoomName},
    proto::DisconnectReason,
    rooms::{JoinSpec, Outbox, RoomError, SessionEnd, SessionKey},
};

/// Routes served by this module (merged into the HTTP service).
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/rtc", get(rtc))
        .route("/rtc/validate", get(validate))
        .route("/rtc/v1", any(v1_not_served))
        .route("/rtc/v1/validate", any(v1_not_served))
}

/// A refused join: status and LiveKit's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP status.
    pub status: StatusCode,
    /// Plain-text body.
    pub text: &'static str,
}

impl Refusal {
    const fn new(status: StatusCode, text: &'static str) -> Self {
        Self { status, text }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], self.text).into_response()
    }
}

/// What a valid join request asks for.
#[derive(Debug, Clone)]
pub struct JoinPlan {
    /// The room, from the token's grant.
    pub room: RoomName,
    /// Who joins.
    pub spec: JoinSpec,
    /// Whether the join may create the room.
    pub create: bool,
    /// `reconnect=1`: a resume of an earlier session.
    pub resume: bool,
    /// `sid`: the session a resume is for, when the client names it.
    pub resume_sid: Option<String>,
}

/// Checks a join request: token grants, identity, room name, limits. Pure.
pub fn plan(app: &AppState, claims: Option<&Claims>, query: &HashMap<String, String>) -> Result<JoinPlan, Refusal> {
    let no_permission = Refusal::new(StatusCode::UNAUTHORIZED, "no permissions to access the room");
    let claims = claims.ok_or(no_permission.clone())?;
    let video: &VideoGrant = claims.video.as_ref().ok_or(no_permission)?;
    if !video.room_join {
        return Err(Refusal::new(StatusCode::UNAUTHORIZED, "permissions denied"));
    }
    let limits = &app.config.limit;
    if claims.identity.is_empty() {
        return Err(Refusal::new(StatusCode::BAD_REQUEST, "identity cannot be empty"));
    }
    let max_identity = limits.max_participant_identity_length as usize;
    if max_identity > 0 && claims.identity.len() > max_identity {
        return Err(Refusal::new(StatusCode::BAD_REQUEST, "participant identity length exceeds limits"));
    }
    if video.room.is_empty() {
        return Err(Refusal::new(StatusCode::BAD_REQUEST, "no room name"));
    }
    if limits.check_room_name(&video.room).is_err() {
        return Err(Refusal::new(StatusCode::BAD_REQUEST, "room name length exceeds limits"));
    }
    let flag = |name: &str| query.get(name).is_some_and(|v| v == "1" || v == "true");
    Ok(JoinPlan {
        room: RoomName::new(video.room.clone()),
        spec: JoinSpec {
            identity: ParticipantIdentity::new(claims.identity.clone()),
            name: claims.name.clone(),
            metadata: claims.metadata.clone(),
            attributes: claims.attributes.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            kind: participant_kind(&claims.kind) as i32,
            permission: video.to_permission(),
            protocol: query.get("protocol").and_then(|p| p.parse().ok()).unwrap_or(0),
            region: app.config.region.clone(),
            token_expires_at: claims.expires_at,
            token_issued_at: claims.issued_at.max(claims.not_before),
            grant: video.clone(),
        },
        create: app.config.room.auto_create || video.room_create,
        resume: flag("reconnect"),
        resume_sid: query.get("sid").filter(|s| !s.is_empty()).cloned(),
    })
}

/// The HTTP answer for a refused registry join.
fn join_refusal(e: &RoomError) -> Refusal {
    match e {
        RoomError::RoomNotFound => Refusal::new(StatusCode::NOT_FOUND, "requested room does not exist"),
        // LiveKit's join fails deep in session start here and surfaces as a 500; a clear 503
        // says what happened (browsers map both to "internal error").
        RoomError::RoomFull => Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "room is full"),
        // 401 like every other "not allowed": SDKs do not retry it.
        RoomError::TokenRevoked => Refusal::new(StatusCode::UNAUTHORIZED, "access token was revoked"),
        _ => Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "could not join the room"),
    }
}

type MaybeClaims = Option<Extension<Arc<Claims>>>;

/// `GET /rtc/validate`: the same verdict as `/rtc`, without joining.
async fn validate(
    State(app): State<Arc<AppState>>,
    claims: MaybeClaims,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let plan = match plan(&app, claims.as_deref().map(Arc::as_ref), &query) {
        Ok(p) => p,
        Err(r) => return with_cors(r.into_response()),
    };
    if !plan.resume
        && let Err(e) = app.registry.check_join(&plan.room, &plan.spec, plan.create)
    {
        return with_cors(join_refusal(&e).into_response());
    }
    with_cors((StatusCode::OK, "success").into_response())
}

/// LiveKit's auth layer adds this on the validate paths, for browsers.
fn with_cors(mut resp: Response) -> Response {
    resp.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, http::HeaderValue::from_static("*"));
    resp
}

/// `/rtc/v1*`: not served yet. A 404 without "requested room does not exist" makes official
/// clients fall back to v0.
async fn v1_not_served() -> Response {
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "404 page not found\n")
        .into_response()
}

/// `GET /rtc`: validate, join, upgrade, run the session.
async fn rtc(
    State(app): State<Arc<AppState>>,
    claims: MaybeClaims,
    Query(query): Query<HashMap<String, String>>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let Ok(upgrade) = upgrade else {
        // Not a WebSocket handshake: a bare 404, as LiveKit.
        return StatusCode::NOT_FOUND.into_response();
    };
    let plan = match plan(&app, claims.as_deref().map(Arc::as_ref), &query) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let limit = usize::try_from(app.config.limit.signal_message_size_limit).unwrap_or(usize::MAX);
    let upgrade = upgrade
        // tungstenite's default 128 KiB read buffer costs ~135 KB per idle socket; signalling
        // frames are small.
        .read_buffer_size(4 * 1024)
        .max_message_size(limit)
        .max_frame_size(limit);
    tracing::Span::current().record("room", plan.room.as_str());
    tracing::Span::current().record("participant", plan.spec.identity.as_str());

    let (outbox, inbox) = Outbox::channel();
    let room = plan.room.clone();
    let identity = plan.spec.identity.clone();
    let connection = inbox.connection;
    let (sid, home) = if plan.resume {
        // A participant still in the room (its socket lost within the departure window, or
        // not yet noticed as lost) is taken back; anything else is told to rejoin from
        // scratch, as LiveKit does for a session it does not know.
        match app.registry.resume(&room, &identity, plan.resume_sid.as_deref(), outbox) {
            Ok(joined) => joined,
            Err(e) => {
                tracing::info!(room = %room, reason = %e, "resume refused; the client will rejoin");
                let protocol = plan.spec.protocol;
                return upgrade.on_upgrade(move |socket| session::refuse_resume(socket, protocol)).into_response();
            }
        }
    } else {
        match app.registry.join(&room, plan.spec, outbox, plan.create, tokio::time::Instant::now()) {
            Ok((sid, home)) => {
                tracing::info!(room = %room, sid = %sid, "participant joined");
                (sid, home)
            }
            Err(e) => return join_refusal(&e).into_response(),
        }
    };
    let key = SessionKey { identity, sid, connection };
    let cleanup = (Arc::clone(&app), Arc::clone(&home), key.clone(), plan.resume);
    upgrade
        .on_failed_upgrade(move |e| {
            let (app, home, key, resumed) = cleanup;
            let end = if resumed {
                // The participant was waiting for a resume before; it still may.
                tracing::debug!(error = %e, "WebSocket upgrade failed after a resume; the participant waits again");
                SessionEnd::Lost
            } else {
                tracing::debug!(error = %e, "WebSocket upgrade failed after joining; leaving");
                SessionEnd::Left(DisconnectReason::JoinFailure)
            };
            app.registry.end_session(&home, &key, end);
        })
        .on_upgrade(move |socket| {
            // The session outlives the request span: its own span names who it serves.
            let span = tracing::info_span!("session", room = %room, participant = %key.identity, sid = %key.sid);
            session::run(socket, app, home, key, inbox).instrument(span)
        })
        .into_response()
}
