//! The shape of LiveKit's YAML config, as far as Usher reads it.
//!
//! Every key LiveKit accepts is listed, so a LiveKit config starts Usher: keys Usher acts on are
//! typed leaves, keys it does not serve yet are [`Node::Unsupported`] (accepted, warned about),
//! anything else is an error. Keep this list in step with LiveKit's `config.go` yaml tags.

/// The value type a leaf must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Bool,
    /// Unsigned integer that fits in u16.
    U16,
    /// Unsigned integer that fits in u32.
    U32,
    /// Unsigned integer that fits in u64.
    U64,
    Str,
    /// A list of strings.
    StrList,
    /// A map of string to string (`keys`).
    StrMap,
    /// A Go duration as LiveKit's YAML takes it: a string such as `"30s"`, `"1m30s"`,
    /// `"500ms"`, or a whole number of nanoseconds.
    Duration,
}

/// One node of the schema tree.
#[derive(Debug)]
pub(super) enum Node {
    Leaf(Kind),
    Section(&'static [(&'static str, Node)]),
    /// A LiveKit key (or whole section) Usher accepts but does not act on yet, and why.
    Unsupported(&'static str),
}

use Kind::*;
use Node::*;

const MEDIA: &str = "the media plane is not served yet";
pub(super) const CLUSTER: &str = "multi-node mode is not served yet; running as a single node";
const NOT_RUN: &str = "this service is not run by Usher";
const LATER: &str = "accepted but not acted on yet";

pub(super) const ROOT: &[(&str, Node)] = &[
    ("port", Leaf(U16)),
    ("bind_addresses", Leaf(StrList)),
    ("keys", Leaf(StrMap)),
    ("key_file", Leaf(Str)),
    ("region", Leaf(Str)),
    ("development", Leaf(Bool)),
    ("log_level", Leaf(Str)),
    (
        "logging",
        Section(&[
            ("level", Leaf(Str)),
            ("json", Leaf(Bool)),
            ("sample", Unsupported(LATER)),
            ("sample_initial", Unsupported(LATER)),
            ("sample_interval", Unsupported(LATER)),
            ("item_sample_seconds", Unsupported(LATER)),
            ("item_sample_initial", Unsupported(LATER)),
            ("item_sample_interval", Unsupported(LATER)),
            ("component_levels", Unsupported(LATER)),
            ("pion_level", Unsupported(MEDIA)),
        ]),
    ),
    (
        "room",
        Section(&[
            ("auto_create", Leaf(Bool)),
            ("empty_timeout", Leaf(U32)),
            ("departure_timeout", Leaf(U32)),
            ("max_participants", Leaf(U32)),
            ("enable_remote_unmute", Leaf(Bool)),
            ("max_metadata_size", Leaf(U32)),
            ("max_room_name_length", Leaf(U32)),
            ("max_participant_identity_length", Leaf(U32)),
            ("enabled_codecs", Unsupported(MEDIA)),
            ("playout_delay", Unsupported(MEDIA)),
            ("sync_streams", Unsupported(MEDIA)),
            ("create_room_timeout", Unsupported(CLUSTER)),
            ("create_room_attempts", Unsupported(CLUSTER)),
            ("enable_full_room_in_webhooks", Unsupported(LATER)),
            ("update_batch_target_size", Unsupported(LATER)),
            ("room_configurations", Unsupported(LATER)),
        ]),
    ),
    (
        "limit",
        Section(&[
            ("max_metadata_size", Leaf(U32)),
            ("max_attributes_size", Leaf(U32)),
            ("max_room_name_length", Leaf(U32)),
            ("max_participant_identity_length", Leaf(U32)),
            ("max_participant_name_length", Leaf(U32)),
            ("max_api_request_body_size", Leaf(U64)),
            ("signal_message_size_limit", Leaf(U64)),
            ("agent_signal_message_size_limit", Unsupported(LATER)),
            ("num_tracks", Unsupported(MEDIA)),
            ("bytes_per_sec", Unsupported(MEDIA)),
            ("subscription_limit_video", Unsupported(MEDIA)),
            ("subscription_limit_audio", Unsupported(MEDIA)),
            ("max_data_blob_key_length", Unsupported(LATER)),
            ("max_data_blobs_size", Unsupported(LATER)),
            ("max_data_track_custom_encoding_length", Unsupported(MEDIA)),
        ]),
    ),
    (
        "webhook",
        Section(&[
            ("api_key", Leaf(Str)),
            ("urls", Leaf(StrList)),
            ("resource_url_notifier", Section(&[("max_depth", Leaf(U32)), ("max_age", Leaf(Duration))])),
            ("url_notifier", Unsupported(LATER)),
            ("filter_params", Section(&[("include_events", Leaf(StrList)), ("exclude_events", Leaf(StrList))])),
        ]),
    ),
    (
        "redis",
        Section(&[
            ("address", Leaf(Str)),
            ("username", Unsupported(CLUSTER)),
            ("password", Unsupported(CLUSTER)),
            ("db", Unsupported(CLUSTER)),
            ("use_tls", Unsupported(CLUSTER)),
            ("tls", Unsupported(CLUSTER)),
            ("sentinel_master_name", Unsupported(CLUSTER)),
            ("sentinel_username", Unsupported(CLUSTER)),
            ("sentinel_password", Unsupported(CLUSTER)),
            ("sentinel_addresses", Unsupported(CLUSTER)),
            ("cluster_addresses", Unsupported(CLUSTER)),
            ("max_redirects", Unsupported(CLUSTER)),
            ("dial_timeout", Unsupported(CLUSTER)),
            ("read_timeout", Unsupported(CLUSTER)),
            ("write_timeout", Unsupported(CLUSTER)),
            ("pool_timeout", Unsupported(CLUSTER)),
            ("pool_size", Unsupported(CLUSTER)),
        ]),
    ),
    ("rtc", Unsupported(MEDIA)),
    ("turn", Unsupported(MEDIA)),
    ("audio", Unsupported(MEDIA)),
    ("video", Unsupported(MEDIA)),
    ("enable_data_tracks", Unsupported(MEDIA)),
    ("enable_participant_data_blob", Unsupported(LATER)),
    ("prometheus_port", Unsupported(LATER)),
    ("prometheus", Unsupported(LATER)),
    ("debug_handler", Unsupported(LATER)),
    ("metric", Unsupported(LATER)),
    ("trace", Unsupported(LATER)),
    ("api", Unsupported(LATER)),
    ("ingress", Unsupported(NOT_RUN)),
    ("sip", Unsupported(NOT_RUN)),
    ("agents", Unsupported(NOT_RUN)),
    ("node_selector", Unsupported(CLUSTER)),
    ("signal_relay", Unsupported(CLUSTER)),
    ("psrpc", Unsupported(CLUSTER)),
    ("node_stats", Unsupported(CLUSTER)),
];
