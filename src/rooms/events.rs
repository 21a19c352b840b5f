//! What happens in rooms, told to the app's backend (webhooks).
//!
//! A port: rooms say *what* happened, under their lock and so in the order it happened; the
//! webhook notifier (`crate::webhooks`) decides who hears it and how. [`EventSink::emit`]
//! never blocks and never fails from the room's point of view: delivery problems are the
//! notifier's to count and report.

use super::room::Room;
use crate::proto;

/// LiveKit's event names, and Usher's extras (sent only when a receiver asks for them).
pub mod names {
    /// A room came into being.
    pub const ROOM_STARTED: &str = "room_started";
    /// A room closed.
    pub const ROOM_FINISHED: &str = "room_finished";
    /// A participant joined.
    pub const PARTICIPANT_JOINED: &str = "participant_joined";
    /// A participant left.
    pub const PARTICIPANT_LEFT: &str = "participant_left";
    /// A participant went away before its connection was ever up (Usher: its WebSocket
    /// upgrade failed after the join).
    pub const PARTICIPANT_CONNECTION_ABORTED: &str = "participant_connection_aborted";
    /// A track was published.
    pub const TRACK_PUBLISHED: &str = "track_published";
    /// A track was unpublished.
    pub const TRACK_UNPUBLISHED: &str = "track_unpublished";
    /// Usher extra: a participant's name, metadata, attributes or permission changed.
    pub const PARTICIPANT_UPDATED: &str = "participant_updated";
    /// Usher extra: a room's metadata changed.
    pub const ROOM_METADATA_CHANGED: &str = "room_metadata_changed";
    /// Events LiveKit does not send; receivers must ask for them by name.
    pub const EXTRAS: &[&str] = &[PARTICIPANT_UPDATED, ROOM_METADATA_CHANGED];
}

/// Where rooms send their events. Must not block.
pub trait EventSink: Send + Sync + 'static {
    /// One event; `id` and `created_at` are the sink's to fill.
    fn emit(&self, event: proto::WebhookEvent);

    /// Whether anyone listens: rooms skip building events nobody will read.
    fn listening(&self) -> bool {
        true
    }
}

/// Sends nothing (no webhooks configured; unit tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn emit(&self, _: proto::WebhookEvent) {}

    fn listening(&self) -> bool {
        false
    }
}

impl std::fmt::Debug for dyn EventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventSink")
    }
}

impl Room {
    /// An event about the room (and a participant), with the full room as LiveKit sends it.
    pub fn emit(&self, event: &str, participant: Option<proto::ParticipantInfo>) {
        if !self.events.listening() {
            return;
        }
        self.events.emit(proto::WebhookEvent {
            event: event.to_string(),
            room: Some(self.snapshot.proto.clone()),
            participant,
            ..Default::default()
        });
    }

    /// A track event: room and participant reduced to their ids, as LiveKit sends them.
    pub(super) fn emit_track(&self, event: &str, participant: &proto::ParticipantInfo, track: proto::TrackInfo) {
        if !self.events.listening() {
            return;
        }
        self.events.emit(proto::WebhookEvent {
            event: event.to_string(),
            room: Some(proto::Room { sid: self.sid.to_string(), name: self.name.to_string(), ..Default::default() }),
            participant: Some(proto::ParticipantInfo {
                sid: participant.sid.clone(),
                identity: participant.identity.clone(),
                ..Default::default()
            }),
            track: Some(track),
            ..Default::default()
        });
    }

    /// Sets where this room's events go (the registry does, right after creating it).
    pub fn set_events(&mut self, events: std::sync::Arc<dyn EventSink>) {
        self.events = events;
    }
}
