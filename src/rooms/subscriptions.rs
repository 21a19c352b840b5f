//! What each participant asked to subscribe to, and the state a resumed client reports.
//!
//! Subscriptions take effect with the media plane; until then Usher records them so that
//! plane finds them, and answers what it already can: a subscription to a track that does
//! not exist gets `SubscriptionResponse{SE_TRACK_NOTFOUND}`. LiveKit sends that after retrying
//! for a minute, in case the track is still being published; here a track exists from its
//! AddTrackRequest on, so there is nothing to wait for.

use super::{RoomError, membership::encode_signal, participant::SessionKey, room::Room};
use crate::proto::{self, DisconnectReason, SubscriptionError, signal_response::Message as Signal};

/// Unknown tracks answered per request, at most: a client naming thousands of made-up sids
/// gets the first ones answered, not a flood built under the room's lock.
const MAX_NOT_FOUND_ANSWERS: usize = 64;

impl Room {
    /// Records that participant `identity` wants (`subscribe`) or no longer wants the tracks
    /// `track_sids`. Unknown tracks are answered with `SE_TRACK_NOTFOUND` on its socket (each
    /// once, and at most [`MAX_NOT_FOUND_ANSWERS`] per request).
    /// Subscriptions to tracks that ended are forgotten, so the record stays bounded by the
    /// room's tracks.
    pub fn update_subscriptions<'a>(
        &mut self,
        identity: &str,
        track_sids: impl IntoIterator<Item = &'a String>,
        subscribe: bool,
    ) -> Result<(), RoomError> {
        // Tracks published here and those of forwarded copies (the same publications).
        let existing: std::collections::BTreeSet<&str> = self
            .participants
            .values()
            .map(|p| &p.snapshot)
            .chain(self.forwarded_snapshots())
            .flat_map(|s| s.proto.tracks.iter().map(|t| t.sid.as_str()))
            .collect();
        let mut unknown = std::collections::BTreeSet::new();
        let mut wanted = Vec::new();
        for sid in track_sids {
            if existing.contains(sid.as_str()) {
                wanted.push(sid.clone());
            } else if unknown.len() < MAX_NOT_FOUND_ANSWERS {
                unknown.insert(sid.clone());
            }
        }
        let live: std::collections::BTreeSet<String> = existing.into_iter().map(str::to_string).collect();
        let p = self.participants.get_mut(identity).ok_or(RoomError::ParticipantNotFound)?;
        p.subscriptions.retain(|sid, _| live.contains(sid));
        for sid in wanted {
            p.subscriptions.insert(sid, subscribe);
        }
        if subscribe {
            for track_sid in unknown {
                p.outbox.push_or_kick(encode_signal(Signal::SubscriptionResponse(proto::SubscriptionResponse {
                    track_sid,
                    err: SubscriptionError::SeTrackNotfound as i32,
                })));
            }
        }
        Ok(())
    }

    /// A client's UpdateSubscription (from its socket).
    pub fn client_subscription(&mut self, key: &SessionKey, req: &proto::UpdateSubscription) {
        if !self.holds(key) {
            return;
        }
        let identity = &key.identity;
        let sids = req.track_sids.iter().chain(req.participant_tracks.iter().flat_map(|pt| pt.track_sids.iter()));
        let _ = self.update_subscriptions(identity.as_str(), sids, req.subscribe);
    }

    /// A resumed client's SyncState. If it reports publishing a track the room does not know,
    /// the states have parted and only a fresh join can mend them: as LiveKit, the client gets
    /// a leave asking for a full reconnect (`STATE_MISMATCH`). Otherwise its subscriptions are
    /// recorded.
    pub fn sync_state(&mut self, key: &SessionKey, state: &proto::SyncState) {
        if !self.holds(key) {
            return;
        }
        let identity = &key.identity;
        let Some(p) = self.participants.get(identity) else { return };
        let known = |sid: &str| p.tracks.iter().any(|t| t.sid == sid);
        let mismatch = state.publish_tracks.iter().any(|pt| pt.track.as_ref().is_none_or(|t| !known(&t.sid)));
        if mismatch {
            tracing::info!(room = %self.name, participant = %identity, "resumed client reports unknown tracks; asking for a full reconnect");
            let leave = super::membership::reconnect_leave(p.spec.protocol, DisconnectReason::StateMismatch);
            self.drop_participant(
                identity.as_str(),
                DisconnectReason::StateMismatch,
                Some(leave),
                tokio::time::Instant::now(),
            );
            return;
        }
        if let Some(sub) = &state.subscription {
            self.client_subscription(key, sub);
        }
    }

    /// What `identity` asked to subscribe to (true) or not (false), by track sid.
    pub fn subscriptions_of(&self, identity: &str) -> Option<&std::collections::BTreeMap<String, bool>> {
        self.participants.get(identity).map(|p| &p.subscriptions)
    }
}

#[cfg(test)]
mod tests {
    use crate::rooms::testkit::{self, drain};

    use super::*;
    use crate::{proto::leave_request::Action, rooms::participant::Inbox};

    fn room() -> Room {
        testkit::room("r", 20)
    }

    fn join(r: &mut Room, identity: &str) -> (SessionKey, Inbox) {
        testkit::join(r, identity, 16)
    }

    fn publish(r: &mut Room, sid: &SessionKey, inbox: &mut Inbox) -> String {
        r.add_track(sid, proto::AddTrackRequest { cid: "c".into(), ..Default::default() });
        drain(inbox)
            .into_iter()
            .find_map(|m| if let Signal::TrackPublished(t) = m { Some(t.track.unwrap().sid) } else { None })
            .unwrap()
    }

    #[test]
    fn subscriptions_are_recorded_and_unknown_tracks_answered() {
        let mut r = room();
        let (a_sid, mut a) = join(&mut r, "alice");
        let (b_sid, mut b) = join(&mut r, "bob");
        let track = publish(&mut r, &a_sid, &mut a);
        drain(&mut b);
        let req = proto::UpdateSubscription {
            track_sids: vec![track.clone()],
            subscribe: true,
            participant_tracks: vec![proto::ParticipantTracks {
                participant_sid: "ignored".into(),
                track_sids: vec!["TR_nope".into()],
            }],
        };
        r.client_subscription(&b_sid, &req);
        assert_eq!(r.subscriptions_of("bob").unwrap().get(&track), Some(&true));
        assert_eq!(r.subscriptions_of("bob").unwrap().len(), 1, "unknown tracks are not kept");
        let seen = drain(&mut b);
        assert!(
            matches!(&seen[..], [Signal::SubscriptionResponse(s)] if s.track_sid == "TR_nope"
                && s.err == SubscriptionError::SeTrackNotfound as i32),
            "{seen:?}"
        );
        r.update_subscriptions("bob", [&track], false).unwrap();
        assert_eq!(r.subscriptions_of("bob").unwrap().get(&track), Some(&false));
        assert!(drain(&mut b).is_empty(), "unsubscribing from anything is answered with nothing");
        assert_eq!(r.update_subscriptions("nobody", [&track], true), Err(RoomError::ParticipantNotFound));
    }

    #[test]
    fn a_sync_state_with_unknown_tracks_asks_for_a_full_reconnect() {
        let mut r = room();
        let (a_sid, mut a) = join(&mut r, "alice");
        let track = publish(&mut r, &a_sid, &mut a);
        let known = proto::TrackPublishedResponse {
            cid: "c".into(),
            track: Some(proto::TrackInfo { sid: track, ..Default::default() }),
        };
        r.sync_state(&a_sid, &proto::SyncState { publish_tracks: vec![known.clone()], ..Default::default() });
        assert!(drain(&mut a).is_empty());
        let unknown = proto::TrackPublishedResponse {
            cid: "d".into(),
            track: Some(proto::TrackInfo { sid: "TR_gone".into(), ..Default::default() }),
        };
        r.sync_state(&a_sid, &proto::SyncState { publish_tracks: vec![known, unknown], ..Default::default() });
        let seen = drain(&mut a);
        assert!(
            matches!(&seen[..], [Signal::Leave(l)] if l.reason == DisconnectReason::StateMismatch as i32
                && l.action == Action::Reconnect as i32),
            "{seen:?}"
        );
        assert!(r.participant_info("alice").is_err());
    }

    #[test]
    fn made_up_sids_get_a_bounded_answer() {
        let mut r = room();
        let (_, _a) = join(&mut r, "alice");
        let (_, mut b) = join(&mut r, "bob");
        drain(&mut b);
        let sids: Vec<String> = (0..10_000).map(|i| format!("TR_x{}", i % 5_000)).collect();
        r.update_subscriptions("bob", &sids, true).unwrap();
        let seen = drain(&mut b);
        assert_eq!(seen.len(), MAX_NOT_FOUND_ANSWERS, "each once, and no more than the cap");
        assert!(r.participant_info("bob").is_ok(), "answering did not overflow the queue");
    }
}
