//! Operations across two rooms: MoveParticipant and ForwardParticipant. Each runs in short
//! phases, one room lock at a time (see [`crate::rooms::moves`] and [`crate::rooms::forwards`]),
//! handles the destination closing in between, and leaves no room behind that it created for
//! nothing.

use std::sync::Arc;

use tokio::time::Instant;

use super::{Registry, RoomSlot};
use crate::{
    ids::{ParticipantSid, RoomName},
    proto,
    rooms::{CreateRequest, RoomError, forwards::ForwardNotice},
};

impl Registry {
    /// MoveParticipant: moves `identity` from `room` to `destination` (created if missing),
    /// keeping its socket. See [`super::moves`] for the two phases; this never holds two room
    /// locks. A destination deleted between the phases is created again; if it keeps being
    /// deleted, the participant is told the room was deleted and its session ends.
    pub fn move_participant(&self, room: &str, identity: &str, destination: &str) -> Result<(), RoomError> {
        let now = Instant::now();
        let source = self.slot(room).ok_or(RoomError::ParticipantNotFound)?;
        let sid = source.room.lock().check_move_out(identity)?;
        let (from, dest_name) = (RoomName::new(room), RoomName::new(destination));
        let (target, created) = self.live_slot(&dest_name, now)?;
        // The destination holds a place from here on (a join cannot take it between phases).
        if let Err(e) = target.room.lock().reserve_arrival(identity, &sid, &from) {
            self.discard_unused(&dest_name, &target, created);
            return Err(e);
        }

        let moving = match self.locked(&source, |r| r.move_out(identity, now)) {
            Ok(m) => m,
            Err(e) => {
                target.room.lock().release_arrival(identity);
                self.discard_unused(&dest_name, &target, created);
                return Err(e);
            }
        };
        let mut moving = Some(moving);
        for _ in 0..3 {
            let Ok((slot, _)) = self.live_slot(&dest_name, now) else { continue };
            let arrived = self.locked(&slot, |dest| {
                if dest.is_closed() {
                    return None;
                }
                moving.take().map(|m| dest.move_in(m, now))
            });
            if let Some(result) = arrived {
                return result;
            }
        }
        if let Some(m) = moving {
            m.abandon(proto::DisconnectReason::RoomDeleted);
        }
        Err(RoomError::RoomNotFound)
    }

    /// The live room named `name`, created with the defaults if there is none; and whether
    /// this call created it.
    fn live_slot(&self, name: &RoomName, now: Instant) -> Result<(Arc<RoomSlot>, bool), RoomError> {
        let mut created = false;
        for _ in 0..3 {
            if let Some(slot) = self.slot(name.as_str())
                && !slot.room.lock().is_closed()
            {
                return Ok((slot, created));
            }
            // Another call may have created it first; then it is not ours to discard.
            created |= self.create_room(CreateRequest { name: name.clone(), ..Default::default() }, now).created;
        }
        Err(RoomError::RoomNotFound)
    }

    /// Undoes the creation of a destination that a failed move or forward created, if nobody
    /// is in it or on the way (a refused request leaves no room behind; the backend sees it
    /// start and finish). A room someone joined meanwhile is kept.
    fn discard_unused(&self, name: &RoomName, slot: &Arc<RoomSlot>, created: bool) {
        if !created {
            return;
        }
        let closed = self.locked(slot, |r| {
            let unused = !r.is_closed() && r.participants.is_empty() && r.forwarded.is_empty() && r.arriving.is_empty();
            if unused {
                r.close(proto::DisconnectReason::RoomDeleted);
            }
            unused
        });
        if closed {
            self.inner.rooms.remove_if(name.as_str(), |_, s| Arc::ptr_eq(s, slot));
        }
    }

    /// ForwardParticipant: `identity` stays in `room` and also appears in `destination`
    /// (created if missing) as a forwarded copy, kept up to date until the participant leaves,
    /// the copy is removed there, or either room closes. Three short phases, one room lock at a
    /// time: read the participant, add the copy, record the forwarding (undoing the copy if the
    /// participant left meanwhile).
    pub fn forward_participant(&self, room: &str, identity: &str, destination: &str) -> Result<(), RoomError> {
        let now = Instant::now();
        let source = self.slot(room).ok_or(RoomError::ParticipantNotFound)?;
        let info = self.locked(&source, |r| r.forward_source(identity))?;
        let dest_name = RoomName::new(destination);
        let from = RoomName::new(room);
        // Twice at most: the destination can close between being found and being locked (a
        // failed move discarding the room it created, a delete); then it is created afresh.
        let mut attempt = 0;
        let (target, created, copy) = loop {
            attempt += 1;
            let (target, created) = self.live_slot(&dest_name, now)?;
            match self.locked(&target, |r| r.add_forwarded(from.clone(), &info)) {
                Ok(copy) => break (target, created, copy),
                Err(RoomError::RoomNotFound) if attempt < 2 => {}
                Err(e) => {
                    self.discard_unused(&dest_name, &target, created);
                    return Err(e);
                }
            }
        };
        if self.locked(&source, |r| r.start_forwarding(&info, &dest_name, copy)) {
            // Removed there before the source knew of it? Its notice found no record; the
            // record made since must go too.
            if !self.locked(&target, |r| r.has_copy(identity, copy)) {
                let unforward = ForwardNotice::Unforward {
                    to: from.clone(),
                    identity: crate::ids::ParticipantIdentity::new(identity),
                    sid: ParticipantSid::new(info.proto.sid.clone()),
                    from: dest_name.clone(),
                    copy,
                };
                self.locked(&source, |r| r.apply_forward_notice(unforward, now));
            }
            return Ok(());
        }
        // The participant left between the phases: its copy must not outlive it.
        self.locked(&target, |r| {
            r.apply_forward_notice(
                ForwardNotice::Stop {
                    to: dest_name.clone(),
                    identity: crate::ids::ParticipantIdentity::new(identity),
                    sid: ParticipantSid::new(info.proto.sid.clone()),
                    reason: proto::DisconnectReason::UnknownReason,
                },
                now,
            );
        });
        self.discard_unused(&dest_name, &target, created);
        Err(RoomError::ParticipantNotFound)
    }
}
