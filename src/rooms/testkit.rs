//! Helpers shared by the room unit tests: a room, a joined session, what it received.

use std::{sync::Arc, time::Duration};

use prost::Message as _;
use tokio::time::Instant;

use super::{
    JoinSpec, Outbox,
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

/// Joins `identity` and returns its session key and queue.
pub fn join(r: &mut Room, identity: &str, protocol: i32) -> (SessionKey, Inbox) {
    let (outbox, inbox) = Outbox::channel();
    let sid = r.join(spec(identity, protocol), outbox, 2_000, "test").unwrap();
    (SessionKey { identity: ParticipantIdentity::new(identity), sid, connection: inbox.connection }, inbox)
}

/// Everything queued for a session so far, decoded.
pub fn drain(inbox: &mut Inbox) -> Vec<Signal> {
    let mut out = Vec::new();
    while let Ok(frame) = inbox.frames.try_recv() {
        out.push(proto::SignalResponse::decode(frame).unwrap().message.unwrap());
    }
    out
}
