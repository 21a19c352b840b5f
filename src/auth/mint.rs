//! Minting tokens: `usher token create`, tests, and (later) refresh and webhook tokens.

use jsonwebtoken::{Algorithm, EncodingKey, Header};

use super::claims::{RawClaims, VideoGrant};

/// Signs claim sets with HS256.
#[derive(Debug, Clone, Copy)]
pub struct TokenMinter;

/// What a join/API token should say; turned into [`RawClaims`] by [`TokenMinter::mint`].
#[derive(Debug, Clone, Default)]
pub struct TokenSpec {
    /// API key id (`iss`).
    pub api_key: String,
    /// Participant identity (`sub`).
    pub identity: String,
    /// Display name.
    pub name: String,
    /// Metadata.
    pub metadata: String,
    /// Grants.
    pub video: VideoGrant,
    /// Issue time, Unix seconds (`iat`, `nbf`).
    pub now_secs: i64,
    /// Lifetime in seconds (`exp` = now + ttl).
    pub ttl_secs: i64,
}

impl TokenMinter {
    /// Signs an arbitrary claim set.
    pub fn sign(claims: &RawClaims, secret: &str) -> Result<String, jsonwebtoken::errors::Error> {
        let key = EncodingKey::from_secret(secret.as_bytes())?;
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key)
    }

    /// Builds and signs a token from a spec.
    pub fn mint(spec: &TokenSpec, secret: &str) -> Result<String, jsonwebtoken::errors::Error> {
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let claims = RawClaims {
            iss: Some(spec.api_key.clone()),
            sub: non_empty(&spec.identity),
            exp: Some(spec.now_secs.saturating_add(spec.ttl_secs)),
            nbf: Some(spec.now_secs),
            iat: Some(spec.now_secs),
            name: non_empty(&spec.name),
            metadata: non_empty(&spec.metadata),
            video: Some(spec.video.clone()),
            ..Default::default()
        };
        Self::sign(&claims, secret)
    }
}

/// Mints participants' refresh tokens with the first configured key (LiveKit picks one of the
/// configured pairs too). The token carries the participant's current name, metadata,
/// attributes, kind and permission; it lives as long as the original token, and at least
/// ten minutes.
pub struct KeyRefresher {
    key: Option<(String, String)>,
    clock: crate::clock::SharedClock,
}

impl KeyRefresher {
    /// A refresher signing with the first of `keys`.
    pub fn new(keys: &crate::config::Keys, clock: crate::clock::SharedClock) -> Self {
        let key = keys.iter().next().map(|(k, s)| (k.to_string(), s.to_string()));
        Self { key, clock }
    }
}

/// Lower-case source names, as tokens carry them.
fn source_name(source: i32) -> Option<&'static str> {
    use crate::proto::TrackSource;
    match TrackSource::try_from(source).ok()? {
        TrackSource::Camera => Some("camera"),
        TrackSource::Microphone => Some("microphone"),
        TrackSource::ScreenShare => Some("screen_share"),
        TrackSource::ScreenShareAudio => Some("screen_share_audio"),
        TrackSource::Unknown => None,
    }
}

impl crate::rooms::participant::TokenRefresher for KeyRefresher {
    #[allow(deprecated)] // `recorder` and `agent` are deprecated on the wire but still carried
    fn refresh(
        &self,
        room: &str,
        info: &crate::proto::ParticipantInfo,
        grant: &VideoGrant,
        original_expiry: i64,
    ) -> Option<String> {
        let (api_key, secret) = self.key.as_ref()?;
        let now = self.clock.now_secs();
        let p = info.permission.clone().unwrap_or_default();
        let kind = crate::proto::participant_info::Kind::try_from(info.kind)
            .map(|k| k.as_str_name().to_ascii_lowercase())
            .unwrap_or_default();
        let claims = RawClaims {
            iss: Some(api_key.clone()),
            sub: Some(info.identity.clone()),
            exp: Some(now + (original_expiry - now).max(600)),
            nbf: Some(now),
            iat: Some(now),
            name: Some(info.name.clone()).filter(|s| !s.is_empty()),
            kind: Some(kind).filter(|s| !s.is_empty() && s != "standard"),
            metadata: Some(info.metadata.clone()).filter(|s| !s.is_empty()),
            attributes: Some(info.attributes.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .filter(|a: &std::collections::BTreeMap<String, String>| !a.is_empty()),
            // The joining token's grant, with the current permission laid over it.
            video: Some(VideoGrant {
                room_join: true,
                room: room.to_string(),
                can_publish: Some(p.can_publish),
                can_subscribe: Some(p.can_subscribe),
                can_publish_data: Some(p.can_publish_data),
                can_publish_sources: p
                    .can_publish_sources
                    .iter()
                    .filter_map(|s| source_name(*s))
                    .map(String::from)
                    .collect(),
                can_update_own_metadata: Some(p.can_update_metadata),
                hidden: p.hidden,
                recorder: p.recorder,
                agent: p.agent,
                can_subscribe_metrics: Some(p.can_subscribe_metrics),
                can_manage_agent_session: Some(p.can_manage_agent_session),
                ..grant.clone()
            }),
            ..Default::default()
        };
        Self::sign_raw(&claims, secret)
    }
}

impl KeyRefresher {
    fn sign_raw(claims: &RawClaims, secret: &str) -> Option<String> {
        TokenMinter::sign(claims, secret).map_err(|e| tracing::error!(error = %e, "refresh token signing failed")).ok()
    }
}
