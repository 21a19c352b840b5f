//! Who is in a room, and who is told what: join, leave, removal, and the broadcasts they cause.
//!
//! Everything here runs under the room's lock and pushes encoded frames straight into each
//! participant's bounded [`Outbox`], so every session sees the room's changes in the one order
//! the room made them. A participant whose queue is full is dropped (it stopped reading); its
//! departure is broadcast like any other, and that broadcast may find more stalled queues, so
//! dropping repeats until none is left.

use bytes::Bytes;
use prost::Message as _;
use tokio::time::Instant;

use super::{
    RoomError,
    participant::{JoinSpec, Outbox, Participant, SessionKey},
    room::Room,
};
use crate::{
    ids::{ParticipantIdentity, ParticipantSid},
    proto::{self, DisconnectReason, participant_info::State, signal_response::Message as Signal},
};

/// How often clients ping and how long silence means a lost connection (seconds), as LiveKit.
pub const PING_INTERVAL_SECS: i32 = 5;
/// See [`PING_INTERVAL_SECS`].
pub const PING_TIMEOUT_SECS: i32 = 15;
/// The signalling protocol version this server speaks.
pub const SERVER_PROTOCOL: i32 = 16;
/// How often batched presence updates go out (LiveKit: 3 s).
pub const UPDATE_BATCH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3);
/// Largest batch frame before it is split (LiveKit's `room.update_batch_target_size`).
const UPDATE_BATCH_TARGET_BYTES: usize = 128 * 1024;

/// A presence update waiting for the next batch.
#[derive(Debug, Clone)]
pub struct PendingUpdate {
    sid: ParticipantSid,
    info: proto::ParticipantInfo,
}

/// Encodes one `SignalResponse` frame.
pub(super) fn encode_signal(message: Signal) -> Bytes {
    Bytes::from(proto::SignalResponse { message: Some(message) }.encode_to_vec())
}

/// A leave asking the client for a full reconnect (a fresh join): clients of protocol 13 and
/// later read `action`, older ones `can_reconnect`; LiveKit sets one or the other.
pub fn reconnect_leave(protocol: i32, reason: DisconnectReason) -> Bytes {
    let modern = protocol >= 13;
    encode_signal(Signal::Leave(proto::LeaveRequest {
        can_reconnect: !modern,
        reason: reason as i32,
        action: if modern { proto::leave_request::Action::Reconnect as i32 } else { 0 },
        regions: None,
    }))
}

/// The frame that ends a session: a leave with `reason` and action DISCONNECT.
pub fn leave_frame(reason: DisconnectReason) -> Bytes {
    encode_signal(Signal::Leave(proto::LeaveRequest {
        can_reconnect: false,
        reason: reason as i32,
        action: proto::leave_request::Action::Disconnect as i32,
        regions: None,
    }))
}

/// What the server says of itself in join and reconnect responses.
pub(super) fn server_info(version: &str, region: &str) -> proto::ServerInfo {
    proto::ServerInfo {
        edition: proto::server_info::Edition::Standard as i32,
        version: version.to_string(),
        protocol: SERVER_PROTOCOL,
        region: region.to_string(),
        ..Default::default()
    }
}

/// ParticipantUpdate frames carrying `infos`, split past [`UPDATE_BATCH_TARGET_BYTES`].
pub(super) fn update_frames(infos: Vec<proto::ParticipantInfo>) -> Vec<Bytes> {
    let mut frames = Vec::new();
    let mut batch = Vec::new();
    let mut size = 0;
    for info in infos {
        size += info.encoded_len();
        batch.push(info);
        if size >= UPDATE_BATCH_TARGET_BYTES {
            frames.push(encode_signal(Signal::Update(proto::ParticipantUpdate {
                participants: std::mem::take(&mut batch),
            })));
            size = 0;
        }
    }
    if !batch.is_empty() {
        frames.push(encode_signal(Signal::Update(proto::ParticipantUpdate { participants: batch })));
    }
    frames
}

/// From this protocol on, clients reconcile participants by identity: an update with a new sid
/// replaces the old session, and they are never sent the old session's departure when it was
/// replaced by a newer one they will see (LiveKit leaves those out: the JS SDK removes by
/// identity, so the departure could remove the new session). See [`Room::superseded`].
pub(super) const PROTOCOL_IDENTITY_RECONCILE: i32 = 12;

fn update_frame(info: proto::ParticipantInfo) -> Bytes {
    encode_signal(Signal::Update(proto::ParticipantUpdate { participants: vec![info] }))
}

impl Room {
    /// Adds a participant session and queues its JoinResponse as its first frame. A session
    /// with the same identity is replaced (it gets a `DUPLICATE_IDENTITY` leave).
    pub fn join(
        &mut self,
        spec: JoinSpec,
        outbox: Outbox,
        now_ms: i64,
        server_version: &str,
    ) -> Result<ParticipantSid, RoomError> {
        // Closed room, revoked token, capacity (counting a session this one replaces as gone):
        // the same verdict `/rtc/validate` gives, checked before anything changes.
        self.check_join(&spec)?;
        self.replacing = Some((spec.identity.clone(), !spec.permission.hidden));
        if self.forwarded.contains_key(&spec.identity) {
            // The participant itself arrives where its copy was shown: the copy goes.
            let _ = self.remove_forwarded(spec.identity.as_str(), DisconnectReason::DuplicateIdentity);
        }
        if self.participants.contains_key(&spec.identity) {
            // The old session is told why and leaves like any other (others see it go, as
            // LiveKit broadcasts it), before the new one arrives.
            let reason = DisconnectReason::DuplicateIdentity;
            self.drop_participant(spec.identity.as_str(), reason, Some(leave_frame(reason)), Instant::now());
        }
        self.replacing = None;
        let mut p = Participant::new(spec, outbox, now_ms, super::participant::Home::new(self.name.clone()));
        let others = self.visible_infos(None);
        let join = proto::JoinResponse {
            room: Some(self.snapshot_after_join(&p)),
            participant: Some(p.to_proto()),
            other_participants: others,
            server_version: server_version.to_string(),
            // Two peer connections (v0), subscriber primary when it may subscribe (LiveKit's rule
            // for protocol > 2).
            subscriber_primary: p.spec.protocol > 2 && p.spec.permission.can_subscribe,
            server_region: p.spec.region.clone(),
            ping_timeout: PING_TIMEOUT_SECS,
            ping_interval: PING_INTERVAL_SECS,
            server_info: Some(server_info(server_version, &p.spec.region)),
            ..Default::default()
        };
        // The queue is fresh, so the first frame always fits.
        let _ = p.outbox.push(encode_signal(Signal::Join(join)));
        p.state = State::Joined;
        p.bump();
        let sid = p.sid.clone();
        let identity = p.spec.identity.clone();
        let info = p.to_proto();
        let hidden = p.hidden();
        self.participants.insert(identity.clone(), p);
        self.refresh();
        // The backend hears `participant_joined` once the socket is up (`session_started`).
        // Everyone, the newcomer included, learns of the JOINED state with the next batch (it
        // is not a publisher yet); its first refresh token goes now, as LiveKit's does.
        self.queue_presence(&sid, info, hidden);
        self.send_refresh_token(identity.as_str());
        Ok(sid)
    }

    /// The socket of `key` is up and served (the WebSocket upgrade completed): the backend
    /// hears that the participant joined. LiveKit sends `participant_joined` when a participant
    /// becomes active (its media connected); until the media plane exists, a served socket is
    /// Usher's "connected". A join whose upgrade fails ends as `participant_connection_aborted`
    /// with no `participant_joined` before it, as LiveKit's receivers expect.
    pub fn session_started(&mut self, key: &SessionKey) {
        let Some(p) = self.participants.get_mut(&key.identity) else { return };
        if p.sid != key.sid || p.outbox.connection() != key.connection || p.connected {
            return;
        }
        p.connected = true;
        let info = p.snapshot.proto.clone();
        self.emit(super::events::names::PARTICIPANT_JOINED, Some(info));
    }

    /// Whether `spec` could join now (validation without joining, for `/rtc/validate`).
    pub fn check_join(&self, spec: &JoinSpec) -> Result<(), RoomError> {
        if self.closed {
            return Err(RoomError::RoomNotFound);
        }
        if self.revoked.get(&spec.identity).is_some_and(|ts| spec.token_issued_at < *ts) {
            return Err(RoomError::TokenRevoked);
        }
        let replacing = self.participants.get(&spec.identity).is_some_and(|p| !p.dependent())
            || self.forwarded.contains_key(&spec.identity);
        let max = self.spec.max_participants;
        if max > 0 && !spec.dependent() && !replacing && self.occupancy() >= max {
            return Err(RoomError::RoomFull);
        }
        Ok(())
    }

    /// The [`Home`](super::participant::Home) of participant `identity`, for its session.
    pub fn home_of(&self, identity: &ParticipantIdentity) -> Option<std::sync::Arc<super::participant::Home>> {
        self.participants.get(identity).map(Participant::home)
    }

    /// Whether `key`'s socket is still its participant's current one.
    pub fn holds(&self, key: &SessionKey) -> bool {
        self.participants
            .get(&key.identity)
            .is_some_and(|p| p.sid == key.sid && p.outbox.connection() == key.connection)
    }

    /// The room as the newcomer will see it once it is counted.
    fn snapshot_after_join(&self, newcomer: &Participant) -> proto::Room {
        let mut room = self.snapshot.proto.clone();
        if !newcomer.dependent() {
            room.num_participants = room.num_participants.saturating_add(1);
        }
        room
    }

    /// Removes a participant by identity, telling it why first (RemoveParticipant). With
    /// `revoke_before` > 0, tokens for that identity valid from before then cannot rejoin
    /// (LiveKit's open-source server ignores `revoke_token_ts`; Usher honours it).
    pub fn remove(
        &mut self,
        identity: &str,
        reason: DisconnectReason,
        revoke_before: i64,
        now: Instant,
    ) -> Result<(), RoomError> {
        if self.forwarded.contains_key(identity) {
            // A forwarded copy: only this room's copy goes; the participant stays at home.
            return self.remove_forwarded(identity, reason);
        }
        let Some(p) = self.participants.get(identity) else {
            return Err(RoomError::ParticipantNotFound);
        };
        if revoke_before > 0 {
            // The latest cutoff wins; an earlier one never reopens the door.
            let cutoff = self.revoked.entry(p.spec.identity.clone()).or_insert(revoke_before);
            *cutoff = (*cutoff).max(revoke_before);
        }
        self.drop_participant(identity, reason, Some(leave_frame(reason)), now);
        Ok(())
    }

    /// Every participant's info (hidden ones included, as LiveKit's API lists them), forwarded
    /// copies after the participants.
    pub fn participant_infos(&self) -> Vec<proto::ParticipantInfo> {
        self.listed().map(|s| s.proto.clone()).collect()
    }

    /// What the API lists: participants, then forwarded copies.
    fn listed(&self) -> impl ExactSizeIterator<Item = &std::sync::Arc<super::ParticipantSnapshot>> {
        let all: Vec<_> = self.participants.values().map(|p| &p.snapshot).chain(self.forwarded_snapshots()).collect();
        all.into_iter()
    }

    /// What a participant sees of the others: visible participants and copies, except
    /// `except` (itself).
    pub(super) fn visible_infos(&self, except: Option<&str>) -> Vec<proto::ParticipantInfo> {
        self.participants
            .values()
            .filter(|o| !o.hidden() && except != Some(o.spec.identity.as_str()))
            .map(|o| &o.snapshot)
            .chain(self.forwarded_snapshots().filter(|s| !s.proto.permission.as_ref().is_some_and(|p| p.hidden)))
            .map(|s| s.proto.clone())
            .collect()
    }

    /// Every participant's snapshot with the list's encoding, for ListParticipants. Kept
    /// between calls and rebuilt only when a participant changed, came or went: a busy
    /// dashboard polling a large room costs one `Arc` clone a call, not an `Arc` clone per
    /// participant plus a copy of every entry.
    pub fn participant_list(&mut self) -> std::sync::Arc<super::SnapshotList<proto::ParticipantInfo>> {
        if let Some(list) = &self.participant_list
            && list.is_current(self.listed())
        {
            return std::sync::Arc::clone(list);
        }
        let list = std::sync::Arc::new(super::SnapshotList::new(self.listed().map(std::sync::Arc::clone).collect()));
        self.participant_list = Some(std::sync::Arc::clone(&list));
        list
    }

    /// One participant's info.
    pub fn participant_info(&self, identity: &str) -> Result<proto::ParticipantInfo, RoomError> {
        self.participant_snapshot(identity).map(|s| s.proto.clone())
    }

    /// One participant's snapshot.
    pub fn participant_snapshot(
        &self,
        identity: &str,
    ) -> Result<std::sync::Arc<super::ParticipantSnapshot>, RoomError> {
        self.participants
            .get(identity)
            .map(Participant::snapshot)
            .or_else(|| self.forwarded.get(identity).map(|c| std::sync::Arc::clone(&c.snapshot)))
            .ok_or(RoomError::ParticipantNotFound)
    }

    /// Sends everyone a leave with `reason` and drops them all (room closing, server stop).
    pub fn disconnect_all(&mut self, reason: DisconnectReason) {
        let frame = leave_frame(reason);
        let gone = std::mem::take(&mut self.participants);
        self.refresh();
        for mut p in gone.into_values() {
            p.outbox.push_or_kick(frame.clone());
            self.emit_departure(&mut p, reason);
        }
    }

    /// Tells the backend a participant left: its tracks unpublished, then the departure (as
    /// LiveKit orders them). Clears its tracks and bumps its version; returns its last info.
    fn emit_departure(&self, p: &mut Participant, reason: DisconnectReason) -> proto::ParticipantInfo {
        let before = p.snapshot.proto.clone();
        for track in std::mem::take(&mut p.tracks) {
            self.emit_track(super::events::names::TRACK_UNPUBLISHED, &before, track);
        }
        p.state = State::Disconnected;
        p.bump();
        let mut info = p.to_proto();
        info.disconnect_reason = reason as i32;
        let event = if p.connected {
            super::events::names::PARTICIPANT_LEFT
        } else {
            super::events::names::PARTICIPANT_CONNECTION_ABORTED
        };
        self.emit(event, Some(info.clone()));
        info
    }

    /// Sends one frame to every participant; stalled ones are dropped.
    pub(super) fn send_to_all(&mut self, frame: &Bytes) {
        let stalled: Vec<_> = self
            .participants
            .values()
            .filter(|p| p.outbox.push(frame.clone()).is_err())
            .map(|p| p.spec.identity.clone())
            .collect();
        self.drop_stalled(stalled, Instant::now());
    }

    /// Removes a participant: `last_words` (if any) go to it first, everyone else hears of its
    /// departure (at once for publishers, batched otherwise).
    pub(super) fn drop_participant(
        &mut self,
        identity: &str,
        reason: DisconnectReason,
        last_words: Option<Bytes>,
        now: Instant,
    ) {
        let Some(mut p) = self.participants.remove(identity) else { return };
        if let Some(frame) = last_words {
            p.outbox.push_or_kick(frame);
        }
        p.state = State::Disconnected;
        if !p.dependent() && self.participant_count() == 0 {
            self.last_departure = Some(now);
        }
        // The room as it is without them, for the events and everyone after.
        self.refresh();
        // Its tracks end with it; the last info others get lists none.
        let mut info = self.emit_departure(&mut p, reason);
        info.disconnect_reason = reason as i32;
        tracing::info!(room = %self.name, participant = %p.spec.identity, reason = ?reason, "participant left");
        // Dropping `p` drops its outbox: the session writes what is queued, then closes.
        let (sid, hidden, publisher) = (p.sid.clone(), p.hidden(), p.is_publisher);
        if !hidden {
            self.record_departure(&sid, &p.spec.identity, p.version, reason, now);
        }
        drop(p);
        // Departures of publishers go out at once (their tracks vanish); others are batched.
        if publisher {
            self.broadcast(&sid, info, hidden, false);
        } else if !hidden {
            self.queue_presence(&sid, info, false);
        }
    }

    /// Holds a presence update about a non-publisher for the next [`Self::flush_updates`], so
    /// a join storm costs one update per participant per interval instead of one per join.
    /// Keyed by session: a new session of the same identity never erases the old one's
    /// departure. A hidden participant's own update is not batched: only it hears of itself.
    pub(super) fn queue_presence(&mut self, sid: &ParticipantSid, info: proto::ParticipantInfo, hidden: bool) {
        if hidden {
            self.broadcast(sid, info, true, true);
            return;
        }
        match self.pending.iter_mut().find(|u| &u.sid == sid) {
            Some(u) => u.info = info,
            None => self.pending.push(PendingUpdate { sid: sid.clone(), info }),
        }
    }

    /// Sends the batched presence updates: one frame (split past 128 KiB) with every pending
    /// info to everyone (hidden participants are never batched). Runs every
    /// [`UPDATE_BATCH_INTERVAL`].
    pub fn flush_updates(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let infos: Vec<_> = std::mem::take(&mut self.pending).into_iter().map(|u| u.info).collect();
        // Clients that reconcile by identity get the batch without superseded departures.
        let reconciling = infos
            .iter()
            .any(|i| self.superseded(i))
            .then(|| update_frames(infos.iter().filter(|i| !self.superseded(i)).cloned().collect()));
        let frames = update_frames(infos);
        let mut stalled = Vec::new();
        for p in self.participants.values() {
            let frames = match &reconciling {
                Some(fewer) if p.spec.protocol >= PROTOCOL_IDENTITY_RECONCILE => fewer,
                _ => &frames,
            };
            if frames.iter().any(|f| p.outbox.push(f.clone()).is_err()) {
                stalled.push(p.spec.identity.clone());
            }
        }
        self.drop_stalled(stalled, Instant::now());
    }

    /// Tells participants about `info` (the participant `about`). Hidden participants are
    /// seen by nobody else; `include_self` decides whether `about` hears of its own change.
    pub(super) fn broadcast(
        &mut self,
        about: &ParticipantSid,
        info: proto::ParticipantInfo,
        hidden: bool,
        include_self: bool,
    ) {
        // A newer immediate update supersedes a pending one about the same session.
        self.pending.retain(|u| &u.sid != about);
        let old_clients_only = self.superseded(&info);
        let frame = update_frame(info);
        let stalled: Vec<_> = self
            .participants
            .values()
            .filter(|p| if &p.sid == about { include_self } else { !hidden })
            .filter(|p| !old_clients_only || p.spec.protocol < PROTOCOL_IDENTITY_RECONCILE)
            .filter(|p| p.outbox.push(frame.clone()).is_err())
            .map(|p| p.spec.identity.clone())
            .collect();
        self.drop_stalled(stalled, Instant::now());
    }

    /// Whether `info` is the departure of a session (or copy) that a newer, visible session of
    /// the same identity replaces: clients from [`PROTOCOL_IDENTITY_RECONCILE`] on are not sent
    /// it, since the newcomer's info (another sid) replaces it for them. A departure whose
    /// replacement they will not see (hidden, or gone again), or a copy whose source session
    /// was replaced elsewhere, reaches everyone: no one is left looking at a ghost.
    pub(super) fn superseded(&self, info: &proto::ParticipantInfo) -> bool {
        info.state == State::Disconnected as i32
            && info.disconnect_reason == DisconnectReason::DuplicateIdentity as i32
            && (self
                .replacing
                .as_ref()
                .is_some_and(|(identity, visible)| *visible && identity.as_str() == info.identity)
                || self
                    .participants
                    .get(info.identity.as_str())
                    .is_some_and(|p| p.sid.as_str() != info.sid && !p.hidden()))
    }

    /// Drops participants whose queues overflowed, closing their sockets at once.
    ///
    /// Each drop broadcasts a departure that can overflow further queues; those join the
    /// list and the outermost call works through it, so the stack stays flat however many
    /// clients stall at once.
    pub(super) fn drop_stalled(&mut self, stalled: Vec<crate::ids::ParticipantIdentity>, now: Instant) {
        let busy = !self.stalled.is_empty();
        self.stalled.extend(stalled);
        if busy {
            return;
        }
        // Each stays at the front while it is dropped, so nested calls see the list busy.
        while let Some(identity) = self.stalled.front().cloned() {
            if let Some(p) = self.participants.get(&identity) {
                // The session logs the disconnect once, in its own span, when its write sees the kick.
                tracing::debug!(room = %self.name, participant = %identity, "outbound queue full");
                p.outbox.kick();
            }
            self.drop_participant(identity.as_str(), DisconnectReason::SignalClose, None, now);
            self.stalled.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rooms::testkit::{self, drain};

    use super::*;
    use crate::rooms::participant::Inbox;

    fn room() -> Room {
        testkit::room("r", 20)
    }

    fn who(identity: &str) -> JoinSpec {
        testkit::spec(identity, 16)
    }

    fn join(r: &mut Room, identity: &str) -> (SessionKey, Inbox) {
        testkit::join(r, identity, 16)
    }

    #[test]
    fn the_backend_hears_of_a_join_once_its_socket_is_up_and_of_an_aborted_one_as_such() {
        let (mut r, events) = testkit::recorded_room("r", 20);
        let (alice, _a) = testkit::join_unconnected(&mut r, "alice", 16);
        assert!(events.0.lock().is_empty(), "no participant_joined before the socket is up");
        r.session_started(&alice);
        r.session_started(&alice);
        assert_eq!(*events.0.lock(), ["participant_joined"], "once, however often the session says so");
        r.remove("alice", DisconnectReason::ParticipantRemoved, 0, Instant::now()).unwrap();
        assert_eq!(*events.0.lock(), ["participant_joined", "participant_left"]);

        // An upgrade that never completed: no joined, and the departure is an aborted connection.
        events.0.lock().clear();
        let (_bob, _b) = testkit::join_unconnected(&mut r, "bob", 16);
        r.remove("bob", DisconnectReason::JoinFailure, 0, Instant::now()).unwrap();
        assert_eq!(*events.0.lock(), ["participant_connection_aborted"]);

        // A key from a replaced session does not announce the new one.
        events.0.lock().clear();
        let (old, _c1) = testkit::join_unconnected(&mut r, "carol", 16);
        let (new, _c2) = testkit::join_unconnected(&mut r, "carol", 16);
        r.session_started(&old);
        assert_eq!(*events.0.lock(), ["participant_connection_aborted"], "the replaced session aborted");
        r.session_started(&new);
        assert_eq!(*events.0.lock(), ["participant_connection_aborted", "participant_joined"]);
    }

    #[test]
    fn the_backend_hears_one_update_per_change_and_none_before_the_join() {
        let (mut r, events) = testkit::recorded_room("r", 20);
        let (dave, _d) = testkit::join_unconnected(&mut r, "dave", 16);
        let change = || crate::rooms::ParticipantChange { metadata: "m".into(), ..Default::default() };
        r.update_participant("dave", change()).unwrap();
        assert!(events.0.lock().is_empty(), "no participant_updated before participant_joined");
        r.session_started(&dave);
        // Metadata and permission in one call: one participant_updated.
        let mut both = change();
        both.metadata = "m2".into();
        both.permission = Some(proto::ParticipantPermission { can_subscribe: true, ..Default::default() });
        r.update_participant("dave", both).unwrap();
        assert_eq!(*events.0.lock(), ["participant_joined", "participant_updated"]);
    }

    #[test]
    fn a_replaced_session_s_departure_reaches_current_clients_only_if_they_cannot_see_the_new_one() {
        let mut r = room();
        let (_, mut current) = join(&mut r, "current");
        let (_, mut old) = testkit::join(&mut r, "old-client", 11);
        let (_, _first) = join(&mut r, "alice");
        r.flush_updates();
        drain(&mut current);
        drain(&mut old);
        let alice_gone = |seen: &[Signal]| {
            seen.iter().any(|m| {
                matches!(m, Signal::Update(u)
                    if u.participants.iter().any(|p| p.identity == "alice" && p.state == State::Disconnected as i32))
            })
        };
        // Replaced by a visible session: only the old client hears the first one went.
        let (_, _second) = join(&mut r, "alice");
        r.flush_updates();
        assert!(!alice_gone(&drain(&mut current)), "protocol 16 replaces it by identity");
        assert!(alice_gone(&drain(&mut old)), "protocol 11 is told");
        // Replaced by a hidden session, which nobody else sees: everyone hears the visible one
        // went, or it would stay on their screens.
        let mut hidden = who("alice");
        hidden.permission.hidden = true;
        let (outbox, _third) = Outbox::channel();
        r.join(hidden, outbox, 3_000, "test").unwrap();
        r.flush_updates();
        assert!(alice_gone(&drain(&mut current)));
        assert!(alice_gone(&drain(&mut old)));
    }

    #[test]
    fn join_response_comes_first_then_everyone_sees_the_newcomer() {
        let mut r = room();
        let (_, mut a) = join(&mut r, "alice");
        assert_eq!(a.frames.len(), 1, "presence waits for the batch");
        r.flush_updates();
        let first = drain(&mut a);
        let Signal::Join(j) = &first[0] else { panic!("first frame must be join: {first:?}") };
        assert_eq!(j.participant.as_ref().unwrap().identity, "alice");
        assert!(j.participant.as_ref().unwrap().permission.is_some());
        assert!(!j.server_info.as_ref().unwrap().version.is_empty());
        assert_eq!(j.room.as_ref().unwrap().num_participants, 1);
        assert!(j.other_participants.is_empty());
        assert!(matches!(&first[1], Signal::Update(u) if u.participants[0].state == State::Joined as i32));

        let (_, mut b) = join(&mut r, "bob");
        let (_, mut c) = join(&mut r, "carol");
        let Signal::Join(j) = &drain(&mut b)[0] else { panic!() };
        assert_eq!(j.other_participants.iter().map(|p| p.identity.as_str()).collect::<Vec<_>>(), ["alice"]);
        drain(&mut c);
        assert!(drain(&mut a).is_empty());
        // One batch carries both newcomers.
        r.flush_updates();
        let seen = drain(&mut a);
        let [Signal::Update(u)] = &seen[..] else { panic!("{seen:?}") };
        assert_eq!(u.participants.iter().map(|p| p.identity.as_str()).collect::<Vec<_>>(), ["bob", "carol"]);
        r.flush_updates();
        assert!(drain(&mut a).is_empty(), "a flush with nothing pending sends nothing");
        assert_eq!(r.snapshot().proto.num_participants, 3);
    }

    #[test]
    fn leaving_is_broadcast_with_the_reason_and_a_higher_version() {
        let mut r = room();
        let (a_sid, _a) = join(&mut r, "alice");
        let (_, mut b) = join(&mut r, "bob");
        drain(&mut b);
        r.flush_updates();
        drain(&mut b);
        let before = r.participant_info("alice").unwrap().version;
        assert!(r.leave(&a_sid, DisconnectReason::ClientInitiated, Instant::now()));
        r.flush_updates();
        let [Signal::Update(u)] = &drain(&mut b)[..] else { panic!() };
        let info = &u.participants[0];
        assert_eq!(
            (info.state, info.disconnect_reason),
            (State::Disconnected as i32, DisconnectReason::ClientInitiated as i32)
        );
        assert!(info.version > before);
        // A stale sid does nothing.
        assert!(!r.leave(&a_sid, DisconnectReason::ClientInitiated, Instant::now()));
        assert_eq!(r.participant_infos().len(), 1);
    }

    #[test]
    fn a_departure_survives_a_hidden_rejoin_in_the_same_batch() {
        let mut r = room();
        let (_, mut obs) = join(&mut r, "observer");
        let (x_sid, _x) = join(&mut r, "x");
        r.flush_updates();
        drain(&mut obs);
        assert!(r.leave(&x_sid, DisconnectReason::ClientInitiated, Instant::now()));
        let mut ghost = who("x");
        ghost.permission.hidden = true;
        let (outbox, _g) = Outbox::channel();
        r.join(ghost, outbox, 0, "t").unwrap();
        r.flush_updates();
        let seen = drain(&mut obs);
        let infos: Vec<_> = seen
            .iter()
            .filter_map(|m| if let Signal::Update(u) = m { Some(u.participants.clone()) } else { None })
            .flatten()
            .collect();
        assert_eq!(infos.len(), 1, "only the old session's departure, nothing of the hidden one: {infos:?}");
        assert_eq!((infos[0].sid.as_str(), infos[0].state), (x_sid.sid.as_str(), State::Disconnected as i32));
    }

    #[test]
    fn a_second_session_replaces_the_first() {
        let mut r = room();
        let (old_sid, mut old) = join(&mut r, "alice");
        drain(&mut old);
        let (new_sid, _new) = join(&mut r, "alice");
        assert_ne!(old_sid, new_sid);
        let frames = drain(&mut old);
        assert!(matches!(&frames[..], [Signal::Leave(l)] if l.reason == DisconnectReason::DuplicateIdentity as i32));
        // The old session's late cleanup must not remove the new one.
        assert!(!r.leave(&old_sid, DisconnectReason::SignalClose, Instant::now()));
        assert!(!r.detach(&old_sid, Instant::now()));
        assert_eq!(r.participant_info("alice").unwrap().sid, new_sid.sid.as_str());
    }

    #[test]
    fn removal_sends_the_leave_then_closes_the_queue() {
        let mut r = room();
        let (_, mut a) = join(&mut r, "alice");
        drain(&mut a);
        r.remove("alice", DisconnectReason::ParticipantRemoved, 0, Instant::now()).unwrap();
        let frames = drain(&mut a);
        assert!(matches!(&frames[..], [Signal::Leave(l)] if l.reason == DisconnectReason::ParticipantRemoved as i32));
        assert!(a.frames.is_closed());
        assert_eq!(
            r.remove("alice", DisconnectReason::ParticipantRemoved, 0, Instant::now()),
            Err(RoomError::ParticipantNotFound)
        );
    }

    #[test]
    fn hidden_participants_are_invisible_to_others() {
        let mut r = room();
        let (_, mut a) = join(&mut r, "alice");
        r.flush_updates();
        drain(&mut a);
        let mut ghost = who("ghost");
        ghost.permission.hidden = true;
        let (outbox, mut g) = Outbox::channel();
        r.join(ghost, outbox, 0, "test").unwrap();
        r.flush_updates();
        assert!(drain(&mut a).is_empty(), "alice must not hear of the hidden participant");
        assert!(drain(&mut g).len() == 2, "the hidden one sees its own join and update");
        assert_eq!(r.participant_infos().len(), 2, "the API still lists it");
    }

    #[test]
    fn a_full_room_refuses_and_a_stalled_reader_is_dropped() {
        let mut r = room();
        r.spec.max_participants = 1;
        let (_, _a) = join(&mut r, "alice");
        let (outbox, _b) = Outbox::channel();
        assert_eq!(r.join(who("bob"), outbox, 0, "t"), Err(RoomError::RoomFull));

        let mut r = room();
        let (outbox, mut slow) = Outbox::with_capacity(2);
        r.join(who("slow"), outbox, 0, "t").unwrap();
        r.flush_updates(); // join + own update fill the queue
        let (_, mut fast) = join(&mut r, "fast");
        r.flush_updates(); // the batch about "fast" does not fit
        assert!(r.participant_info("slow").is_err(), "the stalled reader is dropped");
        r.flush_updates();
        let seen = drain(&mut fast);
        assert!(seen.iter().any(|s| matches!(s, Signal::Update(u) if u.participants[0].identity == "slow"
            && u.participants[0].state == State::Disconnected as i32)));
        assert_eq!(drain(&mut slow).len(), 2, "what was queued stays readable");
    }

    #[test]
    fn count_changes_are_announced_once() {
        let mut r = room();
        let (_, mut a) = join(&mut r, "alice");
        let (_, mut b) = join(&mut r, "bob");
        drain(&mut a);
        drain(&mut b);
        r.announce_counts();
        for inbox in [&mut a, &mut b] {
            let seen = drain(inbox);
            assert!(
                matches!(&seen[..], [Signal::RoomUpdate(u)] if u.room.as_ref().unwrap().num_participants == 2),
                "{seen:?}"
            );
        }
        r.announce_counts();
        assert!(drain(&mut a).is_empty(), "unchanged counts are not repeated");
    }

    #[test]
    fn metadata_change_reaches_everyone_as_room_update() {
        let mut r = room();
        let (_, mut a) = join(&mut r, "alice");
        drain(&mut a);
        assert!(r.set_metadata("new".into()));
        assert!(matches!(&drain(&mut a)[..], [Signal::RoomUpdate(u)] if u.room.as_ref().unwrap().metadata == "new"));
        r.close(DisconnectReason::RoomDeleted);
        assert!(matches!(&drain(&mut a)[..], [Signal::Leave(l)] if l.reason == DisconnectReason::RoomDeleted as i32));
        assert!(a.frames.is_closed());
    }

    #[test]
    fn the_participant_list_is_reused_until_someone_changes() {
        let mut r = room();
        let (_, _a) = join(&mut r, "alice");
        let first = r.participant_list();
        assert!(std::sync::Arc::ptr_eq(&first, &r.participant_list()), "nothing changed: the same list");
        let decoded = proto::ListParticipantsResponse::decode(first.encoded.clone()).unwrap();
        assert_eq!(decoded.participants, r.participant_infos());

        let change = crate::rooms::ParticipantChange { metadata: "new".into(), ..Default::default() };
        r.update_participant("alice", change).unwrap();
        let second = r.participant_list();
        assert!(!std::sync::Arc::ptr_eq(&first, &second));
        assert_eq!(
            proto::ListParticipantsResponse::decode(second.encoded.clone()).unwrap().participants[0].metadata,
            "new"
        );

        let (bob, _b) = join(&mut r, "bob");
        let third = r.participant_list();
        assert_eq!(third.items.len(), 2);
        r.leave(&bob, DisconnectReason::ClientInitiated, Instant::now());
        let fourth = r.participant_list();
        assert_eq!(proto::ListParticipantsResponse::decode(fourth.encoded.clone()).unwrap().participants.len(), 1);
    }
}
