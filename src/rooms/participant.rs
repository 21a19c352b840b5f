//! One participant session in a room, and the bounded queue of frames waiting for its socket.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use bytes::Bytes;
use tokio::{
    sync::{Notify, mpsc},
    time::Instant,
};

use crate::{
    ids::{ParticipantIdentity, ParticipantSid, RoomName},
    proto::{self, participant_info::State},
};

/// Frames queued for one session's socket, in the order the room produced them.
///
/// Bounded: the room pushes with `try_send` while it holds its lock, so a stalled client can
/// never block the room. A full queue gets the participant removed and its writer told to stop
/// at once through `kick` (the queue itself may be full, so it cannot carry that message).
#[derive(Debug, Clone)]
pub struct Outbox {
    /// Encoded `SignalResponse`s. Capacity: [`Outbox::CAPACITY`] frames.
    tx: mpsc::Sender<Bytes>,
    /// Wakes the writer to close the socket without draining the queue.
    kick: Arc<Notify>,
    /// Which socket this queue feeds.
    connection: ConnectionId,
}

/// One socket's claim on a participant. A resumed participant keeps its sid but gets a new
/// connection, so the old socket's late "I lost my client" cannot touch the new one.
/// Numbered in creation order: a larger id is a newer socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnectionId(u64);

impl ConnectionId {
    fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// How a session ended, as the room must hear it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// The client left: the participant leaves the room with this reason.
    Left(proto::DisconnectReason),
    /// The socket was lost: the participant waits for a resume.
    Lost,
}

/// Which room a participant is in, shared by the participant (its room updates it when the
/// participant moves) and its session (which sends requests and its end there).
///
/// A session's end is always recorded here first. A move cannot start once the session has
/// ended (its end may be on its way to the source room), and an end that comes while a move
/// is under way is applied by the destination on arrival, so a participant can never arrive
/// attached to a socket nobody serves. Locked alone, or after a room lock, never before one.
#[derive(Debug)]
pub struct Home(parking_lot::Mutex<HomeState>);

#[derive(Debug)]
struct HomeState {
    room: RoomName,
    moving: bool,
    /// How a session (by its socket) ended, once one has.
    ended: Option<(ConnectionId, SessionEnd)>,
}

impl Home {
    /// A participant living in `room`.
    pub fn new(room: RoomName) -> Arc<Self> {
        Arc::new(Self(parking_lot::Mutex::new(HomeState { room, moving: false, ended: None })))
    }

    /// The room the participant is in (or last left, while moving).
    pub fn room(&self) -> RoomName {
        self.0.lock().room.clone()
    }

    /// Whether a move is under way (the participant is in no room for a moment).
    pub fn is_moving(&self) -> bool {
        self.0.lock().moving
    }

    /// Records the end of the session on `connection`: where to apply it, or `None` when a
    /// move will apply it on arrival.
    pub fn settle(&self, connection: ConnectionId, end: SessionEnd) -> Option<RoomName> {
        let mut home = self.0.lock();
        // Connections are numbered in order: a late end from an older socket (replaced by a
        // resume) must not hide the end of the newer one that a move will look for.
        if home.ended.is_none_or(|(c, _)| c <= connection) {
            home.ended = Some((connection, end));
        }
        (!home.moving).then(|| home.room.clone())
    }

    /// The participant, served by `connection`, is leaving its room to move (under the source
    /// room's lock). False when that session has ended: then it must not move (its end is on
    /// the way to this room).
    pub(super) fn begin_move(&self, connection: ConnectionId) -> bool {
        let mut home = self.0.lock();
        if home.ended.is_some_and(|(c, _)| c == connection) {
            return false;
        }
        home.moving = true;
        true
    }

    /// The participant, served by `connection`, arrived in `room` (under its lock); returns
    /// that session's end if it came on the way.
    pub(super) fn finish_move(&self, room: RoomName, connection: ConnectionId) -> Option<SessionEnd> {
        let mut home = self.0.lock();
        home.room = room;
        home.moving = false;
        home.ended.filter(|(c, _)| *c == connection).map(|(_, end)| end)
    }
}

/// What a socket speaks for: the identity (from its token), the session's sid, and the
/// socket itself. Requests and news from a socket count only while it is the participant's
/// current one (a replaced or resumed session's old socket changes nothing), and finding the
/// participant is a lookup by identity rather than a scan for the sid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionKey {
    /// The participant's identity.
    pub identity: ParticipantIdentity,
    /// The session's sid.
    pub sid: ParticipantSid,
    /// The socket.
    pub connection: ConnectionId,
}

/// The session side of an [`Outbox`].
#[derive(Debug)]
pub struct Inbox {
    /// Frames to write, in order. `None` from `recv` means the room dropped the participant
    /// after queueing its last words (a leave): write what is queued, then close.
    pub frames: mpsc::Receiver<Bytes>,
    /// Fires when the participant was dropped for not reading: close without draining.
    pub kick: Arc<Notify>,
    /// The connection the frames are for (see [`ConnectionId`]).
    pub connection: ConnectionId,
}

/// A push found the queue full (the client stopped reading).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull;

impl Outbox {
    /// Frames a session may have waiting before it counts as stalled.
    pub const CAPACITY: usize = 1024;

    /// A connected pair with [`Self::CAPACITY`].
    pub fn channel() -> (Outbox, Inbox) {
        Self::with_capacity(Self::CAPACITY)
    }

    /// A connected pair with a given capacity (tests use small ones).
    pub fn with_capacity(capacity: usize) -> (Outbox, Inbox) {
        let (tx, frames) = mpsc::channel(capacity);
        let kick = Arc::new(Notify::new());
        let connection = ConnectionId::next();
        (Outbox { tx, kick: Arc::clone(&kick), connection }, Inbox { frames, kick, connection })
    }

    /// The connection this queue feeds.
    pub fn connection(&self) -> ConnectionId {
        self.connection
    }

    /// Queues one frame without waiting. A closed queue is fine: its session ended, and the
    /// participant is either leaving or waiting for a resume, which resends the whole state.
    pub fn push(&self, frame: Bytes) -> Result<(), QueueFull> {
        match self.tx.try_send(frame) {
            Err(mpsc::error::TrySendError::Full(_)) => Err(QueueFull),
            _ => Ok(()),
        }
    }

    /// Tells the writer to close now.
    pub fn kick(&self) {
        self.kick.notify_one();
    }

    /// Queues a session's last frame; a client too far behind to take it is closed at once.
    pub fn push_or_kick(&self, frame: Bytes) {
        if self.push(frame).is_err() {
            self.kick();
        }
    }
}

/// Who is joining: everything the room needs from the token and the connection.
#[derive(Debug, Clone, Default)]
pub struct JoinSpec {
    /// Identity from the token.
    pub identity: ParticipantIdentity,
    /// Display name.
    pub name: String,
    /// Metadata.
    pub metadata: String,
    /// Attributes.
    pub attributes: HashMap<String, String>,
    /// `ParticipantInfo.Kind` as its number.
    pub kind: i32,
    /// Effective permission from the grant.
    pub permission: proto::ParticipantPermission,
    /// The client's signalling protocol version (`protocol` query parameter).
    pub protocol: i32,
    /// Region of this server, reported in the info.
    pub region: String,
    /// Expiry of the token the session joined with (Unix seconds), for refresh tokens.
    pub token_expires_at: i64,
    /// When that token was made: the later of its `iat` and `nbf` (Unix seconds; 0 if it says
    /// neither, which `revoke_token_ts` then treats as older than any revocation).
    pub token_issued_at: i64,
    /// The token's whole room grant, so refresh tokens keep what the permission does not
    /// carry (admin grants, destination room, …).
    pub grant: crate::auth::VideoGrant,
}

impl JoinSpec {
    /// Agents and egress do not count toward `max_participants` or `num_participants`.
    pub fn dependent(&self) -> bool {
        self.kind == proto::participant_info::Kind::Agent as i32
            || self.kind == proto::participant_info::Kind::Egress as i32
    }
}

/// Mints the `refresh_token` a participant gets at join and after each change of its claims.
///
/// A port: the domain says *when* and *for whom*; the auth layer knows keys and formats.
pub trait TokenRefresher: Send + Sync + 'static {
    /// A token for `info` in `room`, keeping what `grant` (the joining token's) says beyond
    /// the current permission, or `None` when none can be minted.
    fn refresh(
        &self,
        room: &str,
        info: &proto::ParticipantInfo,
        grant: &crate::auth::VideoGrant,
        original_expiry: i64,
    ) -> Option<String>;
}

/// Mints nothing (unit tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoRefresh;

impl TokenRefresher for NoRefresh {
    fn refresh(&self, _: &str, _: &proto::ParticipantInfo, _: &crate::auth::VideoGrant, _: i64) -> Option<String> {
        None
    }
}

/// A participant session as the room keeps it.
#[derive(Debug)]
pub struct Participant {
    pub(super) sid: ParticipantSid,
    pub(super) spec: JoinSpec,
    pub(super) state: State,
    pub(super) joined_at_ms: i64,
    /// Grows with every change anyone is told about.
    pub(super) version: u32,
    /// Published tracks, in publication order.
    pub(super) tracks: Vec<proto::TrackInfo>,
    /// Client id (`cid`) of each published track, by track sid, for spotting repeated
    /// requests. Pruned to the current tracks on every add, so bounded by the track cap.
    pub(super) track_cids: BTreeMap<String, String>,
    /// Has published a track (and may still).
    pub(super) is_publisher: bool,
    /// The info as of the last [`Participant::bump`]; every change ends with a bump.
    pub(super) snapshot: Arc<super::ParticipantSnapshot>,
    pub(super) outbox: Outbox,
    /// The room it is in, as its session sees it (see [`Home`]).
    pub(super) home: Arc<Home>,
    /// When its socket was lost, while it waits for a resume (see [`super::resume`]).
    pub(super) detached_since: Option<Instant>,
    /// Subscriptions asked for by track sid (true = subscribe), kept for the media plane.
    /// Only sids of tracks that exist are kept, so the map is bounded by the room's tracks.
    pub(super) subscriptions: BTreeMap<String, bool>,
    /// Its socket has been served (the WebSocket upgrade completed). Until then the backend
    /// has not been told it joined, and a departure is an aborted connection.
    pub(super) connected: bool,
}

impl Participant {
    pub(super) fn new(spec: JoinSpec, outbox: Outbox, now_ms: i64, home: Arc<Home>) -> Self {
        let mut p = Self {
            sid: ParticipantSid::generate(),
            spec,
            state: State::Joining,
            joined_at_ms: now_ms,
            version: 0,
            tracks: Vec::new(),
            track_cids: BTreeMap::new(),
            is_publisher: false,
            snapshot: super::Snapshot::new(proto::ParticipantInfo::default()),
            outbox,
            home,
            detached_since: None,
            subscriptions: BTreeMap::new(),
            connected: false,
        };
        p.snapshot = super::Snapshot::new(p.to_proto());
        p
    }

    /// The session's sid.
    pub fn sid(&self) -> &ParticipantSid {
        &self.sid
    }

    /// The identity.
    pub fn identity(&self) -> &ParticipantIdentity {
        &self.spec.identity
    }

    /// The room it is in, shared with its session.
    pub fn home(&self) -> Arc<Home> {
        Arc::clone(&self.home)
    }

    /// Hidden participants are invisible to everyone else.
    pub fn hidden(&self) -> bool {
        self.spec.permission.hidden
    }

    /// Agents and egress do not count toward `max_participants` or `num_participants`.
    pub fn dependent(&self) -> bool {
        self.spec.dependent()
    }

    /// Records a change: a higher version, and a fresh snapshot of the info.
    pub(super) fn bump(&mut self) {
        self.version = self.version.wrapping_add(1);
        self.snapshot = super::Snapshot::new(self.to_proto());
    }

    /// The info as of the last change (cheap: an `Arc` clone).
    pub fn snapshot(&self) -> Arc<super::ParticipantSnapshot> {
        Arc::clone(&self.snapshot)
    }

    /// The participant as the API and other participants see it.
    pub fn to_proto(&self) -> proto::ParticipantInfo {
        let s = &self.spec;
        proto::ParticipantInfo {
            sid: self.sid.to_string(),
            identity: s.identity.to_string(),
            state: self.state as i32,
            metadata: s.metadata.clone(),
            joined_at: self.joined_at_ms.div_euclid(1000),
            joined_at_ms: self.joined_at_ms,
            name: s.name.clone(),
            version: self.version,
            permission: Some(s.permission.clone()),
            region: s.region.clone(),
            kind: s.kind,
            attributes: s.attributes.clone(),
            tracks: self.tracks.clone(),
            is_publisher: self.is_publisher,
            ..Default::default()
        }
    }
}
