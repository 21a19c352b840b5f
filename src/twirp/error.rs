//! The one place where errors become Twirp error responses (code, HTTP status, message).
//!
//! Messages follow LiveKit's exactly, including its quirk: errors that travel through its
//! internal RPC layer reach clients as `twirp error unknown: <text>` while the `code` is right
//! (reference §1.6). SDKs print these messages and some users match on them, so we keep them.

use std::collections::BTreeMap;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

use crate::{
    auth::GrantError,
    rooms::{LimitError, RoomError},
};

/// Twirp error codes (the subset Usher produces, plus the ones SDKs know).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Canceled,
    Unknown,
    InvalidArgument,
    Malformed,
    DeadlineExceeded,
    NotFound,
    BadRoute,
    AlreadyExists,
    PermissionDenied,
    Unauthenticated,
    ResourceExhausted,
    FailedPrecondition,
    Aborted,
    OutOfRange,
    Unimplemented,
    Internal,
    Unavailable,
    DataLoss,
}

impl Code {
    /// The code's wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Canceled => "canceled",
            Self::Unknown => "unknown",
            Self::InvalidArgument => "invalid_argument",
            Self::Malformed => "malformed",
            Self::DeadlineExceeded => "deadline_exceeded",
            Self::NotFound => "not_found",
            Self::BadRoute => "bad_route",
            Self::AlreadyExists => "already_exists",
            Self::PermissionDenied => "permission_denied",
            Self::Unauthenticated => "unauthenticated",
            Self::ResourceExhausted => "resource_exhausted",
            Self::FailedPrecondition => "failed_precondition",
            Self::Aborted => "aborted",
            Self::OutOfRange => "out_of_range",
            Self::Unimplemented => "unimplemented",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
            Self::DataLoss => "dataloss",
        }
    }

    /// HTTP status for the code (Twirp v8's table).
    pub fn status(self) -> StatusCode {
        match self {
            Self::Canceled | Self::DeadlineExceeded => StatusCode::REQUEST_TIMEOUT,
            Self::Unknown | Self::Internal | Self::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
            Self::InvalidArgument | Self::Malformed | Self::OutOfRange => StatusCode::BAD_REQUEST,
            Self::NotFound | Self::BadRoute => StatusCode::NOT_FOUND,
            Self::AlreadyExists | Self::Aborted => StatusCode::CONFLICT,
            Self::PermissionDenied => StatusCode::FORBIDDEN,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Self::FailedPrecondition => StatusCode::PRECONDITION_FAILED,
            Self::Unimplemented => StatusCode::NOT_IMPLEMENTED,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// Prefix LiveKit's messages carry for errors that crossed its internal RPC layer.
const VIA_RPC: &str = "twirp error unknown: ";

/// A Twirp error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwirpError {
    /// Error code.
    pub code: Code,
    /// Human-readable message.
    pub msg: String,
    /// Extra string pairs (`argument`, `twirp_invalid_route`).
    pub meta: BTreeMap<String, String>,
}

impl TwirpError {
    /// An error with no meta.
    pub fn new(code: Code, msg: impl Into<String>) -> Self {
        Self { code, msg: msg.into(), meta: BTreeMap::new() }
    }

    /// Adds a meta pair.
    pub fn with_meta(mut self, key: &str, value: impl Into<String>) -> Self {
        self.meta.insert(key.to_string(), value.into());
        self
    }

    /// `malformed`, for bodies that do not decode.
    pub fn malformed(msg: &str) -> Self {
        Self::new(Code::Malformed, msg)
    }

    /// `bad_route`, with the route in meta as Twirp does.
    pub fn bad_route(msg: String, method: &str, path: &str) -> Self {
        Self::new(Code::BadRoute, msg).with_meta("twirp_invalid_route", format!("{method} {path}"))
    }

    /// `invalid_argument` the way Twirp's helper builds it: message `argument + " " + text`,
    /// meta `argument`.
    pub fn invalid_argument(argument: &str, text: &str) -> Self {
        Self::new(Code::InvalidArgument, format!("{argument} {text}")).with_meta("argument", argument)
    }
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    msg: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    meta: &'a BTreeMap<String, String>,
}

impl IntoResponse for TwirpError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&Body { code: self.code.as_str(), msg: &self.msg, meta: &self.meta })
            .unwrap_or_else(|_| br#"{"code":"internal","msg":"error encoding failed"}"#.to_vec());
        // Exactly `application/json`: the Node SDK only reads the code when it sees that.
        let mut resp = (self.code.status(), body).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        resp
    }
}

impl From<GrantError> for TwirpError {
    fn from(e: GrantError) -> Self {
        tracing::debug!(reason = %e, "permission denied");
        // LiveKit answers every grant failure with 401 `unauthenticated`, never 403.
        Self::new(Code::Unauthenticated, "permissions denied")
    }
}

impl From<RoomError> for TwirpError {
    fn from(e: RoomError) -> Self {
        let code = match e {
            RoomError::RoomNotFound | RoomError::ParticipantNotFound => Code::NotFound,
            RoomError::Unsupported(_) => Code::Unimplemented,
            RoomError::RoomFull => Code::ResourceExhausted,
            RoomError::TokenRevoked => Code::PermissionDenied,
            RoomError::RemoteUnmuteDisabled | RoomError::CannotMove(_) | RoomError::Forwarded => {
                Code::FailedPrecondition
            }
            RoomError::AlreadyInRoom => Code::AlreadyExists,
        };
        Self::new(code, format!("{VIA_RPC}{e}"))
    }
}

impl From<LimitError> for TwirpError {
    fn from(e: LimitError) -> Self {
        match e {
            // Room-name length is checked inside LiveKit's room allocator, so it carries the
            // RPC prefix and no meta; the other limits are Twirp validation errors.
            LimitError::RoomName(_) => Self::new(Code::InvalidArgument, format!("{VIA_RPC}{e}")),
            LimitError::Metadata(n) => Self::invalid_argument("metadata size exceeds limits", &n.to_string()),
            LimitError::Name(n) => Self::invalid_argument("name length exceeds limits", &n.to_string()),
            LimitError::Attributes(n) => Self::invalid_argument("attribute size exceeds limits", &n.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(e: TwirpError) -> (StatusCode, String, String) {
        let resp = e.into_response();
        let status = resp.status();
        let ct = resp.headers()[header::CONTENT_TYPE].to_str().unwrap().to_string();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        (status, ct, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn golden_error_bodies() {
        // These bodies are what the SDKs parse; keep them byte-stable.
        let cases = [
            (
                TwirpError::from(RoomError::RoomNotFound),
                404,
                r#"{"code":"not_found","msg":"twirp error unknown: requested room does not exist"}"#,
            ),
            (
                TwirpError::from(RoomError::ParticipantNotFound),
                404,
                r#"{"code":"not_found","msg":"twirp error unknown: participant does not exist"}"#,
            ),
            (TwirpError::from(GrantError::NoToken), 401, r#"{"code":"unauthenticated","msg":"permissions denied"}"#),
            (
                TwirpError::from(LimitError::Metadata(524_288)),
                400,
                r#"{"code":"invalid_argument","msg":"metadata size exceeds limits 524288","meta":{"argument":"metadata size exceeds limits"}}"#,
            ),
            (
                TwirpError::from(LimitError::RoomName(256)),
                400,
                r#"{"code":"invalid_argument","msg":"twirp error unknown: room name length exceeds limits: max length 256"}"#,
            ),
            (
                TwirpError::bad_route("unsupported method \"GET\" (only POST is allowed)".into(), "GET", "/twirp/x"),
                404,
                r#"{"code":"bad_route","msg":"unsupported method \"GET\" (only POST is allowed)","meta":{"twirp_invalid_route":"GET /twirp/x"}}"#,
            ),
        ];
        for (err, status, json) in cases {
            let (s, ct, body) = body_of(err).await;
            assert_eq!(s.as_u16(), status);
            assert_eq!(ct, "application/json");
            assert_eq!(body, json);
        }
    }

    #[test]
    fn every_code_maps_to_twirps_status() {
        let table = [
            (Code::Canceled, 408),
            (Code::Unknown, 500),
            (Code::InvalidArgument, 400),
            (Code::Malformed, 400),
            (Code::DeadlineExceeded, 408),
            (Code::NotFound, 404),
            (Code::BadRoute, 404),
            (Code::AlreadyExists, 409),
            (Code::PermissionDenied, 403),
            (Code::Unauthenticated, 401),
            (Code::ResourceExhausted, 429),
            (Code::FailedPrecondition, 412),
            (Code::Aborted, 409),
            (Code::OutOfRange, 400),
            (Code::Unimplemented, 501),
            (Code::Internal, 500),
            (Code::Unavailable, 503),
            (Code::DataLoss, 500),
        ];
        for (code, status) in table {
            assert_eq!(code.status().as_u16(), status, "{}", code.as_str());
        }
        assert_eq!(Code::DataLoss.as_str(), "dataloss");
    }
}
