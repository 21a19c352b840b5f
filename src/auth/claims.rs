//! The JWT claim set LiveKit tokens carry (JSON names as the SDKs write them).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Room-related permissions (`video` claim). `None` on the `Option` fields means "not said",
/// which has a default that differs per field (see [`VideoGrant::can_publish`] etc.).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct VideoGrant {
    #[serde(skip_serializing_if = "is_false")]
    pub room_create: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub room_list: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub room_record: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub room_admin: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub room_join: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub room: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_publish: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_subscribe: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_publish_data: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub can_publish_sources: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_update_own_metadata: Option<bool>,
    #[serde(skip_serializing_if = "is_false")]
    pub ingress_admin: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub hidden: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub recorder: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub agent: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_subscribe_metrics: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_manage_agent_session: Option<bool>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub destination_room: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Everything a verified token says. Built by [`super::TokenVerifier::verify`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Claims {
    /// The API key that signed the token (`iss`).
    pub api_key: String,
    /// Participant identity: `sub`, or `jti` when `sub` is empty.
    pub identity: String,
    /// Display name.
    pub name: String,
    /// Participant kind, lower-case (`standard`, `agent`, …).
    pub kind: String,
    /// Participant metadata.
    pub metadata: String,
    /// Participant attributes.
    pub attributes: BTreeMap<String, String>,
    /// Room permissions; `None` when the token has no `video` claim.
    pub video: Option<VideoGrant>,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
    /// Not-before, Unix seconds (0 when absent).
    pub not_before: i64,
    /// Webhook body hash (only in webhook tokens).
    pub sha256: String,
}

impl Claims {
    /// The video grant, or an all-false one when the token has none.
    pub fn video(&self) -> &VideoGrant {
        static NONE: std::sync::OnceLock<VideoGrant> = std::sync::OnceLock::new();
        self.video.as_ref().unwrap_or_else(|| NONE.get_or_init(VideoGrant::default))
    }
}

/// A JWT NumericDate: seconds, possibly fractional (RFC 7519 allows it and LiveKit's Go
/// verifier accepts it), truncated to whole seconds.
fn numeric_date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let n: Option<serde_json::Number> = Option::deserialize(d)?;
    Ok(n.and_then(|n| n.as_i64().or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))))
}

/// The JSON body of a token, as written by LiveKit's minters and ours.
///
/// Null values are tolerated everywhere (some minters write them for unset fields).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RawClaims {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "numeric_date")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "numeric_date")]
    pub nbf: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "numeric_date")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video: Option<VideoGrant>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}
