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

impl VideoGrant {
    /// The participant permission this grant gives, with LiveKit's defaults for unset flags:
    /// publish and subscribe default to allowed, data publishing follows publishing, the rest
    /// default to denied. Unknown source names are dropped.
    #[allow(deprecated)] // `recorder` and `agent` are deprecated on the wire but still carried
    pub fn to_permission(&self) -> crate::proto::ParticipantPermission {
        use crate::proto::TrackSource;
        let can_publish = self.can_publish.unwrap_or(true);
        crate::proto::ParticipantPermission {
            can_subscribe: self.can_subscribe.unwrap_or(true),
            can_publish,
            can_publish_data: self.can_publish_data.unwrap_or(can_publish),
            can_publish_sources: self
                .can_publish_sources
                .iter()
                .filter_map(|s| match s.as_str() {
                    "camera" => Some(TrackSource::Camera as i32),
                    "microphone" => Some(TrackSource::Microphone as i32),
                    "screen_share" => Some(TrackSource::ScreenShare as i32),
                    "screen_share_audio" => Some(TrackSource::ScreenShareAudio as i32),
                    _ => None,
                })
                .collect(),
            hidden: self.hidden,
            recorder: self.recorder,
            can_update_metadata: self.can_update_own_metadata.unwrap_or(false),
            agent: self.agent,
            can_subscribe_metrics: self.can_subscribe_metrics.unwrap_or(false),
            can_manage_agent_session: self.can_manage_agent_session.unwrap_or(false),
        }
    }
}

/// `ParticipantInfo.Kind` from the token's lower-case `kind` claim; unknown or empty is STANDARD.
pub fn participant_kind(kind: &str) -> crate::proto::participant_info::Kind {
    use crate::proto::participant_info::Kind;
    match kind {
        "ingress" => Kind::Ingress,
        "egress" => Kind::Egress,
        "sip" => Kind::Sip,
        "agent" => Kind::Agent,
        "connector" => Kind::Connector,
        "bridge" => Kind::Bridge,
        _ => Kind::Standard,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::TrackSource;

    #[test]
    fn permission_defaults_follow_livekit() {
        let p = VideoGrant::default().to_permission();
        assert!(p.can_publish && p.can_subscribe && p.can_publish_data);
        assert!(!p.can_update_metadata && !p.hidden && p.can_publish_sources.is_empty());
        let g = VideoGrant {
            can_publish: Some(false),
            can_publish_sources: vec!["camera".into(), "bogus".into(), "screen_share_audio".into()],
            can_update_own_metadata: Some(true),
            ..Default::default()
        };
        let p = g.to_permission();
        assert!(!p.can_publish && !p.can_publish_data, "data follows publish when unset");
        assert!(p.can_update_metadata);
        assert_eq!(p.can_publish_sources, [TrackSource::Camera as i32, TrackSource::ScreenShareAudio as i32]);
        assert_eq!(participant_kind("agent"), crate::proto::participant_info::Kind::Agent);
        assert_eq!(participant_kind("robot"), crate::proto::participant_info::Kind::Standard);
    }
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
    /// Issued-at, Unix seconds (0 when absent).
    pub issued_at: i64,
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
