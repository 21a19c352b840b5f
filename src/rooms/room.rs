//! One room's state. Mutated only under its slot's lock (see [`super::registry`]).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use tokio::time::Instant;

use super::{
    membership::{PendingUpdate, encode_signal},
    participant::{Participant, TokenRefresher},
    snapshot::Snapshot,
};
use crate::{
    ids::{ParticipantIdentity, RoomName, RoomSid},
    proto,
};

/// Codecs a room allows; the same default list LiveKit reports.
const DEFAULT_CODECS: &[&str] = &[
    "audio/PCMU",
    "audio/PCMA",
    "audio/opus",
    "audio/red",
    "video/VP8",
    "video/H264",
    "video/VP9",
    "video/AV1",
    "video/H265",
    "video/rtx",
];

/// The settings a room is created with (request values already merged with defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSpec {
    /// Closes this long after creation if nobody ever joined.
    pub empty_timeout: Duration,
    /// Closes this long after the last participant left.
    pub departure_timeout: Duration,
    /// 0 = unlimited.
    pub max_participants: u32,
    /// Application metadata.
    pub metadata: String,
}

/// A room as the API reports it, built once per change and shared by every reader.
pub type RoomSnapshot = Snapshot<proto::Room>;

/// A live room.
#[derive(Debug)]
pub struct Room {
    pub(super) sid: RoomSid,
    pub(super) name: RoomName,
    pub(super) spec: RoomSpec,
    pub(super) creation_ms: i64,
    /// Monotonic creation instant, for `empty_timeout`.
    pub(super) created_at: Instant,
    /// When the last counted participant left, for `departure_timeout`.
    pub(super) last_departure: Option<Instant>,
    /// Set once the room is closed; a closed room accepts nothing more.
    pub(super) closed: bool,
    /// Connected participants by identity (one session per identity).
    pub(super) participants: BTreeMap<ParticipantIdentity, Participant>,
    /// Presence updates about visible non-publishers waiting for the next batch flush: the
    /// latest info per session (sid), in the order first queued (see [`Room::flush_updates`]).
    /// Bounded by the number of sessions that came or went since the last flush.
    pub(super) pending: Vec<PendingUpdate>,
    /// Participants found with full queues, waiting to be dropped, the one being dropped
    /// first. Dropping one broadcasts its departure, which can find more; they wait here
    /// instead of nesting a call per drop. Not empty exactly while a [`Room::drop_stalled`]
    /// further up the stack is working through it.
    pub(super) stalled: std::collections::VecDeque<ParticipantIdentity>,
    /// While a join replaces an older session (or a copy) of its identity: that identity, and
    /// whether the newcomer is visible (see [`Room::superseded`]).
    pub(super) replacing: Option<(ParticipantIdentity, bool)>,
    /// `(num_participants, num_publishers)` as sessions last heard them in a RoomUpdate.
    pub(super) announced_counts: (u32, u32),
    /// Participants of this room forwarded elsewhere (see [`super::forwards`]).
    pub(super) forwarding: super::forwards::Forwardings,
    /// Forwarded copies of participants of other rooms.
    pub(super) forwarded: super::forwards::ForwardedCopies,
    /// Notices for other rooms, delivered by the registry once this room's lock is released.
    pub(super) forward_outbox: Vec<super::forwards::ForwardNotice>,
    /// Recent departures, for resumed clients (see [`super::resume`]).
    pub(super) departures: super::resume::DepartureLog,
    /// Identities removed with `revoke_token_ts`: tokens valid from before that time (Unix
    /// seconds) may not join again. Kept as long as the room lives; one entry per identity.
    pub(super) revoked: BTreeMap<ParticipantIdentity, i64>,
    /// Identities a move has promised a place here, between its two phases (see
    /// [`super::moves`]). They count toward `max_participants`, so a join cannot take the
    /// place meanwhile; bounded by the moves under way.
    pub(super) arriving: std::collections::BTreeSet<ParticipantIdentity>,
    /// The last ListParticipants answer, reused while every participant's snapshot is the
    /// one it holds (see [`Room::participant_list`]).
    pub(super) participant_list: Option<Arc<super::SnapshotList<proto::ParticipantInfo>>>,
    /// The current API view; rebuilt by every method that changes what it shows.
    pub(super) snapshot: Arc<RoomSnapshot>,
    /// Mints refresh tokens for participants whose claims change.
    pub(super) refresher: Arc<dyn TokenRefresher>,
    /// Where events for the app's backend go (webhooks).
    pub(super) events: Arc<dyn super::events::EventSink>,
}

impl std::fmt::Debug for dyn TokenRefresher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenRefresher")
    }
}

impl Room {
    /// A new room created at wall time `now_ms` and monotonic time `now`.
    pub fn new(name: RoomName, spec: RoomSpec, now_ms: i64, now: Instant, refresher: Arc<dyn TokenRefresher>) -> Self {
        let mut room = Self {
            sid: RoomSid::generate(),
            name,
            spec,
            creation_ms: now_ms,
            created_at: now,
            last_departure: None,
            closed: false,
            participants: BTreeMap::new(),
            revoked: BTreeMap::new(),
            arriving: std::collections::BTreeSet::new(),
            pending: Vec::new(),
            stalled: std::collections::VecDeque::new(),
            replacing: None,
            departures: super::resume::DepartureLog::new(),
            forwarding: BTreeMap::new(),
            forwarded: BTreeMap::new(),
            forward_outbox: Vec::new(),
            participant_list: None,
            announced_counts: (0, 0),
            snapshot: RoomSnapshot::new(proto::Room::default()),
            refresher,
            events: Arc::new(super::events::NoEvents),
        };
        room.refresh();
        room
    }

    /// The room's name.
    pub fn name(&self) -> &RoomName {
        &self.name
    }

    /// The room's sid.
    pub fn sid(&self) -> &RoomSid {
        &self.sid
    }

    /// True once closed (deleted or timed out).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Closes the room: every participant gets a leave with `reason` and is dropped.
    /// Idempotent.
    pub fn close(&mut self, reason: proto::DisconnectReason) {
        let was_open = !self.closed;
        self.closed = true;
        self.drop_all_forwarded();
        self.disconnect_all(reason);
        if was_open {
            self.emit(super::events::names::ROOM_FINISHED, None);
        }
    }

    /// Replaces the metadata (an empty string clears it, as LiveKit). Returns whether it changed.
    pub fn set_metadata(&mut self, metadata: String) -> bool {
        let changed = self.spec.metadata != metadata;
        self.spec.metadata = metadata;
        if changed {
            self.refresh();
            self.emit(super::events::names::ROOM_METADATA_CHANGED, None);
            // Everyone sees the new room (LiveKit sends RoomUpdate on metadata at once).
            self.send_room_update();
        }
        changed
    }

    /// Tells sessions about changed participant/publisher counts, at most once per call (the
    /// registry calls it every batch interval; LiveKit refreshes counts every ≤ 5 s).
    pub fn announce_counts(&mut self) {
        let p = &self.snapshot.proto;
        if (p.num_participants, p.num_publishers) != self.announced_counts {
            self.send_room_update();
        }
    }

    fn send_room_update(&mut self) {
        let p = &self.snapshot.proto;
        self.announced_counts = (p.num_participants, p.num_publishers);
        let update =
            encode_signal(proto::signal_response::Message::RoomUpdate(proto::RoomUpdate { room: Some(p.clone()) }));
        self.send_to_all(&update);
    }

    /// The current API view (cheap: an `Arc` clone).
    pub fn snapshot(&self) -> Arc<RoomSnapshot> {
        Arc::clone(&self.snapshot)
    }

    /// Rebuilds the snapshot after a change.
    pub(super) fn refresh(&mut self) {
        self.snapshot = RoomSnapshot::new(self.build_proto());
    }

    /// Participants that count toward limits and `num_participants` (not agents or egress).
    pub fn participant_count(&self) -> u32 {
        let copies = self.forwarded.values().filter(|c| !forwarded_dependent(&c.snapshot.proto)).count();
        u32::try_from(self.participants.values().filter(|p| !p.dependent()).count() + copies).unwrap_or(u32::MAX)
    }

    /// Places taken toward `max_participants`: the participants (and copies) that count, plus
    /// the moves on their way in.
    pub fn occupancy(&self) -> u32 {
        self.participant_count().saturating_add(u32::try_from(self.arriving.len()).unwrap_or(u32::MAX))
    }

    /// Whether an idle room should close at `now`: nobody is in it and its timeout ran out
    /// (`departure_timeout` after the last departure, else `empty_timeout` after creation).
    pub fn idle_expired(&self, now: Instant) -> bool {
        if self.participant_count() > 0 {
            return false;
        }
        match self.last_departure {
            Some(left) => now.saturating_duration_since(left) >= self.spec.departure_timeout,
            None => now.saturating_duration_since(self.created_at) >= self.spec.empty_timeout,
        }
    }

    fn build_proto(&self) -> proto::Room {
        proto::Room {
            sid: self.sid.to_string(),
            name: self.name.to_string(),
            empty_timeout: secs(self.spec.empty_timeout),
            departure_timeout: secs(self.spec.departure_timeout),
            max_participants: self.spec.max_participants,
            creation_time: self.creation_ms.div_euclid(1000),
            creation_time_ms: self.creation_ms,
            // Usher runs no TURN server, so there is no TURN credential to hand out.
            turn_password: String::new(),
            enabled_codecs: DEFAULT_CODECS
                .iter()
                .map(|m| proto::Codec { mime: (*m).to_string(), fmtp_line: String::new() })
                .collect(),
            metadata: self.spec.metadata.clone(),
            num_participants: self.participant_count(),
            num_publishers: u32::try_from(self.participants.values().filter(|p| p.is_publisher).count())
                .unwrap_or(u32::MAX),
            active_recording: false,
            version: None,
        }
    }
}

/// Agents and egress do not count, forwarded or not.
fn forwarded_dependent(info: &proto::ParticipantInfo) -> bool {
    info.kind == proto::participant_info::Kind::Agent as i32
        || info.kind == proto::participant_info::Kind::Egress as i32
}

fn secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rooms::participant::NoRefresh;
    use prost::Message as _;

    fn spec() -> RoomSpec {
        RoomSpec {
            empty_timeout: Duration::from_secs(300),
            departure_timeout: Duration::from_secs(20),
            max_participants: 0,
            metadata: "m".into(),
        }
    }

    #[test]
    fn proto_reports_what_was_created() {
        let r = Room::new(RoomName::new("a"), spec(), 1_700_000_000_123, Instant::now(), Arc::new(NoRefresh));
        let p = r.snapshot().proto.clone();
        assert_eq!(p.name, "a");
        assert!(p.sid.starts_with("RM_"));
        assert_eq!((p.empty_timeout, p.departure_timeout), (300, 20));
        assert_eq!((p.creation_time, p.creation_time_ms), (1_700_000_000, 1_700_000_000_123));
        assert_eq!(p.metadata, "m");
        assert_eq!(p.enabled_codecs.len(), DEFAULT_CODECS.len());
    }

    #[test]
    fn empty_room_expires_after_empty_timeout() {
        let t0 = Instant::now();
        let r = Room::new(RoomName::new("a"), spec(), 0, t0, Arc::new(NoRefresh));
        assert!(!r.idle_expired(t0 + Duration::from_secs(299)));
        assert!(r.idle_expired(t0 + Duration::from_secs(300)));
    }

    #[test]
    fn snapshot_follows_changes_and_carries_its_encoding() {
        let mut r = Room::new(RoomName::new("a"), spec(), 0, Instant::now(), Arc::new(NoRefresh));
        let before = r.snapshot();
        assert_eq!(proto::Room::decode(before.encoded.clone()).unwrap(), before.proto);
        assert!(r.set_metadata("new".into()));
        let after = r.snapshot();
        assert_eq!(after.proto.metadata, "new");
        assert_eq!(proto::Room::decode(after.encoded.clone()).unwrap(), after.proto);
        assert_eq!(before.proto.metadata, "m", "old readers keep the view they took");
        // No change, no rebuild.
        assert!(!r.set_metadata("new".into()));
        assert!(Arc::ptr_eq(&after, &r.snapshot()));
    }

    #[test]
    fn metadata_can_be_cleared() {
        let mut r = Room::new(RoomName::new("a"), spec(), 0, Instant::now(), Arc::new(NoRefresh));
        assert!(r.set_metadata(String::new()));
        assert!(!r.set_metadata(String::new()));
        assert_eq!(r.snapshot().proto.metadata, "");
    }
}
