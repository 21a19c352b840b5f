//! Forwarding a participant into other rooms (ForwardParticipant).
//!
//! A forwarded participant stays where it is (its *source* room) and also appears in each
//! destination as a **forwarded copy**: listed, seen by everyone there, with its published
//! tracks, but without a socket of its own (its info carries `kind_details: FORWARDED`). The
//! copy's tracks are the source's publications, same track sids: with the media plane,
//! subscribers in a destination subscribe to the one publication in the source room (found
//! through [`Forwarded::from`]), never to a copy of it.
//!
//! Rooms never lock each other, so the two sides talk through [`ForwardNotice`]s that a room
//! queues under its lock and the registry delivers after releasing it:
//! - the source notices, after any change, that a forwarded participant's info changed
//!   (metadata, mute, tracks: one pointer compare per forwarded participant) and sends a
//!   `Mirror`; when the participant is gone (left, removed, moved, replaced) it sends `Stop`;
//! - a destination that drops a copy (RemoveParticipant there, the room closing) sends
//!   `Unforward` to the source, which stops forwarding there.
//!
//! Mirrors carry the participant's version and a copy applies only newer ones, so notices
//! delivered out of order by concurrent calls cannot roll a copy back.

use std::{collections::BTreeMap, sync::Arc};

use tokio::time::Instant;

use super::{ParticipantSnapshot, RoomError, Snapshot, room::Room};
use crate::{
    ids::{ParticipantIdentity, ParticipantSid, RoomName},
    proto::{self, DisconnectReason, participant_info::KindDetail, participant_info::State},
};

/// Rooms one participant may be forwarded to at once.
pub const MAX_DESTINATIONS: usize = 16;

/// Names one forwarded copy for its whole life, so the source and a destination agree on
/// which copy a notice is about even when a copy is removed and another added meanwhile.
pub type CopyId = u64;

fn next_copy_id() -> CopyId {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A forwarded copy, as a destination room keeps it.
#[derive(Debug, Clone)]
pub struct Forwarded {
    /// The room the participant (and its publications) lives in.
    pub from: RoomName,
    /// The info shown here: the source's, marked FORWARDED.
    pub snapshot: Arc<ParticipantSnapshot>,
    /// Added to the source's versions, so that a copy shown again after being removed here
    /// never goes back below the version its removal was announced with.
    offset: u32,
    /// Which copy this is.
    id: CopyId,
}

/// What the source room remembers of one forwarded participant.
#[derive(Debug, Clone)]
pub struct Forwarding {
    sid: ParticipantSid,
    /// The destinations, each with the copy shown there.
    to: BTreeMap<RoomName, CopyId>,
    /// The source snapshot the copies last reflected.
    mirrored: Arc<ParticipantSnapshot>,
}

/// A message between a source room and a destination, delivered by the registry.
#[derive(Debug, Clone)]
pub enum ForwardNotice {
    /// To a destination: the participant's info changed.
    Mirror { to: RoomName, info: Arc<ParticipantSnapshot> },
    /// To a destination: the participant is gone from its source; drop the copy.
    Stop { to: RoomName, identity: ParticipantIdentity, sid: ParticipantSid, reason: DisconnectReason },
    /// To the source: a destination dropped its copy `copy`; stop forwarding there.
    Unforward { to: RoomName, identity: ParticipantIdentity, sid: ParticipantSid, from: RoomName, copy: CopyId },
}

impl ForwardNotice {
    /// The room this notice is for.
    pub fn room(&self) -> &RoomName {
        match self {
            Self::Mirror { to, .. } | Self::Stop { to, .. } | Self::Unforward { to, .. } => to,
        }
    }
}

/// The source's info as a destination shows it.
fn as_copy(info: &proto::ParticipantInfo, offset: u32) -> Arc<ParticipantSnapshot> {
    let mut copy = info.clone();
    copy.version = copy.version.wrapping_add(offset);
    if !copy.kind_details.contains(&(KindDetail::Forwarded as i32)) {
        copy.kind_details.push(KindDetail::Forwarded as i32);
    }
    Snapshot::new(copy)
}

impl Room {
    // --- source side ---

    /// The current info of `identity`, to start forwarding it (it must be here).
    pub fn forward_source(&self, identity: &str) -> Result<Arc<ParticipantSnapshot>, RoomError> {
        if self.closed {
            return Err(RoomError::ParticipantNotFound);
        }
        if self.forwarded.contains_key(identity) {
            return Err(RoomError::Forwarded);
        }
        let p = self.participants.get(identity).ok_or(RoomError::ParticipantNotFound)?;
        if p.dependent() {
            return Err(RoomError::CannotMove("agents and egress cannot be forwarded"));
        }
        if !p.connected {
            // Its socket is not up yet: it has not joined as far as anyone knows.
            return Err(RoomError::CannotMove("participant is not connected"));
        }
        if self.forwarding.get(identity).is_some_and(|f| f.to.len() >= MAX_DESTINATIONS) {
            return Err(RoomError::CannotMove("participant is forwarded to too many rooms"));
        }
        Ok(Arc::clone(&p.snapshot))
    }

    /// Records that `copied` (this participant's info when copied) now has copy `copy` in
    /// `to`. False when that session is no longer here (it left meanwhile): the copy must go.
    pub fn start_forwarding(&mut self, copied: &Arc<ParticipantSnapshot>, to: &RoomName, copy: CopyId) -> bool {
        let identity = ParticipantIdentity::new(copied.proto.identity.clone());
        let Some(p) = self.participants.get(&identity) else { return false };
        if p.sid.as_str() != copied.proto.sid {
            return false;
        }
        let (sid, current) = (p.sid.clone(), Arc::clone(&p.snapshot));
        let entry = self.forwarding.entry(identity).or_insert_with(|| Forwarding {
            sid,
            to: BTreeMap::new(),
            mirrored: Arc::clone(copied),
        });
        // Copies are numbered in creation order and a room shows one copy of a participant at
        // a time, so the newest id is the one shown: a forward that lost a race with a later
        // one (its copy already removed there) must not take the record back.
        let recorded = entry.to.entry(to.clone()).or_insert(copy);
        *recorded = (*recorded).max(copy);
        if !Arc::ptr_eq(&current, copied) {
            // It changed since it was copied, and the change went only to the older copies.
            self.forward_outbox.push(ForwardNotice::Mirror { to: to.clone(), info: current });
        }
        true
    }

    /// The destinations each forwarded participant is in, for the API and tests.
    pub fn forwarded_to(&self, identity: &str) -> Vec<RoomName> {
        self.forwarding.get(identity).map(|f| f.to.keys().cloned().collect()).unwrap_or_default()
    }

    /// Notices owed to other rooms since the last call: mirrors of changed participants,
    /// stops for departed ones, unforwards for dropped copies. Cheap when nothing is
    /// forwarded.
    pub fn take_forward_notices(&mut self) -> Vec<ForwardNotice> {
        let mut out = std::mem::take(&mut self.forward_outbox);
        if self.forwarding.is_empty() {
            return out;
        }
        let mut gone = Vec::new();
        for (identity, f) in &mut self.forwarding {
            match self.participants.get(identity) {
                Some(p) if p.sid == f.sid => {
                    if !Arc::ptr_eq(&p.snapshot, &f.mirrored) {
                        f.mirrored = Arc::clone(&p.snapshot);
                        for to in f.to.keys() {
                            out.push(ForwardNotice::Mirror { to: to.clone(), info: Arc::clone(&p.snapshot) });
                        }
                    }
                }
                _ => {
                    // Why it left, from this room's log (a move, a removal, a leave…).
                    let reason = self
                        .departures
                        .iter()
                        .rev()
                        .find(|d| d.info.sid == f.sid.as_str())
                        .and_then(|d| DisconnectReason::try_from(d.info.disconnect_reason).ok())
                        .unwrap_or(DisconnectReason::UnknownReason);
                    for to in f.to.keys() {
                        out.push(ForwardNotice::Stop {
                            to: to.clone(),
                            identity: identity.clone(),
                            sid: f.sid.clone(),
                            reason,
                        });
                    }
                    gone.push(identity.clone());
                }
            }
        }
        for identity in gone {
            self.forwarding.remove(&identity);
        }
        out
    }

    // --- destination side ---

    /// Whether `identity` is here, in person, as a forwarded copy, or on its way in (a move
    /// between its phases holds its place).
    pub fn has_identity(&self, identity: &str) -> bool {
        self.participants.contains_key(identity)
            || self.forwarded.contains_key(identity)
            || self.arriving.contains(identity)
    }

    /// Takes in a forwarded copy of `info` from room `from`. Everyone here sees it arrive.
    /// Returns the copy's id, for [`Self::start_forwarding`] at the source.
    pub fn add_forwarded(&mut self, from: RoomName, info: &ParticipantSnapshot) -> Result<CopyId, RoomError> {
        if self.closed {
            return Err(RoomError::RoomNotFound);
        }
        if self.has_identity(&info.proto.identity) {
            return Err(RoomError::AlreadyInRoom);
        }
        let max = self.spec.max_participants;
        if max > 0 && self.occupancy() >= max {
            return Err(RoomError::RoomFull);
        }
        // Shown here before and removed? Continue above the version its removal carried.
        let offset = self
            .departure_of(&info.proto.sid)
            .map_or(0, |gone| gone.version.saturating_add(1).saturating_sub(info.proto.version));
        let snapshot = as_copy(&info.proto, offset);
        let identity = ParticipantIdentity::new(info.proto.identity.clone());
        let hidden = info.proto.permission.as_ref().is_some_and(|p| p.hidden);
        let id = next_copy_id();
        self.forwarded.insert(identity.clone(), Forwarded { from, snapshot: Arc::clone(&snapshot), offset, id });
        self.refresh();
        tracing::info!(room = %self.name, participant = %identity, "forwarded participant added");
        self.show_copy(&snapshot.proto, hidden);
        Ok(id)
    }

    /// Whether copy `copy` of `identity` is still shown here.
    pub fn has_copy(&self, identity: &str, copy: CopyId) -> bool {
        self.forwarded.get(identity).is_some_and(|c| c.id == copy)
    }

    /// Removes the copy of `identity` (RemoveParticipant here): everyone here sees it go, and
    /// the source is told to stop forwarding here.
    pub fn remove_forwarded(&mut self, identity: &str, reason: DisconnectReason) -> Result<(), RoomError> {
        let copy = self.forwarded.remove(identity).ok_or(RoomError::ParticipantNotFound)?;
        self.hide_copy(&copy, reason, Instant::now());
        self.forward_outbox.push(ForwardNotice::Unforward {
            to: copy.from.clone(),
            identity: ParticipantIdentity::new(identity),
            sid: ParticipantSid::new(copy.snapshot.proto.sid.clone()),
            from: self.name.clone(),
            copy: copy.id,
        });
        Ok(())
    }

    /// Drops every copy as the room closes, telling their sources.
    pub(super) fn drop_all_forwarded(&mut self) {
        for (identity, copy) in std::mem::take(&mut self.forwarded) {
            self.forward_outbox.push(ForwardNotice::Unforward {
                to: copy.from.clone(),
                identity,
                sid: ParticipantSid::new(copy.snapshot.proto.sid.clone()),
                from: self.name.clone(),
                copy: copy.id,
            });
        }
    }

    /// Applies a notice from another room.
    pub fn apply_forward_notice(&mut self, notice: ForwardNotice, now: Instant) {
        match notice {
            ForwardNotice::Mirror { info, .. } => {
                let Some(copy) = self.forwarded.get_mut(info.proto.identity.as_str()) else { return };
                let shown = info.proto.version.wrapping_add(copy.offset);
                if copy.snapshot.proto.sid != info.proto.sid || copy.snapshot.proto.version >= shown {
                    return;
                }
                copy.snapshot = as_copy(&info.proto, copy.offset);
                let shown = copy.snapshot.proto.clone();
                let hidden = shown.permission.as_ref().is_some_and(|p| p.hidden);
                self.refresh();
                self.show_copy(&shown, hidden);
            }
            ForwardNotice::Stop { identity, sid, reason, .. } => {
                if self.forwarded.get(&identity).is_some_and(|c| c.snapshot.proto.sid == sid.as_str())
                    && let Some(copy) = self.forwarded.remove(&identity)
                {
                    tracing::info!(room = %self.name, participant = %identity, "forwarding stopped at the source");
                    self.hide_copy(&copy, reason, now);
                }
            }
            ForwardNotice::Unforward { identity, sid, from, copy, .. } => {
                if let Some(f) = self.forwarding.get_mut(&identity)
                    && f.sid == sid
                    && f.to.get(&from) == Some(&copy)
                {
                    f.to.remove(&from);
                    if f.to.is_empty() {
                        self.forwarding.remove(&identity);
                    }
                }
            }
        }
    }

    /// Everyone here hears of a copy's (new) info.
    fn show_copy(&mut self, info: &proto::ParticipantInfo, hidden: bool) {
        if hidden {
            return;
        }
        let sid = ParticipantSid::new(info.sid.clone());
        // A copy has no socket here, so `include_self` has nobody to reach.
        self.broadcast(&sid, info.clone(), false, false);
    }

    /// Everyone here sees a copy go.
    fn hide_copy(&mut self, copy: &Forwarded, reason: DisconnectReason, now: Instant) {
        if self.participant_count() == 0 {
            self.last_departure = Some(now);
        }
        self.refresh();
        let mut info = copy.snapshot.proto.clone();
        info.state = State::Disconnected as i32;
        info.disconnect_reason = reason as i32;
        info.tracks.clear();
        info.version = info.version.wrapping_add(1);
        let hidden = info.permission.as_ref().is_some_and(|p| p.hidden);
        if !hidden {
            let (sid, identity) =
                (ParticipantSid::new(info.sid.clone()), ParticipantIdentity::new(info.identity.clone()));
            self.record_departure(&sid, &identity, info.version, reason, now);
        }
        self.show_copy(&info, hidden);
    }

    /// Copies here, by identity (for listings).
    pub(super) fn forwarded_snapshots(&self) -> impl Iterator<Item = &Arc<ParticipantSnapshot>> {
        self.forwarded.values().map(|c| &c.snapshot)
    }
}

/// The destination side's copies.
pub type ForwardedCopies = BTreeMap<ParticipantIdentity, Forwarded>;
/// The source side's records.
pub type Forwardings = BTreeMap<ParticipantIdentity, Forwarding>;

#[cfg(test)]
mod tests {
    use crate::rooms::testkit;

    use super::*;

    fn room(name: &str) -> Room {
        testkit::room(name, 20)
    }

    fn join(r: &mut Room, identity: &str) -> crate::rooms::Inbox {
        testkit::join(r, identity, 16).1
    }

    /// Delivers notices between the two rooms until none is left.
    fn settle(a: &mut Room, b: &mut Room) {
        loop {
            let notices: Vec<_> = a.take_forward_notices().into_iter().chain(b.take_forward_notices()).collect();
            if notices.is_empty() {
                return;
            }
            for n in notices {
                let target = if n.room() == a.name() { &mut *a } else { &mut *b };
                target.apply_forward_notice(n, Instant::now());
            }
        }
    }

    #[test]
    fn copies_follow_changes_ignore_stale_mirrors_and_go_with_the_source() {
        let (mut a, mut b) = (room("a"), room("b"));
        let _host = join(&mut a, "host");
        let info = a.forward_source("host").unwrap();
        let copy = b.add_forwarded(RoomName::new("a"), &info).unwrap();
        assert!(a.start_forwarding(&info, &RoomName::new("b"), copy));
        assert_eq!(b.participant_count(), 1, "a copy counts where it is shown");

        let change = crate::rooms::ParticipantChange { metadata: "v2".into(), ..Default::default() };
        a.update_participant("host", change).unwrap();
        let newer = a.participant_snapshot("host").unwrap();
        settle(&mut a, &mut b);
        assert_eq!(b.participant_info("host").unwrap().metadata, "v2");
        // An older mirror arriving late changes nothing.
        b.apply_forward_notice(
            ForwardNotice::Mirror { to: RoomName::new("b"), info: Arc::clone(&info) },
            Instant::now(),
        );
        assert_eq!(b.participant_info("host").unwrap().version, as_copy(&newer.proto, 0).proto.version);
        assert_eq!(b.participant_info("host").unwrap().metadata, "v2");

        a.remove("host", DisconnectReason::ParticipantRemoved, 0, Instant::now()).unwrap();
        settle(&mut a, &mut b);
        assert!(b.participant_info("host").is_err());
        assert!(a.forwarding.is_empty());
    }

    #[test]
    fn a_destination_closing_tells_the_source() {
        let (mut a, mut b) = (room("a"), room("b"));
        let _host = join(&mut a, "host");
        let info = a.forward_source("host").unwrap();
        let copy = b.add_forwarded(RoomName::new("a"), &info).unwrap();
        assert!(a.start_forwarding(&info, &RoomName::new("b"), copy));
        assert_eq!(a.forwarded_to("host"), [RoomName::new("b")]);
        b.close(DisconnectReason::RoomDeleted);
        settle(&mut a, &mut b);
        assert!(a.forwarded_to("host").is_empty());
        assert_eq!(b.add_forwarded(RoomName::new("a"), &info), Err(RoomError::RoomNotFound));
    }

    #[test]
    fn an_unforward_names_its_copy_so_a_newer_copy_keeps_its_record() {
        let (mut a, mut b) = (room("a"), room("b"));
        let _host = join(&mut a, "host");
        let info = a.forward_source("host").unwrap();
        let first = b.add_forwarded(RoomName::new("a"), &info).unwrap();
        // The copy is removed there before the source records it: its notice finds nothing.
        b.remove_forwarded("host", DisconnectReason::ParticipantRemoved).unwrap();
        settle(&mut a, &mut b);
        // A second forward puts a new copy there and records it.
        let second = b.add_forwarded(RoomName::new("a"), &info).unwrap();
        assert_ne!(first, second);
        assert!(a.start_forwarding(&info, &RoomName::new("b"), second));
        // The first forward's late record and its undo (the registry's check finds the first
        // copy gone) leave the second copy's record alone.
        assert!(a.start_forwarding(&info, &RoomName::new("b"), first));
        assert!(!b.has_copy("host", first));
        let undo = ForwardNotice::Unforward {
            to: RoomName::new("a"),
            identity: ParticipantIdentity::new("host"),
            sid: ParticipantSid::new(info.proto.sid.clone()),
            from: RoomName::new("b"),
            copy: first,
        };
        a.apply_forward_notice(undo, Instant::now());
        // The record still names the copy shown there, and follows the participant.
        assert!(b.has_copy("host", second));
        assert_eq!(a.forwarded_to("host"), [RoomName::new("b")]);
        a.update_participant("host", crate::rooms::ParticipantChange { metadata: "v2".into(), ..Default::default() })
            .unwrap();
        settle(&mut a, &mut b);
        assert_eq!(b.participant_info("host").unwrap().metadata, "v2");
    }

    #[test]
    fn a_copy_whose_source_session_was_replaced_goes_for_every_client() {
        let (mut a, mut b) = (room("a"), room("b"));
        let _host = join(&mut a, "host");
        let mut watcher = join(&mut b, "watcher");
        let info = a.forward_source("host").unwrap();
        let copy = b.add_forwarded(RoomName::new("a"), &info).unwrap();
        assert!(a.start_forwarding(&info, &RoomName::new("b"), copy));
        b.flush_updates();
        testkit::drain(&mut watcher);
        // host rejoins its own room: the old session (the one forwarded) is replaced there.
        let _again = join(&mut a, "host");
        settle(&mut a, &mut b);
        b.flush_updates();
        let seen = testkit::drain(&mut watcher);
        assert!(
            seen.iter().any(|m| matches!(m, crate::proto::signal_response::Message::Update(u)
                if u.participants.iter().any(|p| p.identity == "host" && p.state == State::Disconnected as i32))),
            "a protocol 16 client in b must see the copy go (nothing replaces it there): {seen:?}"
        );
        assert!(b.participant_info("host").is_err());
    }
}
