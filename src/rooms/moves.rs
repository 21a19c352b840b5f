//! Moving a connected participant to another room (MoveParticipant).
//!
//! A move runs in two phases so that no two room locks are ever held together: the source
//! takes the participant out ([`Room::move_out`]), then the destination takes it in
//! ([`Room::move_in`]). Between the two the participant is in no room, so no observer ever
//! sees it in two rooms at once; everything that can refuse a move is checked before the
//! first phase ([`Room::check_move_out`], [`Room::check_move_in`]), so a refused move changes
//! nothing. The participant keeps its socket, sid, tracks and subscriptions; its session
//! follows it through the shared [`Home`](super::participant::Home).
//!
//! Observers in the source see it leave (`MIGRATION`, LiveKit's reason for a participant that
//! went on elsewhere); observers in the destination see it join with its tracks; the participant
//! itself gets `room_moved` with the new room, a token for it, itself and the others there.

use tokio::time::Instant;

use super::{
    RoomError,
    membership::{encode_signal, leave_frame},
    participant::{Participant, SessionEnd},
    room::Room,
};
use crate::{
    ids::{ParticipantSid, RoomName},
    proto::{self, DisconnectReason, participant_info::State, signal_response::Message as Signal},
};

/// The first protocol version that understands `room_moved`.
const PROTOCOL_MOVES: i32 = 16;

/// A participant between two rooms: out of the source, not yet in the destination.
#[derive(Debug)]
pub struct Moving {
    participant: Participant,
}

impl Moving {
    /// Gives up a move whose destination could not be had: the participant is told why (a
    /// leave) and its session ends; it is in no room any more.
    pub fn abandon(self, reason: DisconnectReason) {
        let p = self.participant;
        tracing::warn!(participant = %p.spec.identity, ?reason, "move abandoned; the participant's session ends");
        p.home.finish_move(p.home.room(), p.outbox.connection());
        p.outbox.push_or_kick(leave_frame(reason));
    }
}

impl Room {
    /// Whether `identity` could be moved out of this room now. Nothing changes.
    pub fn check_move_out(&self, identity: &str) -> Result<ParticipantSid, RoomError> {
        if self.closed {
            return Err(RoomError::ParticipantNotFound);
        }
        if self.forwarded.contains_key(identity) {
            return Err(RoomError::Forwarded);
        }
        let p = self.participants.get(identity).ok_or(RoomError::ParticipantNotFound)?;
        if p.dependent() {
            return Err(RoomError::CannotMove("agents and egress cannot be moved"));
        }
        if p.spec.protocol < PROTOCOL_MOVES {
            // LiveKit Cloud's answer, word for word: the client could not follow.
            return Err(RoomError::CannotMove("participant client version does not support moving"));
        }
        if p.detached_since.is_some() || !p.connected {
            return Err(RoomError::CannotMove("participant is not connected"));
        }
        Ok(p.sid.clone())
    }

    /// Whether participant `sid` (`identity`) could arrive in this room from `from` now.
    /// Its own forwarded copy does not stand in the way: the participant takes its place.
    /// Nothing changes.
    pub fn check_move_in(&self, identity: &str, sid: &ParticipantSid, from: &RoomName) -> Result<(), RoomError> {
        let own_copy =
            self.forwarded.get(identity).is_some_and(|c| c.snapshot.proto.sid == sid.as_str() && &c.from == from);
        if !own_copy && self.has_identity(identity) {
            return Err(RoomError::AlreadyInRoom);
        }
        let max = self.spec.max_participants;
        // The copy's place becomes the participant's.
        let taken = self.occupancy().saturating_sub(u32::from(own_copy));
        if max > 0 && taken >= max {
            return Err(RoomError::RoomFull);
        }
        Ok(())
    }

    /// Promises `identity` a place here for a move about to start ([`Self::check_move_in`],
    /// then the place is held until [`Self::move_in`] or [`Self::release_arrival`]), so a join
    /// racing the move cannot fill the room between the phases.
    pub fn reserve_arrival(&mut self, identity: &str, sid: &ParticipantSid, from: &RoomName) -> Result<(), RoomError> {
        self.check_move_in(identity, sid, from)?;
        self.arriving.insert(crate::ids::ParticipantIdentity::new(identity));
        Ok(())
    }

    /// Gives back a place promised by [`Self::reserve_arrival`] to a move that did not start.
    pub fn release_arrival(&mut self, identity: &str) {
        self.arriving.retain(|a| a.as_str() != identity);
    }

    /// Phase one: takes `identity` out of this room (checked again, under this lock). Others
    /// see it leave with `MIGRATION`; its session's requests wait until it arrives (see
    /// [`super::Registry::with_session`]).
    pub fn move_out(&mut self, identity: &str, now: Instant) -> Result<Moving, RoomError> {
        self.check_move_out(identity)?;
        let (home, connection) = self
            .participants
            .get(identity)
            .map(|p| (p.home(), p.outbox.connection()))
            .ok_or(RoomError::ParticipantNotFound)?;
        if !home.begin_move(connection) {
            return Err(RoomError::CannotMove("participant is not connected"));
        }
        let mut p = self.participants.remove(identity).ok_or(RoomError::ParticipantNotFound)?;
        p.bump();
        let mut info = p.snapshot.proto.clone();
        info.state = State::Disconnected as i32;
        info.disconnect_reason = DisconnectReason::Migration as i32;
        info.tracks.clear();
        tracing::info!(room = %self.name, participant = %identity, "participant moving out");
        if !p.dependent() && self.participant_count() == 0 {
            self.last_departure = Some(now);
        }
        self.refresh();
        // For the backend, its tracks leave this room with it (and arrive in the next).
        for track in &p.tracks {
            self.emit_track(super::events::names::TRACK_UNPUBLISHED, &p.snapshot.proto, track.clone());
        }
        self.emit(super::events::names::PARTICIPANT_LEFT, Some(info.clone()));
        let (sid, hidden) = (p.sid.clone(), p.hidden());
        if !hidden {
            self.record_departure(&sid, &p.spec.identity, p.version, DisconnectReason::Migration, now);
        }
        // At once, publisher or not (no presence batch): the arrival in the destination is
        // sent at once too, so no observer can see the participant in both rooms while one
        // room's batch is waiting. Moves come one RPC at a time, not in storms.
        self.broadcast(&sid, info, hidden, false);
        Ok(Moving { participant: p })
    }

    /// Phase two: `moving` arrives here. It gets `room_moved`; others see it join; its own
    /// forwarded copy here gives way to it. A session of the same identity that joined here
    /// while the move was under way is newer and wins, as the newest session always does: the
    /// mover is told `DUPLICATE_IDENTITY` and its session ends (`AlreadyInRoom`). A session
    /// that ended on the way ends here.
    pub fn move_in(&mut self, moving: Moving, now: Instant) -> Result<(), RoomError> {
        let mut p = moving.participant;
        let identity = p.spec.identity.clone();
        self.arriving.remove(&identity);
        if self.participants.contains_key(&identity) {
            tracing::info!(room = %self.name, participant = %identity, "move gave way to a newer session of the same identity");
            Moving { participant: p }.abandon(DisconnectReason::DuplicateIdentity);
            return Err(RoomError::AlreadyInRoom);
        }
        if self.forwarded.contains_key(&identity) {
            let _ = self.remove_forwarded(identity.as_str(), DisconnectReason::DuplicateIdentity);
        }
        p.spec.grant.room = self.name.to_string();
        // Subscriptions named tracks of the old room; the media plane re-subscribes here.
        p.subscriptions.clear();
        let orphaned = p.home.finish_move(self.name.clone(), p.outbox.connection());
        p.bump();
        let (sid, hidden) = (p.sid.clone(), p.hidden());
        let info = p.snapshot.proto.clone();
        let (grant, expiry) = (p.spec.grant.clone(), p.spec.token_expires_at);
        let others = self.visible_infos(None);
        self.participants.insert(identity.clone(), p);
        self.refresh();
        tracing::info!(room = %self.name, participant = %identity, "participant moved in");
        self.emit(super::events::names::PARTICIPANT_JOINED, Some(info.clone()));
        for track in &info.tracks {
            self.emit_track(super::events::names::TRACK_PUBLISHED, &info, track.clone());
        }

        // The token names this room; everything else in the grant is kept.
        let token = self.refresher.refresh(self.name.as_str(), &info, &grant, expiry).unwrap_or_default();
        let moved = proto::RoomMovedResponse {
            room: Some(self.snapshot.proto.clone()),
            token,
            participant: Some(info.clone()),
            other_participants: others,
        };
        if let Some(p) = self.participants.get(&identity) {
            p.outbox.push_or_kick(encode_signal(Signal::RoomMoved(moved)));
        }
        // At once, as the departure from the source was (see `move_out`).
        self.broadcast(&sid, info, hidden, false);

        match orphaned {
            Some(SessionEnd::Left(reason)) => self.drop_participant(identity.as_str(), reason, None, now),
            Some(SessionEnd::Lost) => {
                if self.resume_window().is_zero() {
                    self.drop_participant(identity.as_str(), DisconnectReason::SignalClose, None, now);
                } else if let Some(p) = self.participants.get_mut(&identity) {
                    p.detached_since = Some(now);
                }
            }
            None => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::rooms::testkit::{self, drain};

    use super::*;
    use crate::{ids::ParticipantIdentity, rooms::participant::Inbox};

    fn room(name: &str) -> Room {
        testkit::room(name, 20)
    }

    fn join(r: &mut Room, identity: &str, protocol: i32) -> Inbox {
        testkit::join(r, identity, protocol).1
    }

    #[test]
    fn a_move_takes_the_participant_out_then_in_with_its_home() {
        let (mut a, mut b) = (room("a"), room("b"));
        let mut alice = join(&mut a, "alice", 16);
        let home = a.home_of(&ParticipantIdentity::new("alice")).unwrap();
        let connection = alice.connection;
        drain(&mut alice);
        a.check_move_out("alice").unwrap();
        b.check_move_in("alice", &ParticipantSid::new("PA_x"), &RoomName::new("a")).unwrap();
        let moving = a.move_out("alice", Instant::now()).unwrap();
        assert!(a.participant_info("alice").is_err(), "out of the source at once");
        assert_eq!(home.settle(connection, SessionEnd::Lost), None, "a session ending mid-move waits for the arrival");
        b.move_in(moving, Instant::now()).unwrap();
        assert_eq!(home.room().as_str(), "b");
        let seen = drain(&mut alice);
        assert!(matches!(&seen[..], [Signal::RoomMoved(m)] if m.room.as_ref().unwrap().name == "b"), "{seen:?}");
        // The end that happened on the way applies on arrival: the participant waits for a resume.
        let p = b.participants.get("alice").unwrap();
        assert!(p.detached_since.is_some());
        assert_eq!(p.spec.grant.room, "b");
    }

    #[test]
    fn a_leave_during_a_move_removes_the_participant_on_arrival() {
        let (mut a, mut b) = (room("a"), room("b"));
        let alice = join(&mut a, "alice", 16);
        let home = a.home_of(&ParticipantIdentity::new("alice")).unwrap();
        let moving = a.move_out("alice", Instant::now()).unwrap();
        assert_eq!(home.settle(alice.connection, SessionEnd::Left(DisconnectReason::ClientInitiated)), None);
        b.move_in(moving, Instant::now()).unwrap();
        assert!(b.participant_info("alice").is_err());
        assert_eq!(b.participant_count(), 0);
    }

    #[test]
    fn a_session_that_ended_cannot_start_a_move() {
        let mut a = room("a");
        let alice = join(&mut a, "alice", 16);
        let home = a.home_of(&ParticipantIdentity::new("alice")).unwrap();
        // The end is recorded, but not yet applied to the room (it is on its way).
        assert_eq!(home.settle(alice.connection, SessionEnd::Lost).unwrap().as_str(), "a");
        assert!(matches!(a.move_out("alice", Instant::now()), Err(RoomError::CannotMove(_))));
        assert!(a.participant_info("alice").is_ok(), "still here for its end to find");
    }

    #[test]
    fn observers_hear_of_a_moving_non_publisher_at_once_not_with_the_next_batch() {
        let (mut a, mut b) = (room("a"), room("b"));
        let mut alice = join(&mut a, "alice", 16);
        let mut watcher_a = join(&mut a, "wa", 16);
        let mut watcher_b = join(&mut b, "wb", 16);
        a.flush_updates();
        b.flush_updates();
        for inbox in [&mut alice, &mut watcher_a, &mut watcher_b] {
            drain(inbox);
        }
        let moving = a.move_out("alice", Instant::now()).unwrap();
        let left = drain(&mut watcher_a);
        assert!(
            matches!(&left[..], [Signal::Update(u)] if u.participants[0].identity == "alice"
                && u.participants[0].disconnect_reason == DisconnectReason::Migration as i32),
            "the source sees it go before any batch: {left:?}"
        );
        b.move_in(moving, Instant::now()).unwrap();
        let arrived = drain(&mut watcher_b);
        assert!(
            matches!(&arrived[..], [Signal::Update(u)] if u.participants[0].identity == "alice"),
            "the destination sees it arrive before any batch: {arrived:?}"
        );
    }

    #[test]
    fn a_participant_whose_socket_never_came_up_cannot_be_moved() {
        let mut a = room("a");
        let _bob = testkit::join_unconnected(&mut a, "bob", 16);
        assert!(matches!(a.check_move_out("bob"), Err(RoomError::CannotMove(_))));
    }

    #[test]
    fn a_place_promised_to_a_move_cannot_be_taken_by_a_join_meanwhile() {
        let (mut a, mut b) = (room("a"), room("b"));
        b.spec.max_participants = 1;
        let _alice = join(&mut a, "alice", 16);
        b.reserve_arrival("alice", &ParticipantSid::new("PA_x"), &RoomName::new("a")).unwrap();
        assert_eq!(b.check_join(&testkit::spec("bob", 16)), Err(RoomError::RoomFull), "the place is promised");
        assert_eq!(
            b.check_move_in("alice", &ParticipantSid::new("PA_x"), &RoomName::new("a")),
            Err(RoomError::AlreadyInRoom),
            "one move of alice at a time"
        );
        let moving = a.move_out("alice", Instant::now()).unwrap();
        b.move_in(moving, Instant::now()).unwrap();
        assert!(b.arriving.is_empty(), "the arrival takes its place");
        assert_eq!(b.participant_count(), 1);
        // A promise given back frees the place.
        let mut c = room("c");
        c.spec.max_participants = 1;
        c.reserve_arrival("carol", &ParticipantSid::new("PA_x"), &RoomName::new("a")).unwrap();
        c.release_arrival("carol");
        assert!(c.check_join(&testkit::spec("bob", 16)).is_ok());
    }

    #[test]
    fn moves_are_refused_before_anything_changes() {
        let (mut a, mut b) = (room("a"), room("b"));
        let _old = join(&mut a, "old", 15);
        assert!(matches!(a.check_move_out("old"), Err(RoomError::CannotMove(_))));
        assert!(a.move_out("old", Instant::now()).is_err());
        assert!(a.participant_info("old").is_ok());
        let _twin = join(&mut b, "old", 16);
        assert_eq!(
            b.check_move_in("old", &ParticipantSid::new("PA_x"), &RoomName::new("a")),
            Err(RoomError::AlreadyInRoom)
        );
        b.spec.max_participants = 1;
        assert_eq!(b.check_move_in("new", &ParticipantSid::new("PA_x"), &RoomName::new("a")), Err(RoomError::RoomFull));
    }

    #[test]
    fn a_participant_moving_into_a_room_that_shows_its_copy_takes_the_copy_s_place() {
        let (mut a, mut b) = (room("a"), room("b"));
        b.spec.max_participants = 1;
        let _alice = join(&mut a, "alice", 16);
        let info = a.forward_source("alice").unwrap();
        let copy = b.add_forwarded(RoomName::new("a"), &info).unwrap();
        assert!(a.start_forwarding(&info, &RoomName::new("b"), copy));
        let sid = ParticipantSid::new(info.proto.sid.clone());
        // Someone else's copy (another session, or from another room) stands in the way.
        let a_name = RoomName::new("a");
        assert_eq!(b.check_move_in("alice", &ParticipantSid::new("PA_other"), &a_name), Err(RoomError::AlreadyInRoom));
        assert_eq!(b.check_move_in("alice", &sid, &RoomName::new("c")), Err(RoomError::AlreadyInRoom));
        // Its own does not, and its place (the room's only one) becomes the participant's.
        b.reserve_arrival("alice", &sid, &a_name).unwrap();
        let moving = a.move_out("alice", Instant::now()).unwrap();
        b.move_in(moving, Instant::now()).unwrap();
        assert!(b.forwarded.is_empty());
        let arrived = b.participant_info("alice").unwrap();
        assert_eq!(arrived.sid, sid.as_str());
        assert!(arrived.kind_details.is_empty(), "in person, not a copy: {:?}", arrived.kind_details);
        assert_eq!(b.participant_count(), 1);
    }

    #[test]
    fn a_join_of_the_same_identity_during_a_move_wins_and_the_mover_is_told_why() {
        let (mut a, mut b) = (room("a"), room("b"));
        let mut alice = join(&mut a, "alice", 16);
        let sid = ParticipantSid::new(a.participant_info("alice").unwrap().sid);
        b.reserve_arrival("alice", &sid, &RoomName::new("a")).unwrap();
        let moving = a.move_out("alice", Instant::now()).unwrap();
        let _newer = join(&mut b, "alice", 16);
        let newer_sid = b.participant_info("alice").unwrap().sid;
        drain(&mut alice);
        assert_eq!(b.move_in(moving, Instant::now()), Err(RoomError::AlreadyInRoom));
        let told = drain(&mut alice);
        assert!(
            told.iter()
                .any(|m| matches!(m, Signal::Leave(l) if l.reason == DisconnectReason::DuplicateIdentity as i32)),
            "{told:?}"
        );
        assert_eq!(b.participant_info("alice").unwrap().sid, newer_sid, "the newer session stays");
        assert!(b.arriving.is_empty());
    }

    #[test]
    fn a_forwarded_copy_cannot_be_moved_or_forwarded_from_where_it_is_shown() {
        let (mut a, mut b) = (room("a"), room("b"));
        let _alice = join(&mut a, "alice", 16);
        let info = a.forward_source("alice").unwrap();
        b.add_forwarded(RoomName::new("a"), &info).unwrap();
        assert_eq!(b.check_move_out("alice"), Err(RoomError::Forwarded));
        assert!(matches!(b.forward_source("alice"), Err(RoomError::Forwarded)));
    }
}
