//! Changes to a connected participant: admin updates (name, metadata, attributes, permission),
//! tracks (publish, mute), and the participant's own metadata requests.
//!
//! Same rules as [`super::membership`]: runs under the room lock, pushes encoded frames into
//! bounded queues, one order for everyone. Every change bumps the participant's version, is
//! broadcast at once to everyone including the participant (hidden ones: only to themselves),
//! and gives the participant a fresh `refresh_token` when its claims changed.

use std::collections::HashMap;

use bytes::Bytes;

use super::{RoomError, limits::LimitError, membership::encode_signal, participant::SessionKey, room::Room};
use crate::{
    config::LimitConfig,
    ids::random_id,
    proto::{
        self, TrackSource, TrackType,
        request_response::{Reason, Request as RequestKind},
        signal_response::Message as Signal,
    },
};

/// Tracks one participant may publish. LiveKit caps tracks waiting for their media at 20;
/// here every track is published at once, so the cap applies to published tracks, keeping
/// what one client can make the room store and broadcast bounded.
pub const MAX_TRACKS: usize = 20;
/// Longest track name or stream id: every participant receives the track with each update,
/// so one client must not make them large. (LiveKit bounds them only by the frame size.)
pub const MAX_TRACK_TEXT: usize = 1024;

/// Values in first-seen order without repeats, at most 16 (there are fewer known features).
fn dedupe(values: Vec<i32>) -> Vec<i32> {
    let mut seen = std::collections::BTreeSet::new();
    values.into_iter().filter(|v| seen.insert(*v)).take(16).collect()
}

/// What UpdateParticipant asks for. Empty name/metadata and an empty attribute map mean
/// "unchanged"; an empty attribute value deletes that key; a permission replaces the whole one.
#[derive(Debug, Clone, Default)]
pub struct ParticipantChange {
    /// New display name, or empty.
    pub name: String,
    /// New metadata, or empty.
    pub metadata: String,
    /// Attributes to set (empty value = delete).
    pub attributes: HashMap<String, String>,
    /// Replacement permission.
    pub permission: Option<proto::ParticipantPermission>,
}

/// A track sid: `TR_`, a type letter, a source letter, 12 random characters (LiveKit's shape).
fn track_sid(kind: i32, source: i32) -> String {
    let t = if kind == TrackType::Video as i32 { "V" } else { "A" };
    let s = match TrackSource::try_from(source) {
        Ok(TrackSource::Camera) => "C",
        Ok(TrackSource::Microphone) => "M",
        Ok(TrackSource::ScreenShare) => "S",
        Ok(TrackSource::ScreenShareAudio) => "s",
        _ => "",
    };
    random_id(&format!("TR_{t}{s}"))
}

fn source_allowed(p: &proto::ParticipantPermission, source: i32) -> bool {
    p.can_publish && (p.can_publish_sources.is_empty() || p.can_publish_sources.contains(&source))
}

impl Room {
    /// UpdateParticipant: applies name, metadata and attributes (one broadcast), then a new
    /// permission (revoking publish unpublishes the tracks it no longer allows; a second
    /// broadcast). Returns the participant's info afterwards.
    pub fn update_participant(
        &mut self,
        identity: &str,
        change: ParticipantChange,
    ) -> Result<proto::ParticipantInfo, RoomError> {
        if self.forwarded.contains_key(identity) {
            return Err(RoomError::Forwarded);
        }
        let p = self.participants.get_mut(identity).ok_or(RoomError::ParticipantNotFound)?;
        let permission_changes = change.permission.as_ref().is_some_and(|new| *new != p.spec.permission);
        let s = &mut p.spec;
        let mut changed = false;
        if !change.name.is_empty() && change.name != s.name {
            s.name = change.name;
            changed = true;
        }
        if !change.metadata.is_empty() && change.metadata != s.metadata {
            s.metadata = change.metadata;
            changed = true;
        }
        if !change.attributes.is_empty() {
            // LiveKit counts an attribute update as a change even when values are equal.
            for (k, v) in change.attributes {
                if v.is_empty() {
                    s.attributes.remove(&k);
                } else {
                    s.attributes.insert(k, v);
                }
            }
            changed = true;
        }
        if changed {
            if permission_changes {
                // Sessions hear this change now; the backend's one `participant_updated` (and
                // the refresh token) come with the permission's announcement, covering both.
                self.announce_as(identity, false, false);
            } else {
                self.announce(identity, true);
            }
        }
        if let Some(permission) = change.permission {
            self.set_permission(identity, permission);
        }
        self.participant_info(identity)
    }

    fn set_permission(&mut self, identity: &str, permission: proto::ParticipantPermission) {
        let Some(p) = self.participants.get_mut(identity) else { return };
        if p.spec.permission == permission {
            return;
        }
        p.spec.permission = permission;
        let (revoked, kept): (Vec<_>, Vec<_>) =
            std::mem::take(&mut p.tracks).into_iter().partition(|t| !source_allowed(&p.spec.permission, t.source));
        p.tracks = kept;
        let owner = p.snapshot.proto.clone();
        for track in &revoked {
            self.emit_track(super::events::names::TRACK_UNPUBLISHED, &owner, track.clone());
        }
        let Some(p) = self.participants.get_mut(identity) else { return };
        for track in &revoked {
            // Clients before protocol 7 only understand being muted.
            let frame = if p.spec.protocol > 6 {
                encode_signal(Signal::TrackUnpublished(proto::TrackUnpublishedResponse {
                    track_sid: track.sid.clone(),
                }))
            } else {
                encode_signal(Signal::Mute(proto::MuteTrackRequest { sid: track.sid.clone(), muted: true }))
            };
            p.outbox.push_or_kick(frame);
        }
        p.is_publisher = p.spec.permission.can_publish && p.is_publisher;
        self.refresh();
        self.announce(identity, true);
    }

    /// MutePublishedTrack: tells the owner first (even for an unknown track, as LiveKit), then
    /// records the state and broadcasts it if it changed. Returns the track, if it exists.
    pub fn mute_track(
        &mut self,
        identity: &str,
        track_sid: &str,
        muted: bool,
        remote_unmute: bool,
    ) -> Result<Option<proto::TrackInfo>, RoomError> {
        if !muted && !remote_unmute {
            return Err(RoomError::RemoteUnmuteDisabled);
        }
        if self.forwarded.contains_key(identity) {
            return Err(RoomError::Forwarded);
        }
        let p = self.participants.get_mut(identity).ok_or(RoomError::ParticipantNotFound)?;
        p.outbox
            .push_or_kick(encode_signal(Signal::Mute(proto::MuteTrackRequest { sid: track_sid.to_string(), muted })));
        let Some(track) = p.tracks.iter_mut().find(|t| t.sid == track_sid) else { return Ok(None) };
        let changed = track.muted != muted;
        track.muted = muted;
        let track = track.clone();
        if changed {
            self.announce(identity, false);
        }
        Ok(Some(track))
    }

    /// A client's AddTrackRequest: the track counts as published at once. (With the media
    /// plane it will be published when its media section is negotiated.)
    ///
    /// Refusals answer with a RequestResponse carrying the request, as LiveKit's: a source the
    /// permission does not allow (NOT_ALLOWED), a type other than audio or video
    /// (UNSUPPORTED_TYPE), a codec added to a track that does not exist (NOT_FOUND), more than
    /// [`MAX_TRACKS`] tracks or a name or stream id longer than [`MAX_TRACK_TEXT`] bytes
    /// (LIMIT_EXCEEDED). A second request with the cid of a published
    /// track is QUEUED, as LiveKit queues it until that track's media is sorted out; with no
    /// media plane nothing would ever take it off the queue, so nothing is kept.
    pub fn add_track(&mut self, key: &SessionKey, req: proto::AddTrackRequest) {
        if !self.holds(key) {
            return;
        }
        let identity = &key.identity;
        let Some(p) = self.participants.get_mut(identity) else { return };
        let refuse = |reason: Reason, message: String, req: proto::AddTrackRequest| {
            request_response(0, reason, &message, Some(RequestKind::AddTrack(req)))
        };
        if !source_allowed(&p.spec.permission, req.source) {
            p.outbox.push_or_kick(refuse(Reason::NotAllowed, String::new(), req));
            return;
        }
        if req.r#type != TrackType::Audio as i32 && req.r#type != TrackType::Video as i32 {
            p.outbox.push_or_kick(refuse(Reason::UnsupportedType, String::new(), req));
            return;
        }
        if !req.sid.is_empty() {
            // Another codec for a published track (multi-codec simulcast): the track stays.
            let frame = match p.tracks.iter().find(|t| t.sid == req.sid) {
                Some(t) => encode_signal(Signal::TrackPublished(proto::TrackPublishedResponse {
                    cid: req.cid,
                    track: Some(t.clone()),
                })),
                None => refuse(Reason::NotFound, String::new(), req),
            };
            p.outbox.push_or_kick(frame);
            return;
        }
        let tracks = &p.tracks;
        p.track_cids.retain(|sid, _| tracks.iter().any(|t| &t.sid == sid));
        if p.track_cids.values().any(|cid| cid == &req.cid) {
            p.outbox.push_or_kick(refuse(Reason::Queued, String::new(), req));
            return;
        }
        if req.name.len() > MAX_TRACK_TEXT || req.stream.len() > MAX_TRACK_TEXT {
            let message = format!("track name or stream longer than {MAX_TRACK_TEXT} bytes");
            p.outbox.push_or_kick(refuse(Reason::LimitExceeded, message, req));
            return;
        }
        if p.tracks.len() >= MAX_TRACKS {
            let message = format!("too many tracks, rejecting new track, numTracks: {}", p.tracks.len());
            p.outbox.push_or_kick(refuse(Reason::LimitExceeded, message, req));
            return;
        }
        let track = proto::TrackInfo {
            sid: track_sid(req.r#type, req.source),
            r#type: req.r#type,
            name: req.name,
            muted: req.muted,
            width: req.width,
            height: req.height,
            source: req.source,
            disable_red: req.disable_red,
            encryption: req.encryption,
            stream: req.stream,
            backup_codec_policy: req.backup_codec_policy,
            // Deduplicated, as LiveKit does, and capped.
            audio_features: dedupe(req.audio_features),
            ..Default::default()
        };
        p.track_cids.insert(track.sid.clone(), req.cid.clone());
        let published = proto::TrackPublishedResponse { cid: req.cid, track: Some(track.clone()) };
        p.outbox.push_or_kick(encode_signal(Signal::TrackPublished(published)));
        p.tracks.push(track.clone());
        p.is_publisher = true;
        let owner = p.snapshot.proto.clone();
        self.emit_track(super::events::names::TRACK_PUBLISHED, &owner, track);
        self.refresh();
        self.announce(identity.as_str(), false);
    }

    /// A client's MuteTrackRequest for its own track.
    pub fn client_mute(&mut self, key: &SessionKey, track_sid: &str, muted: bool) {
        if !self.holds(key) {
            return;
        }
        let identity = &key.identity;
        let Some(p) = self.participants.get_mut(identity) else { return };
        let Some(track) = p.tracks.iter_mut().find(|t| t.sid == track_sid) else {
            let echo = RequestKind::Mute(proto::MuteTrackRequest { sid: track_sid.to_string(), muted });
            p.outbox.push_or_kick(request_response(0, Reason::NotFound, "", Some(echo)));
            return;
        };
        if track.muted != muted {
            track.muted = muted;
            self.announce(identity.as_str(), false);
        }
    }

    /// A client's UpdateParticipantMetadata: needs `can_update_metadata`, obeys the limits.
    pub fn update_own_metadata(
        &mut self,
        key: &SessionKey,
        req: proto::UpdateParticipantMetadata,
        limits: &LimitConfig,
    ) {
        if !self.holds(key) {
            return;
        }
        let identity = &key.identity;
        let Some(p) = self.participants.get_mut(identity) else { return };
        let refusal = if !p.spec.permission.can_update_metadata {
            Some((Reason::NotAllowed, "does not have permission to update own metadata".to_string()))
        } else {
            limits
                .check_name(&req.name)
                .and_then(|()| limits.check_metadata(&req.metadata))
                .and_then(|()| limits.check_attributes(&req.attributes))
                .err()
                .map(|e: LimitError| (Reason::LimitExceeded, e.to_string()))
        };
        let request_id = req.request_id;
        if let Some((reason, message)) = refusal {
            p.outbox.push_or_kick(request_response(
                request_id,
                reason,
                &message,
                Some(RequestKind::UpdateMetadata(req)),
            ));
            return;
        }
        let protocol = p.spec.protocol;
        let echo = RequestKind::UpdateMetadata(req.clone());
        let change =
            ParticipantChange { name: req.name, metadata: req.metadata, attributes: req.attributes, permission: None };
        let _ = self.update_participant(identity.as_str(), change);
        // Protocol 15 and later also get an OK, which the JS SDK's promise waits for.
        if protocol >= 15
            && let Some(p) = self.participants.get(identity.as_str())
        {
            p.outbox.push_or_kick(request_response(request_id, Reason::Ok, "", Some(echo)));
        }
    }

    /// Bumps the version, broadcasts the participant's info to everyone (itself included),
    /// and, when its claims changed, sends it a fresh refresh token.
    fn announce(&mut self, identity: &str, claims_changed: bool) {
        self.announce_as(identity, claims_changed, claims_changed);
    }

    /// [`Self::announce`], saying whether the backend hears a `participant_updated`: only for
    /// a participant whose `participant_joined` went out (its socket is up), so a receiver
    /// never meets an update about someone who has not joined.
    fn announce_as(&mut self, identity: &str, claims_changed: bool, tell_backend: bool) {
        let Some(p) = self.participants.get_mut(identity) else { return };
        p.bump();
        let info = p.to_proto();
        let (sid, hidden, connected) = (p.sid.clone(), p.hidden(), p.connected);
        // The update first, then the token, as LiveKit orders them.
        if tell_backend && connected {
            self.emit(super::events::names::PARTICIPANT_UPDATED, Some(info.clone()));
        }
        self.broadcast(&sid, info, hidden, true);
        if claims_changed {
            self.send_refresh_token(identity);
        }
    }

    /// Queues a fresh refresh token for every participant (LiveKit sends one every 5 minutes,
    /// so a client always holds a token good enough to rejoin).
    pub fn refresh_all_tokens(&mut self) {
        let identities: Vec<String> = self.participants.keys().map(ToString::to_string).collect();
        for identity in identities {
            self.send_refresh_token(&identity);
        }
    }

    /// Queues a refresh token for the participant (at join and after claim changes).
    pub(super) fn send_refresh_token(&mut self, identity: &str) {
        let Some(p) = self.participants.get(identity) else { return };
        let (info, grant) = (p.snapshot.proto.clone(), &p.spec.grant);
        if let Some(token) = self.refresher.refresh(self.name.as_str(), &info, grant, p.spec.token_expires_at) {
            p.outbox.push_or_kick(encode_signal(Signal::RefreshToken(token)));
        }
    }
}

/// A RequestResponse frame; `request` echoes what it answers, as LiveKit's do (clients match
/// answers to requests by it when there is no request id).
fn request_response(request_id: u32, reason: Reason, message: &str, request: Option<RequestKind>) -> Bytes {
    encode_signal(Signal::RequestResponse(proto::RequestResponse {
        request_id,
        reason: reason as i32,
        message: message.to_string(),
        request,
    }))
}
