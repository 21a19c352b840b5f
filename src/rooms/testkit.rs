//! Helpers shared by the room unit tests: a room, a joined session, what it received.

use std::{sync::Arc, time::Duration};

use prost::Message as _;
use tokio::time::Instant;

use super::{
    JoinSpec, Outbox,
    events::EventSink,
    participant::{Inbox, NoRefresh, SessionKey},
    room::{Room, RoomSpec},
};
use crate::{
    ids::{ParticipantIdentity, RoomName},
    proto::{self, signal_response::Message as Signal},
};

/// A room named `name` whose departure window is `departure_secs`.
pub fn room(name: &str, departure_secs: u64) -> Room {
    let spec = RoomSpec {
        empty_timeout: Duration::from_secs(300),
        departure_timeout: Duration::from_secs(departure_secs),
        max_participants: 0,
        metadata: String::new(),
    };
    Room::new(RoomName::new(name), spec, 1_000, Instant::now(), Arc::new(NoRefresh))
}

/// Who joins: `identity` with a default grant's permission, speaking `protocol`.
pub fn spec(identity: &str, protocol: i32) -> JoinSpec {
    JoinSpec {
        identity: ParticipantIdentity::new(identity),
        permission: crate::auth::VideoGrant::default().to_permission(),
        protocol,
        ..Default::default()
    }
}

/// Joins `identity` and returns its session key and queue; its socket counts as up (as once a
/// session task serves it).
pub fn join(r: &mut Room, identity: &str, protocol: i32) -> (SessionKey, Inbox) {
    let (key, inbox) = join_unconnected(r, identity, protocol);
    r.session_started(&key);
    (key, inbox)
}

/// Joins `identity` without its socket ever coming up (an upgrade that has not completed).
pub fn join_unconnected(r: &mut Room, identity: &str, protocol: i32) -> (SessionKey, Inbox) {
    let (outbox, inbox) = Outbox::channel();
    let sid = r.join(spec(identity, protocol), outbox, 2_000, "test").unwrap();
    (SessionKey { identity: ParticipantIdentity::new(identity), sid, connection: inbox.connection }, inbox)
}

/// An [`EventSink`] that keeps the names of the events it is given, in order.
#[derive(Debug, Default)]
pub struct RecordedEvents(pub parking_lot::Mutex<Vec<String>>);

impl EventSink for RecordedEvents {
    fn emit(&self, event: proto::WebhookEvent) {
        self.0.lock().push(event.event);
    }
}

/// A room like [`room`] whose events are recorded.
pub fn recorded_room(name: &str, departure_secs: u64) -> (Room, Arc<RecordedEvents>) {
    let mut r = room(name, departure_secs);
    let events = Arc::new(RecordedEvents::default());
    r.set_events(Arc::clone(&events) as Arc<dyn EventSink>);
    (r, events)
}

/// Everything queued for a session so far, decoded.
pub fn drain(inbox: &mut Inbox) -> Vec<Signal> {
    let mut out = Vec::new();
    while let Ok(frame) = inbox.frames.try_recv() {
        out.push(proto::SignalResponse::decode(frame).unwrap().message.unwrap());
    }
    out
}
