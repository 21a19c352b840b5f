//! The registry of live rooms: a concurrent map from name to a locked room.
//!
//! Look up, clone the `Arc`, drop the map guard, then lock the room; never hold two room locks
//! and never hold one across `.await` (all methods here are synchronous but
//! [`Registry::with_session`], which yields between two lock attempts). Operations that span
//! two rooms (moves and forwards) are in [`transfers`].

mod transfers;

use std::{sync::Arc, time::Duration};

use dashmap::{DashMap, mapref::entry::Entry};
use parking_lot::Mutex;
use tokio::time::Instant;

use super::{
    RoomError,
    room::{Room, RoomSnapshot, RoomSpec},
};
use crate::{
    clock::SharedClock,
    config::RoomConfig,
    ids::{ParticipantSid, RoomName},
    proto,
    rooms::{
        ParticipantSnapshot, SnapshotList,
        events::EventSink,
        forwards::ForwardNotice,
        participant::{Home, JoinSpec, Outbox, SessionEnd, SessionKey, TokenRefresher},
    },
};

/// Defaults applied to new rooms (from `room.*`).
pub type RoomDefaults = RoomConfig;

/// A room behind its lock. The lock guards all of the room's state; it is held only for short
/// synchronous sections and never across `.await`.
#[derive(Debug)]
struct RoomSlot {
    room: Mutex<Room>,
}

struct Inner {
    /// Live rooms by name. Map guards are dropped before a room lock is taken.
    rooms: DashMap<RoomName, Arc<RoomSlot>>,
    clock: SharedClock,
    defaults: RoomDefaults,
    refresher: Arc<dyn TokenRefresher>,
    events: Arc<dyn EventSink>,
}

/// The room's snapshot, unless it was closed (and is about to leave the map).
fn live_snapshot(slot: &RoomSlot) -> Option<Arc<RoomSnapshot>> {
    let room = slot.room.lock();
    (!room.is_closed()).then(|| room.snapshot())
}

/// Cheap-clone handle to all live rooms.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("rooms", &self.inner.rooms.len()).finish()
    }
}

/// Result of [`Registry::create_room`].
#[derive(Debug, Clone, PartialEq)]
pub struct CreateOutcome {
    /// The room as it now is.
    pub room: Arc<RoomSnapshot>,
    /// False when a live room of that name already existed (its settings were kept).
    pub created: bool,
}

/// What a CreateRoom request asks for; zero/empty values mean "use the default".
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    /// Room name.
    pub name: RoomName,
    /// Seconds; 0 = default.
    pub empty_timeout: u32,
    /// Seconds; 0 = default.
    pub departure_timeout: u32,
    /// 0 = default.
    pub max_participants: u32,
    /// Initial metadata.
    pub metadata: String,
}

/// How long a request from a moving participant's socket waits for the move to finish (the
/// move's two phases take microseconds; this covers a descheduled thread on a busy machine).
const MOVE_PATIENCE: std::time::Duration = std::time::Duration::from_millis(500);

impl Registry {
    /// An empty registry.
    pub fn new(defaults: RoomDefaults, clock: SharedClock, refresher: Arc<dyn TokenRefresher>) -> Self {
        Self::with_events(defaults, clock, refresher, Arc::new(super::events::NoEvents))
    }

    /// An empty registry whose rooms send their events to `events` (webhooks).
    pub fn with_events(
        defaults: RoomDefaults,
        clock: SharedClock,
        refresher: Arc<dyn TokenRefresher>,
        events: Arc<dyn EventSink>,
    ) -> Self {
        Self { inner: Arc::new(Inner { rooms: DashMap::new(), clock, defaults, refresher, events }) }
    }

    fn slot(&self, name: &str) -> Option<Arc<RoomSlot>> {
        self.inner.rooms.get(name).map(|r| Arc::clone(r.value()))
    }

    /// Creates a room, or returns the live room of that name unchanged (LiveKit ignores the
    /// request's settings for a room that already exists).
    pub fn create_room(&self, req: CreateRequest, now: Instant) -> CreateOutcome {
        // The entry API makes two concurrent creates of one name agree on a single room. The
        // shard guard is held while the room is locked (map → room is the only lock order used).
        match self.inner.rooms.entry(req.name.clone()) {
            Entry::Occupied(mut e) => {
                if let Some(room) = live_snapshot(e.get()) {
                    return CreateOutcome { room, created: false };
                }
                // The reaper or a delete closed this room and has not removed it yet: replace it
                // rather than hand out a room that is about to vanish. The reaper removes only
                // the exact slot it closed, so the new room stays.
                let (slot, room) = self.new_slot(req, now);
                e.insert(slot);
                CreateOutcome { room, created: true }
            }
            Entry::Vacant(e) => {
                let (slot, room) = self.new_slot(req, now);
                e.insert(slot);
                CreateOutcome { room, created: true }
            }
        }
    }

    fn new_slot(&self, req: CreateRequest, now: Instant) -> (Arc<RoomSlot>, Arc<RoomSnapshot>) {
        let d = &self.inner.defaults;
        let pick = |v: u32, default: Duration| if v == 0 { default } else { Duration::from_secs(u64::from(v)) };
        let spec = RoomSpec {
            empty_timeout: pick(req.empty_timeout, d.empty_timeout),
            departure_timeout: pick(req.departure_timeout, d.departure_timeout),
            max_participants: if req.max_participants == 0 { d.max_participants } else { req.max_participants },
            metadata: req.metadata,
        };
        let mut room = Room::new(req.name, spec, self.inner.clock.now_ms(), now, Arc::clone(&self.inner.refresher));
        room.set_events(Arc::clone(&self.inner.events));
        // Under the map's entry guard: nothing can happen in the room before it started.
        room.emit(super::events::names::ROOM_STARTED, None);
        let snapshot = room.snapshot();
        tracing::info!(room = %snapshot.proto.name, sid = %snapshot.proto.sid, "room created");
        (Arc::new(RoomSlot { room: Mutex::new(room) }), snapshot)
    }

    /// All live rooms sorted by name, or the named ones in request order (unknown names skipped).
    pub fn list_rooms(&self, names: &[String]) -> Vec<Arc<RoomSnapshot>> {
        if names.is_empty() {
            let slots: Vec<_> = self.inner.rooms.iter().map(|e| Arc::clone(e.value())).collect();
            let mut rooms: Vec<_> = slots.iter().filter_map(|s| live_snapshot(s)).collect();
            rooms.sort_by(|a, b| a.proto.name.cmp(&b.proto.name));
            rooms
        } else {
            names.iter().filter_map(|n| self.slot(n)).filter_map(|s| live_snapshot(&s)).collect()
        }
    }

    /// One room's current state.
    pub fn get_room(&self, name: &str) -> Result<Arc<RoomSnapshot>, RoomError> {
        self.slot(name).and_then(|s| live_snapshot(&s)).ok_or(RoomError::RoomNotFound)
    }

    /// Closes and forgets a room.
    pub fn delete_room(&self, name: &str) -> Result<(), RoomError> {
        // Closed under its lock first, then removed (only this exact room): a room of the same
        // name created meanwhile starts after this one finished, for sessions and webhooks.
        let slot = self.slot(name).ok_or(RoomError::RoomNotFound)?;
        let was_open = self.locked(&slot, |r| {
            let open = !r.is_closed();
            r.close(proto::DisconnectReason::RoomDeleted);
            open
        });
        self.inner.rooms.remove_if(name, |_, s| Arc::ptr_eq(s, &slot));
        if !was_open {
            return Err(RoomError::RoomNotFound);
        }
        tracing::info!(room = name, "room deleted");
        Ok(())
    }

    /// Replaces a room's metadata and returns the room.
    pub fn update_room_metadata(&self, name: &str, metadata: String) -> Result<Arc<RoomSnapshot>, RoomError> {
        let slot = self.slot(name).ok_or(RoomError::RoomNotFound)?;
        self.locked(&slot, |room| {
            if room.is_closed() {
                return Err(RoomError::RoomNotFound);
            }
            room.set_metadata(metadata);
            Ok(room.snapshot())
        })
    }

    /// The participants of a room (an unknown room has none, as LiveKit answers).
    pub fn list_participants(&self, room: &str) -> Arc<SnapshotList<proto::ParticipantInfo>> {
        self.slot(room)
            .map(|s| s.room.lock().participant_list())
            .unwrap_or_else(|| Arc::new(SnapshotList::new(Vec::new())))
    }

    /// One participant of a room (an unknown room has no participants).
    pub fn get_participant(&self, room: &str, identity: &str) -> Result<Arc<ParticipantSnapshot>, RoomError> {
        self.slot(room).ok_or(RoomError::ParticipantNotFound)?.room.lock().participant_snapshot(identity)
    }

    /// Removes a participant, telling it (`PARTICIPANT_REMOVED`) and everyone else; see
    /// [`Room::remove`] for `revoke_before`.
    pub fn remove_participant(&self, room: &str, identity: &str, revoke_before: i64) -> Result<(), RoomError> {
        let slot = self.slot(room).ok_or(RoomError::ParticipantNotFound)?;
        self.locked(&slot, |r| {
            r.remove(identity, proto::DisconnectReason::ParticipantRemoved, revoke_before, Instant::now())
        })
    }

    /// Joins a room, creating it first when `create` allows. The JoinResponse is queued in
    /// `outbox` as its first frame. Returns the session's sid and the participant's [`Home`].
    pub fn join(
        &self,
        room: &RoomName,
        spec: JoinSpec,
        outbox: Outbox,
        create: bool,
        now: Instant,
    ) -> Result<(ParticipantSid, Arc<Home>), RoomError> {
        // Twice at most: a room can close between being found and being locked; then it is
        // created afresh (or the join fails if creating is not allowed).
        for _ in 0..2 {
            let slot = match self.slot(room.as_str()) {
                Some(s) => s,
                None if create => {
                    self.create_room(CreateRequest { name: room.clone(), ..Default::default() }, now);
                    match self.slot(room.as_str()) {
                        Some(s) => s,
                        None => continue,
                    }
                }
                None => return Err(RoomError::RoomNotFound),
            };
            let mut locked = slot.room.lock();
            if locked.is_closed() {
                // Closed by the reaper or a delete but not yet removed: create replaces it.
                drop(locked);
                if create {
                    self.create_room(CreateRequest { name: room.clone(), ..Default::default() }, now);
                }
                continue;
            }
            let identity = spec.identity.clone();
            let joined = locked.join(spec, outbox, self.inner.clock.now_ms(), env!("CARGO_PKG_VERSION"));
            let home = locked.home_of(&identity);
            // A replaced session of a forwarded participant stops its forwarding.
            let notices = locked.take_forward_notices();
            drop(locked);
            self.deliver(notices);
            return Ok((joined?, home.ok_or(RoomError::ParticipantNotFound)?));
        }
        Err(RoomError::RoomNotFound)
    }

    /// Applies a session's end where its participant now is (see [`Home::settle`]): a leave,
    /// or a lost socket. A participant in the middle of a move gets it on arrival.
    pub fn end_session(&self, home: &Home, key: &SessionKey, end: SessionEnd) {
        let Some(room) = home.settle(key.connection, end) else { return };
        match end {
            SessionEnd::Left(reason) => self.leave(&room, key, reason),
            SessionEnd::Lost => self.detach(&room, key),
        }
    }

    /// Ends `key`'s session (if its socket is still the current one); others see it leave
    /// with `reason`.
    pub fn leave(&self, room: &RoomName, key: &SessionKey, reason: proto::DisconnectReason) {
        if let Some(slot) = self.slot(room.as_str()) {
            self.locked(&slot, |r| r.leave(key, reason, Instant::now()));
        }
    }

    /// `key`'s socket was lost: the participant waits for a resume for the room's departure
    /// window (see [`Room::detach`]).
    pub fn detach(&self, room: &RoomName, key: &SessionKey) {
        if let Some(slot) = self.slot(room.as_str()) {
            self.locked(&slot, |r| r.detach(key, Instant::now()));
        }
    }

    /// Resumes participant `identity` of `room` (session `sid`, when the client names it) on a
    /// new socket fed by `outbox` (see [`Room::resume`]). Returns its sid and [`Home`].
    pub fn resume(
        &self,
        room: &RoomName,
        identity: &crate::ids::ParticipantIdentity,
        sid: Option<&str>,
        outbox: Outbox,
    ) -> Result<(ParticipantSid, Arc<Home>), RoomError> {
        let slot = self.slot(room.as_str()).ok_or(RoomError::RoomNotFound)?;
        self.locked(&slot, |room| {
            let sid = room.resume(identity, sid, outbox, Instant::now(), env!("CARGO_PKG_VERSION"))?;
            let home = room.home_of(identity).ok_or(RoomError::ParticipantNotFound)?;
            Ok((sid, home))
        })
    }

    /// UpdateParticipant on a connected participant.
    pub fn update_participant(
        &self,
        room: &str,
        identity: &str,
        change: crate::rooms::ParticipantChange,
    ) -> Result<proto::ParticipantInfo, RoomError> {
        let slot = self.slot(room).ok_or(RoomError::ParticipantNotFound)?;
        self.locked(&slot, |r| r.update_participant(identity, change))
    }

    /// MutePublishedTrack; `remote_unmute` is `room.enable_remote_unmute`.
    pub fn mute_track(
        &self,
        room: &str,
        identity: &str,
        track_sid: &str,
        muted: bool,
        remote_unmute: bool,
    ) -> Result<Option<proto::TrackInfo>, RoomError> {
        let slot = self.slot(room).ok_or(RoomError::RoomNotFound)?;
        self.locked(&slot, |r| r.mute_track(identity, track_sid, muted, remote_unmute))
    }

    /// UpdateSubscriptions: records what `identity` wants to subscribe to (see
    /// [`Room::update_subscriptions`]).
    pub fn update_subscriptions(
        &self,
        room: &str,
        identity: &str,
        track_sids: &[String],
        participant_tracks: &[proto::ParticipantTracks],
        subscribe: bool,
    ) -> Result<(), RoomError> {
        let slot = self.slot(room).ok_or(RoomError::RoomNotFound)?;
        let sids = track_sids.iter().chain(participant_tracks.iter().flat_map(|pt| pt.track_sids.iter()));
        self.locked(&slot, |r| r.update_subscriptions(identity, sids, subscribe))
    }

    /// Runs `f` for a request on `key`'s socket, in the room its participant is in. A move in
    /// progress takes microseconds (two short synchronous phases) and the request follows the
    /// participant to its new room; `None` when the socket no longer holds its participant.
    ///
    /// While a move is between its phases this yields to the runtime rather than spinning the
    /// thread, so a waiting session never holds a worker the move (or anyone else) needs.
    pub async fn with_session<T>(&self, home: &Home, key: &SessionKey, f: impl FnOnce(&mut Room) -> T) -> Option<T> {
        let mut f = Some(f);
        // Wall-clock on purpose: the wait is for another thread's two synchronous phases, and
        // tokio's clock stands still in paused-time tests. A move that has not finished in
        // this long (its thread descheduled on a loaded machine) is waited for, not dropped
        // after a fixed number of polls.
        let patience = std::time::Instant::now() + MOVE_PATIENCE;
        loop {
            if home.is_moving() {
                if std::time::Instant::now() > patience {
                    tracing::warn!(participant = %key.identity, "request dropped: the participant's move did not finish");
                    return None;
                }
                tokio::task::yield_now().await;
                continue;
            }
            let room = home.room();
            let slot = self.slot(room.as_str())?;
            let done = self.locked(&slot, |r| if r.holds(key) { f.take().map(|f| f(r)) } else { None });
            if done.is_some() {
                return done;
            }
            // Not here: it may have moved between reading its room and locking it.
            if !home.is_moving() && home.room() == room {
                return None;
            }
        }
    }

    /// Runs `f` on a room under its lock, then delivers the forwarding notices it left for
    /// other rooms, once the lock is released (rooms never lock each other).
    fn locked<T>(&self, slot: &RoomSlot, f: impl FnOnce(&mut Room) -> T) -> T {
        let (out, notices) = {
            let mut room = slot.room.lock();
            let out = f(&mut room);
            (out, room.take_forward_notices())
        };
        self.deliver(notices);
        out
    }

    /// Hands each notice to its room (a room that is gone needs none).
    fn deliver(&self, notices: Vec<ForwardNotice>) {
        for notice in notices {
            if let Some(slot) = self.slot(notice.room().as_str()) {
                self.locked(&slot, |r| r.apply_forward_notice(notice, Instant::now()));
            }
        }
    }

    /// Whether `spec` could join `room` now, creating it if `create` (nothing changes).
    pub fn check_join(&self, room: &RoomName, spec: &JoinSpec, create: bool) -> Result<(), RoomError> {
        match self.slot(room.as_str()) {
            Some(slot) => match slot.room.lock().check_join(spec) {
                Err(RoomError::RoomNotFound) if create => Ok(()),
                other => other,
            },
            None if create => Ok(()),
            None => Err(RoomError::RoomNotFound),
        }
    }

    /// Removes participants whose departure window ran out, then closes every room whose idle
    /// timeout ran out at `now`; returns the names of the rooms closed.
    pub fn close_idle(&self, now: Instant) -> Vec<RoomName> {
        let slots: Vec<_> = self.inner.rooms.iter().map(|e| (e.key().clone(), Arc::clone(e.value()))).collect();
        let mut closed = Vec::new();
        for (name, slot) in slots {
            let expired = self.locked(&slot, |room| {
                room.expire_detached(now);
                let expired = room.idle_expired(now);
                if expired {
                    room.close(proto::DisconnectReason::RoomClosed);
                }
                expired
            });
            // Remove only this exact room: a new room of the same name may have replaced it.
            if expired && self.inner.rooms.remove_if(&name, |_, s| Arc::ptr_eq(s, &slot)).is_some() {
                tracing::info!(room = %name, "room closed after its idle timeout");
                closed.push(name);
            }
        }
        closed
    }

    /// Number of live rooms.
    pub fn room_count(&self) -> usize {
        self.inner.rooms.len()
    }

    /// Runs `f` on every room in turn, each under its own lock (through [`Self::locked`], so
    /// forwarding notices go out). The map is copied first, so no map guard is held while a
    /// room is locked.
    fn for_each_room(&self, mut f: impl FnMut(&mut Room)) {
        let slots: Vec<_> = self.inner.rooms.iter().map(|e| Arc::clone(e.value())).collect();
        for slot in slots {
            self.locked(&slot, &mut f);
        }
    }

    /// Closes every room, telling every session to leave with `reason` (server shutdown).
    pub fn disconnect_everyone(&self, reason: proto::DisconnectReason) {
        self.for_each_room(|room| room.close(reason));
    }

    /// Sends every participant a fresh refresh token.
    pub fn refresh_tokens(&self) {
        self.for_each_room(Room::refresh_all_tokens);
    }

    /// Sends every room's batched presence updates, then a RoomUpdate where counts changed.
    pub fn flush_updates(&self) {
        self.for_each_room(|room| {
            room.flush_updates();
            room.announce_counts();
        });
    }

    /// Runs [`Self::close_idle`] every second, [`Self::flush_updates`] every batch interval and
    /// [`Self::refresh_tokens`] every five minutes, until the registry's last handle is dropped.
    pub fn spawn_reaper(&self) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.inner);
        let batch_every = self.inner.defaults.update_batch_interval;
        tokio::spawn(async move {
            let mut reap = tokio::time::interval(Duration::from_secs(1));
            let mut flush = tokio::time::interval(batch_every);
            let token_every = Duration::from_secs(300);
            let mut tokens = tokio::time::interval_at(Instant::now() + token_every, token_every);
            for i in [&mut reap, &mut flush, &mut tokens] {
                i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            }
            enum Job {
                Reap,
                Flush,
                Tokens,
            }
            loop {
                let job = tokio::select! {
                    _ = reap.tick() => Job::Reap,
                    _ = flush.tick() => Job::Flush,
                    _ = tokens.tick() => Job::Tokens,
                };
                let Some(inner) = weak.upgrade() else { break };
                let registry = Registry { inner };
                match job {
                    Job::Reap => {
                        registry.close_idle(Instant::now());
                    }
                    Job::Flush => registry.flush_updates(),
                    Job::Tokens => registry.refresh_tokens(),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn registry() -> Registry {
        Registry::new(
            RoomDefaults::default(),
            Arc::new(ManualClock::new(1_700_000_000_000)),
            Arc::new(crate::rooms::participant::NoRefresh),
        )
    }

    fn req(name: &str) -> CreateRequest {
        CreateRequest { name: RoomName::new(name), ..Default::default() }
    }

    #[test]
    fn create_is_idempotent_and_keeps_the_first_settings() {
        let r = registry();
        let now = Instant::now();
        let a = r.create_room(CreateRequest { metadata: "first".into(), empty_timeout: 9, ..req("a") }, now);
        assert!(a.created);
        assert_eq!(a.room.proto.empty_timeout, 9);
        assert_eq!(a.room.proto.departure_timeout, 20);
        assert_eq!(a.room.proto.creation_time, 1_700_000_000);
        let b = r.create_room(CreateRequest { metadata: "second".into(), ..req("a") }, now);
        assert!(!b.created);
        assert_eq!(b.room, a.room);
    }

    #[test]
    fn list_filters_by_name_in_request_order() {
        let r = registry();
        let now = Instant::now();
        for n in ["b", "a", "c"] {
            r.create_room(req(n), now);
        }
        let names = |v: Vec<Arc<RoomSnapshot>>| v.iter().map(|r| r.proto.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(r.list_rooms(&[])), ["a", "b", "c"]);
        assert_eq!(names(r.list_rooms(&["c".into(), "zz".into(), "a".into()])), ["c", "a"]);
    }

    #[test]
    fn delete_then_recreate_gives_a_new_sid() {
        let r = registry();
        let now = Instant::now();
        let first = r.create_room(req("a"), now).room;
        r.delete_room("a").unwrap();
        assert_eq!(r.delete_room("a"), Err(RoomError::RoomNotFound));
        assert_eq!(r.get_room("a"), Err(RoomError::RoomNotFound));
        let second = r.create_room(req("a"), now).room;
        assert_ne!(first.proto.sid, second.proto.sid);
    }

    #[test]
    fn idle_rooms_close_on_their_own_timeout() {
        let r = registry();
        let t0 = Instant::now();
        r.create_room(CreateRequest { empty_timeout: 5, ..req("short") }, t0);
        r.create_room(req("default"), t0);
        assert!(r.close_idle(t0 + Duration::from_secs(4)).is_empty());
        assert_eq!(r.close_idle(t0 + Duration::from_secs(5)), [RoomName::new("short")]);
        assert_eq!(r.room_count(), 1);
        assert_eq!(r.close_idle(t0 + Duration::from_secs(300)), [RoomName::new("default")]);
        assert_eq!(r.room_count(), 0);
    }

    #[test]
    fn create_replaces_a_room_closed_but_not_yet_removed() {
        let r = registry();
        let t0 = Instant::now();
        let old = r.create_room(CreateRequest { empty_timeout: 1, ..req("a") }, t0).room;
        // The reaper's first phase: the room is closed under its lock, still in the map.
        r.slot("a").unwrap().room.lock().close(proto::DisconnectReason::RoomClosed);
        assert_eq!(r.get_room("a"), Err(RoomError::RoomNotFound));
        assert!(r.list_rooms(&[]).is_empty());
        let new = r.create_room(req("a"), t0);
        assert!(new.created);
        assert_ne!(new.room.proto.sid, old.proto.sid);
        // The reaper's second phase must not remove the replacement.
        assert!(r.close_idle(t0 + Duration::from_secs(2)).is_empty());
        assert_eq!(r.get_room("a").unwrap().proto.sid, new.room.proto.sid);
    }

    #[test]
    fn a_join_racing_the_reaper_gets_a_fresh_room() {
        let r = registry();
        let t0 = Instant::now();
        let old = r.create_room(req("a"), t0).room;
        r.slot("a").unwrap().room.lock().close(proto::DisconnectReason::RoomClosed);
        let (outbox, _inbox) = Outbox::channel();
        let spec = JoinSpec { identity: crate::ids::ParticipantIdentity::new("p"), ..Default::default() };
        r.join(&RoomName::new("a"), spec, outbox, true, t0).unwrap();
        let now = r.get_room("a").unwrap();
        assert_ne!(now.proto.sid, old.proto.sid);
        assert_eq!(now.proto.num_participants, 1);
    }

    #[test]
    fn metadata_update_needs_a_live_room() {
        let r = registry();
        assert_eq!(r.update_room_metadata("a", "x".into()), Err(RoomError::RoomNotFound));
        r.create_room(req("a"), Instant::now());
        assert_eq!(r.update_room_metadata("a", "x".into()).unwrap().proto.metadata, "x");
        assert_eq!(r.get_room("a").unwrap().proto.metadata, "x");
    }

    struct CountingRefresher;
    impl TokenRefresher for CountingRefresher {
        fn refresh(&self, _: &str, _: &proto::ParticipantInfo, _: &crate::auth::VideoGrant, _: i64) -> Option<String> {
            Some("t".into())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn refresh_tokens_go_out_every_five_minutes() {
        use prost::Message as _;
        let r = Registry::new(
            RoomDefaults::default(),
            Arc::new(ManualClock::new(1_700_000_000_000)),
            Arc::new(CountingRefresher),
        );
        let (outbox, mut inbox) = Outbox::channel();
        let spec = JoinSpec { identity: crate::ids::ParticipantIdentity::new("p"), ..Default::default() };
        r.join(&RoomName::new("a"), spec, outbox, true, Instant::now()).unwrap();
        let task = r.spawn_reaper();
        let count_tokens = |inbox: &mut crate::rooms::Inbox| {
            let mut n = 0;
            while let Ok(f) = inbox.frames.try_recv() {
                let m = proto::SignalResponse::decode(f).unwrap().message;
                n += usize::from(matches!(m, Some(proto::signal_response::Message::RefreshToken(_))));
            }
            n
        };
        tokio::time::sleep(Duration::from_secs(299)).await;
        assert_eq!(count_tokens(&mut inbox), 1, "only the join's token so far");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(count_tokens(&mut inbox), 1, "one more after five minutes");
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn reaper_closes_rooms_in_the_background() {
        let r = registry();
        r.create_room(CreateRequest { empty_timeout: 3, ..req("a") }, Instant::now());
        let task = r.spawn_reaper();
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(r.room_count(), 1);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(r.room_count(), 0);
        task.abort();
    }

    #[test]
    fn a_move_that_fails_after_creating_its_destination_leaves_no_room_behind() {
        let r = registry();
        let now = Instant::now();
        let a = RoomName::new("a");
        let (outbox, inbox) = Outbox::channel();
        let spec = crate::rooms::testkit::spec("alice", 16);
        let (sid, home) = r.join(&a, spec, outbox, true, now).unwrap();
        let key =
            SessionKey { identity: crate::ids::ParticipantIdentity::new("alice"), sid, connection: inbox.connection };
        r.locked(&r.slot("a").unwrap(), |room| room.session_started(&key));
        // The session's end is recorded but not yet applied: the first checks pass, the
        // taking out refuses (a participant whose session ended cannot move).
        assert!(home.settle(key.connection, crate::rooms::participant::SessionEnd::Lost).is_some());
        assert!(matches!(r.move_participant("a", "alice", "fresh"), Err(RoomError::CannotMove(_))));
        assert_eq!(r.get_room("fresh"), Err(RoomError::RoomNotFound), "the destination it created is gone");
        // A destination that existed before stays.
        r.create_room(req("kept"), now);
        assert!(r.move_participant("a", "alice", "kept").is_err());
        assert!(r.get_room("kept").is_ok());
        assert!(r.get_room("a").unwrap().proto.num_participants == 1, "alice is still in a");
    }
}
