//! Signal loss and resume: the departure window.
//!
//! LiveKit does not remove a participant just because its signalling socket dropped: the
//! media connection may still be up, and the client first tries to *resume* on a new socket
//! (`/rtc?reconnect=1`), keeping its sid, tracks and subscriptions. Usher has no media plane
//! yet and treats a joined participant as connected, so a lost socket **detaches** the
//! participant: it stays listed and counted for the departure window, frames for it are
//! dropped, and a resume within that window takes it back with the whole current state. The
//! window is the room's `departure_timeout`, at most [`MAX_RESUME_WINDOW`] (about how long
//! LiveKit takes to notice a failed peer connection), so a room configured to linger for an
//! hour does not keep a crashed tab listed for an hour. When the window runs out the
//! participant is removed with `CONNECTION_TIMEOUT`, the reason LiveKit gives a participant
//! whose connection never came back. (With a media plane, the window will end early when the
//! peer connection fails.)
//!
//! To tell a resumed client who left while it was away (LiveKit does so for protocol ≥ 9),
//! the room keeps a short log of departures, bounded in age and in length.

use std::{collections::VecDeque, time::Duration};

use bytes::Bytes;
use tokio::time::Instant;

use super::{
    RoomError,
    membership::{PING_TIMEOUT_SECS, encode_signal, server_info, update_frames},
    participant::{Outbox, SessionKey},
    room::Room,
};
use crate::{
    ids::{ParticipantIdentity, ParticipantSid},
    proto::{self, DisconnectReason, participant_info::State, signal_response::Message as Signal},
};

/// The first protocol version that is told, on resume, who left while it was away.
const PROTOCOL_DISCONNECTED_UPDATES: i32 = 9;
/// The longest a participant waits for a resume, whatever the room's `departure_timeout`.
pub const MAX_RESUME_WINDOW: Duration = Duration::from_secs(20);
/// Departures the log keeps at most; older ones are forgotten first. A resumed client that
/// missed more than this many gets the full list of who is there, without the leavers.
const MAX_DEPARTURES: usize = 4096;

/// How far before a socket was noticed lost the client may have stopped hearing us: a socket
/// can die silently, and silence is only noticed after the ping timeout.
fn unnoticed() -> Duration {
    Duration::from_secs(PING_TIMEOUT_SECS.unsigned_abs().into())
}

/// A participant that left, as a resumed client is told of it.
#[derive(Debug, Clone)]
pub struct Departure {
    at: Instant,
    pub(super) info: proto::ParticipantInfo,
}

/// Recent departures, oldest first, none older than the room's departure window.
pub type DepartureLog = VecDeque<Departure>;

impl Room {
    /// `key`'s socket was lost (closed without a leave, broken, or silent past the ping
    /// timeout). The participant waits for a resume until [`Self::expire_detached`]
    /// removes it; with a zero window it is removed at once (`SIGNAL_CLOSE`). A socket that is
    /// no longer current changes nothing. Returns whether the participant was found.
    pub fn detach(&mut self, key: &SessionKey, now: Instant) -> bool {
        if !self.holds(key) {
            return false;
        }
        let identity = &key.identity;
        if self.resume_window().is_zero() {
            self.drop_participant(identity.as_str(), DisconnectReason::SignalClose, None, now);
            return true;
        }
        if let Some(p) = self.participants.get_mut(identity)
            && p.detached_since.is_none()
        {
            p.detached_since = Some(now);
            tracing::info!(room = %self.name, participant = %identity, window = ?self.resume_window(),
                "signal connection lost; keeping the participant for a resume");
        }
        true
    }

    /// Ends `key`'s session (a client leave, a failed upgrade). Others see it leave with
    /// `reason`. A socket that is no longer current changes nothing.
    pub fn leave(&mut self, key: &SessionKey, reason: DisconnectReason, now: Instant) -> bool {
        if !self.holds(key) {
            return false;
        }
        self.drop_participant(key.identity.as_str(), reason, None, now);
        true
    }

    /// Removes detached participants whose window ran out by `now`; forgets departures no
    /// resume can ask about any more.
    pub fn expire_detached(&mut self, now: Instant) {
        let window = self.resume_window();
        let expired: Vec<_> = self
            .participants
            .values()
            .filter(|p| p.detached_since.is_some_and(|t| now.saturating_duration_since(t) >= window))
            .map(|p| p.spec.identity.clone())
            .collect();
        for identity in expired {
            tracing::info!(room = %self.name, participant = %identity, "no resume within the departure window");
            self.drop_participant(identity.as_str(), DisconnectReason::ConnectionTimeout, None, now);
        }
        self.prune_departures(now);
    }

    /// Hands participant `identity` a new socket (`reconnect=1`). It keeps its sid, tracks
    /// and subscriptions; the old socket's queue is closed. The new socket gets, in LiveKit's
    /// order: a ReconnectResponse, the departures it missed (protocol ≥ 9), everyone's current
    /// info (its own included), and the room. A closed room or an unknown identity cannot be
    /// resumed (the client then rejoins from scratch).
    pub fn resume(
        &mut self,
        identity: &ParticipantIdentity,
        sid: Option<&str>,
        outbox: Outbox,
        now: Instant,
        server_version: &str,
    ) -> Result<ParticipantSid, RoomError> {
        if self.closed {
            return Err(RoomError::RoomNotFound);
        }
        let p = self.participants.get_mut(identity).ok_or(RoomError::ParticipantNotFound)?;
        if sid.is_some_and(|sid| sid != p.sid.as_str()) {
            // A resume of an older session of this identity (replaced since by a fresh join)
            // must not take over the newer one: that client rejoins from scratch instead.
            return Err(RoomError::ParticipantNotFound);
        }
        // The client may have stopped hearing us up to a ping timeout before the loss was
        // noticed (or before now, if it was not noticed at all).
        let lost = p.detached_since.take().unwrap_or(now);
        let missed_since = lost.checked_sub(unnoticed()).unwrap_or(lost);
        // Replacing the queue drops the old sender: the old session writes what it has and ends
        // without a leave.
        p.outbox = outbox;
        let (sid, protocol, region) = (p.sid.clone(), p.spec.protocol, p.spec.region.clone());
        tracing::info!(room = %self.name, participant = %identity, "signal connection resumed");

        let mut frames: Vec<Bytes> = vec![encode_signal(Signal::Reconnect(proto::ReconnectResponse {
            server_info: Some(server_info(server_version, &region)),
            ..Default::default()
        }))];
        if protocol >= PROTOCOL_DISCONNECTED_UPDATES {
            let reconciling = protocol >= super::membership::PROTOCOL_IDENTITY_RECONCILE;
            let gone: Vec<_> = self
                .departures
                .iter()
                .filter(|d| d.at >= missed_since && !(reconciling && self.superseded(&d.info)))
                .map(|d| d.info.clone())
                .collect();
            frames.push(encode_signal(Signal::Update(proto::ParticipantUpdate { participants: gone })));
        }
        // Everyone visible, and the participant itself even when hidden.
        let mut everyone = self.visible_infos(Some(identity.as_str()));
        if let Some(me) = self.participants.get(identity) {
            everyone.push(me.snapshot.proto.clone());
        }
        frames.extend(update_frames(everyone));
        frames.push(encode_signal(Signal::RoomUpdate(proto::RoomUpdate { room: Some(self.snapshot.proto.clone()) })));
        if let Some(p) = self.participants.get(identity) {
            // A fresh queue of [`Outbox::CAPACITY`] frames; a room too big for it to hold the
            // state means a client that cannot keep up anyway.
            if frames.into_iter().any(|f| p.outbox.push(f).is_err()) {
                self.drop_stalled(vec![identity.clone()], now);
                return Err(RoomError::ParticipantNotFound);
            }
        }
        Ok(sid)
    }

    /// The last departure of session `sid` still in the log (its version and reason).
    pub(super) fn departure_of(&self, sid: &str) -> Option<&proto::ParticipantInfo> {
        self.departures.iter().rev().map(|d| &d.info).find(|i| i.sid == sid)
    }

    /// Notes a departure for clients that resume later (and for forwarded copies, which learn
    /// the reason from it).
    pub(super) fn record_departure(
        &mut self,
        sid: &ParticipantSid,
        identity: &ParticipantIdentity,
        version: u32,
        reason: DisconnectReason,
        now: Instant,
    ) {
        self.departures.push_back(Departure {
            at: now,
            info: proto::ParticipantInfo {
                sid: sid.to_string(),
                identity: identity.to_string(),
                version,
                state: State::Disconnected as i32,
                disconnect_reason: reason as i32,
                ..Default::default()
            },
        });
        self.prune_departures(now);
    }

    fn prune_departures(&mut self, now: Instant) {
        let keep = self.resume_window() + unnoticed();
        while self.departures.front().is_some_and(|d| now.saturating_duration_since(d.at) > keep)
            || self.departures.len() > MAX_DEPARTURES
        {
            self.departures.pop_front();
        }
    }

    /// How long a participant whose socket was lost waits for a resume.
    pub fn resume_window(&self) -> Duration {
        self.spec.departure_timeout.min(MAX_RESUME_WINDOW)
    }
}

#[cfg(test)]
mod tests {
    use crate::rooms::testkit::{self, drain};
    use std::time::Duration;

    use super::*;
    use crate::rooms::participant::Inbox;

    fn room(window: u64) -> Room {
        testkit::room("r", window)
    }

    fn join(r: &mut Room, identity: &str) -> (SessionKey, Inbox) {
        testkit::join(r, identity, 16)
    }

    #[test]
    fn a_lost_socket_keeps_the_participant_for_the_window_then_times_out() {
        let mut r = room(20);
        let t0 = Instant::now();
        let (sid, inbox) = join(&mut r, "alice");
        let (_, mut bob) = join(&mut r, "bob");
        r.flush_updates();
        drain(&mut bob);
        assert!(r.detach(&sid, t0));
        drop(inbox);
        r.expire_detached(t0 + Duration::from_secs(19));
        r.flush_updates();
        assert!(drain(&mut bob).is_empty(), "others notice nothing inside the window");
        assert_eq!(r.participant_count(), 2);
        r.expire_detached(t0 + Duration::from_secs(20));
        r.flush_updates();
        let seen = drain(&mut bob);
        let [Signal::Update(u)] = &seen[..] else { panic!("{seen:?}") };
        assert_eq!(
            (u.participants[0].identity.as_str(), u.participants[0].state, u.participants[0].disconnect_reason),
            ("alice", State::Disconnected as i32, DisconnectReason::ConnectionTimeout as i32)
        );
        assert_eq!(r.participant_count(), 1);
    }

    #[test]
    fn the_window_is_the_departure_timeout_up_to_twenty_seconds() {
        assert_eq!(room(5).resume_window(), Duration::from_secs(5));
        assert_eq!(room(3600).resume_window(), MAX_RESUME_WINDOW);
    }

    #[test]
    fn a_resume_hears_of_departures_from_before_the_loss_was_noticed() {
        let mut r = room(20);
        let t0 = Instant::now();
        let (alice, _a) = join(&mut r, "alice");
        let (bob, _b) = join(&mut r, "bob");
        // Bob leaves while alice's socket is already dead but not yet noticed (silence).
        r.leave(&bob, DisconnectReason::ClientInitiated, t0);
        assert!(r.detach(&alice, t0 + Duration::from_secs(14)));
        let (outbox, mut new) = Outbox::channel();
        r.resume(&alice.identity, None, outbox, t0 + Duration::from_secs(16), "v").unwrap();
        let seen = drain(&mut new);
        let Signal::Update(gone) = &seen[1] else { panic!("{seen:?}") };
        assert_eq!(gone.participants.iter().map(|p| p.identity.as_str()).collect::<Vec<_>>(), ["bob"]);
    }

    #[test]
    fn a_zero_window_removes_at_once() {
        let mut r = room(0);
        let (sid, _inbox) = join(&mut r, "alice");
        assert!(r.detach(&sid, Instant::now()));
        assert_eq!(r.participant_count(), 0);
    }

    #[test]
    fn resume_sends_state_in_order_and_the_old_socket_loses_its_claim() {
        let mut r = room(20);
        let t0 = Instant::now();
        let (sid, _old) = join(&mut r, "alice");
        let (bob_sid, _bob) = join(&mut r, "bob");
        let (_, carol) = join(&mut r, "carol");
        assert!(r.detach(&sid, t0));
        // Bob leaves while alice is away; carol's socket closing without news keeps her listed.
        assert!(r.leave(&bob_sid, DisconnectReason::ClientInitiated, t0));
        drop(carol);

        // A resume naming another session of this identity is refused.
        let (outbox, _) = Outbox::channel();
        let alice = ParticipantIdentity::new("alice");
        assert_eq!(r.resume(&alice, Some("PA_older"), outbox, t0, "v"), Err(RoomError::ParticipantNotFound));
        let (outbox, mut new) = Outbox::channel();
        let resumed = r.resume(&ParticipantIdentity::new("alice"), Some(sid.sid.as_str()), outbox, t0, "v").unwrap();
        assert_eq!(resumed, sid.sid, "the sid survives a resume");
        let seen = drain(&mut new);
        assert!(
            matches!(&seen[0], Signal::Reconnect(rr) if rr.server_info.as_ref().unwrap().version == "v"),
            "{seen:?}"
        );
        let Signal::Update(gone) = &seen[1] else { panic!("{seen:?}") };
        assert_eq!(
            gone.participants.iter().map(|p| (p.identity.as_str(), p.state)).collect::<Vec<_>>(),
            [("bob", State::Disconnected as i32)]
        );
        let Signal::Update(all) = &seen[2] else { panic!("{seen:?}") };
        let mut names: Vec<_> = all.participants.iter().map(|p| p.identity.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["alice", "carol"]);
        assert!(matches!(&seen[3], Signal::RoomUpdate(_)));
        assert_eq!(seen.len(), 4);

        // The old socket's late news changes nothing; the window no longer applies.
        assert!(!r.detach(&sid, t0));
        assert!(!r.leave(&sid, DisconnectReason::SignalClose, t0));
        r.expire_detached(t0 + Duration::from_secs(60));
        assert_eq!(r.participant_info("alice").unwrap().sid, sid.sid.as_str());
    }

    #[test]
    fn unknown_identities_and_closed_rooms_cannot_resume() {
        let mut r = room(20);
        let (outbox, _) = Outbox::channel();
        assert_eq!(
            r.resume(&ParticipantIdentity::new("x"), None, outbox, Instant::now(), "v"),
            Err(RoomError::ParticipantNotFound)
        );
        r.close(DisconnectReason::RoomDeleted);
        let (outbox, _) = Outbox::channel();
        assert_eq!(
            r.resume(&ParticipantIdentity::new("x"), None, outbox, Instant::now(), "v"),
            Err(RoomError::RoomNotFound)
        );
    }

    #[test]
    fn the_departure_log_forgets_what_no_resume_can_ask_for() {
        let mut r = room(20);
        let t0 = Instant::now();
        for i in 0..100 {
            let (sid, _inbox) = join(&mut r, &format!("p{i}"));
            r.leave(&sid, DisconnectReason::ClientInitiated, t0);
        }
        assert_eq!(r.departures.len(), 100);
        // Kept for the window and the ping timeout a silent socket takes to be noticed.
        r.expire_detached(t0 + Duration::from_secs(35));
        assert_eq!(r.departures.len(), 100);
        r.expire_detached(t0 + Duration::from_secs(36));
        assert!(r.departures.is_empty());
    }
}
