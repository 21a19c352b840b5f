//! Server configuration: LiveKit's YAML keys, defaults and precedence.
//!
//! Loading is a pure function of its inputs (YAML text, CLI flags, environment), so tests pass
//! YAML inline. The steps, in order: parse the YAML and check every key against the schema in
//! [`schema`] (collecting *all* problems), fill defaults, apply flags/environment, apply dev
//! mode, then validate. Problems come back together in one [`ConfigError`], each with its key
//! path. Keys LiveKit knows but Usher does not act on yet are accepted and listed in
//! [`Config::unsupported`] so startup can warn about them.

mod load;
mod schema;

pub use load::{Overrides, load};

use std::{collections::BTreeMap, fmt, net::IpAddr, time::Duration};

/// API key → secret pairs that may sign tokens.
///
/// Secrets never appear in `Debug` output or logs: `Debug` shows the key ids only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Keys(BTreeMap<String, String>);

impl Keys {
    /// Builds a key set from pairs.
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        Self(pairs.into_iter().collect())
    }
    /// The secret for an API key, if configured.
    pub fn secret(&self, api_key: &str) -> Option<&str> {
        self.0.get(api_key).map(String::as_str)
    }
    /// Configured API key ids, sorted.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
    /// Number of configured keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// True when no key is configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Pairs, for callers that mint tokens (refresh tokens, webhooks).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.ids()).finish()
    }
}

/// The whole server configuration after defaults, overrides and validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `port`: HTTP port for the API and signalling (default 7880).
    pub port: u16,
    /// `bind_addresses`: interfaces to listen on; empty means all.
    pub bind_addresses: Vec<IpAddr>,
    /// `keys` / `key_file` / `--keys` / `LIVEKIT_KEYS`.
    pub keys: Keys,
    /// `region`: reported in participant infos.
    pub region: String,
    /// `development` / `--dev`.
    pub development: bool,
    /// `logging.*`.
    pub logging: LoggingConfig,
    /// `room.*`.
    pub room: RoomConfig,
    /// `limit.*`.
    pub limit: LimitConfig,
    /// `webhook.*`.
    pub webhook: WebhookConfig,
    /// `redis.address`: set means multi-node mode (not served yet; see `unsupported`).
    pub redis_address: String,
    /// LiveKit keys present in the input that Usher accepts but does not act on yet.
    pub unsupported: Vec<String>,
}

/// `logging.*` keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggingConfig {
    /// `logging.level` (or legacy `log_level`): `debug`, `info`, `warn`, `error`.
    pub level: String,
    /// `logging.json`: one JSON object per line instead of text.
    pub json: bool,
}

/// `room.*` keys: defaults for new rooms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomConfig {
    /// `room.auto_create`: joins may create rooms (default true).
    pub auto_create: bool,
    /// `room.empty_timeout`: a room nobody joined closes after this (default 300 s).
    pub empty_timeout: Duration,
    /// `room.departure_timeout`: a room closes this long after the last one left (default 20 s);
    /// also how long a participant whose signal socket was lost is kept for a resume.
    pub departure_timeout: Duration,
    /// `room.max_participants`: 0 = unlimited.
    pub max_participants: u32,
    /// `room.enable_remote_unmute`: MutePublishedTrack may unmute (default false).
    pub enable_remote_unmute: bool,
    /// How often batched presence updates are sent (3 s, as LiveKit). Not a config key: only
    /// tests change it, to keep black-box tests fast.
    pub update_batch_interval: Duration,
}

/// `limit.*` keys: caps on client-controlled sizes. 0 means unlimited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitConfig {
    /// `limit.max_metadata_size` (default 524288 bytes).
    pub max_metadata_size: u32,
    /// `limit.max_attributes_size` (default 65536 bytes, keys + values).
    pub max_attributes_size: u32,
    /// `limit.max_room_name_length` (default 256).
    pub max_room_name_length: u32,
    /// `limit.max_participant_identity_length` (default 256).
    pub max_participant_identity_length: u32,
    /// `limit.max_participant_name_length` (default 256).
    pub max_participant_name_length: u32,
    /// `limit.max_api_request_body_size` (default 10 MiB).
    pub max_api_request_body_size: u64,
    /// `limit.signal_message_size_limit` (default 2 MiB).
    pub signal_message_size_limit: u64,
}

/// `webhook.*` keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// `webhook.api_key`: which configured key signs deliveries.
    pub api_key: String,
    /// `webhook.urls`: receivers.
    pub urls: Vec<String>,
    /// `webhook.filter_params.include_events`: only these events (takes precedence). Usher's
    /// extra events (`participant_updated`, `room_metadata_changed`) are sent only when listed
    /// here, so receivers written for LiveKit never see events they do not know.
    pub include_events: Vec<String>,
    /// `webhook.filter_params.exclude_events`: every event but these.
    pub exclude_events: Vec<String>,
    /// `webhook.resource_url_notifier.max_depth`: events waiting per room and receiver before
    /// new ones are dropped (default 200, as LiveKit).
    pub max_depth: u32,
    /// `webhook.resource_url_notifier.max_age`: each event's deadline, from when it was
    /// queued: not delivered by then (waiting, sending or between retries), it is dropped and
    /// counted (30 s, as LiveKit).
    pub max_age: Duration,
    /// First retry delay; doubles per attempt up to 30 s (1 s; tests shorten it). Not a YAML key.
    pub retry_base: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            api_key: String::new(),
            urls: Vec::new(),
            include_events: Vec::new(),
            exclude_events: Vec::new(),
            max_depth: 200,
            max_age: Duration::from_secs(30),
            retry_base: Duration::from_secs(1),
        }
    }
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self { level: "info".into(), json: false }
    }
}

impl Default for RoomConfig {
    fn default() -> Self {
        Self {
            auto_create: true,
            empty_timeout: Duration::from_secs(300),
            departure_timeout: Duration::from_secs(20),
            max_participants: 0,
            enable_remote_unmute: false,
            update_batch_interval: crate::rooms::membership::UPDATE_BATCH_INTERVAL,
        }
    }
}

impl Default for LimitConfig {
    fn default() -> Self {
        Self {
            max_metadata_size: 524_288,
            max_attributes_size: 65_536,
            max_room_name_length: 256,
            max_participant_identity_length: 256,
            max_participant_name_length: 256,
            max_api_request_body_size: 10 * 1024 * 1024,
            signal_message_size_limit: 2 * 1024 * 1024,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            port: 7880,
            bind_addresses: Vec::new(),
            keys: Keys::default(),
            region: String::new(),
            development: false,
            logging: LoggingConfig::default(),
            room: RoomConfig::default(),
            limit: LimitConfig::default(),
            webhook: WebhookConfig::default(),
            redis_address: String::new(),
            unsupported: Vec::new(),
        }
    }
}

/// One problem in the configuration, located by its key path (`room.empty_timeout`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path, or a source such as `--keys`.
    pub path: String,
    /// What is wrong, for a human.
    pub message: String,
}

/// Every problem found while loading; startup prints them all and exits non-zero.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration:\n{}", .problems.iter().map(|p| format!("  - {}: {}", p.path, p.message)).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError {
    /// All problems, in the order found.
    pub problems: Vec<Problem>,
}
