//! The fourteen RoomService RPCs. Each: span fields → grant → limits → one registry call.
//!
//! Participant-level calls act on the sessions connected over `/rtc`; an unknown room or
//! participant is `not_found`.
//!
//! Deliberate differences from LiveKit (also listed in the README): an unknown room or
//! participant is always `not_found`, where LiveKit's internal routing makes some RPCs answer
//! 503 `no response from servers`; and SendData answers `unimplemented` until data channels
//! exist, rather than a 200 that would deliver nothing.

use std::sync::Arc;

use axum::response::Response;

use super::{
    codec::{Encoding, ListReply, OneReply},
    error::{Code, TwirpError},
    unary,
};
use crate::{
    app::AppState,
    auth::{Claims, grants},
    ids::RoomName,
    proto,
    rooms::{CreateRequest, ParticipantChange, RoomError, SnapshotList},
};

/// Method names served, as they appear in the URL (each has a [`route`]; tests hold the two
/// together and against the service in `proto/`).
pub const METHODS: &[&str] = &[
    "CreateRoom",
    "ListRooms",
    "DeleteRoom",
    "ListParticipants",
    "GetParticipant",
    "RemoveParticipant",
    "MutePublishedTrack",
    "UpdateParticipant",
    "UpdateSubscriptions",
    "SendData",
    "UpdateRoomMetadata",
    "ForwardParticipant",
    "MoveParticipant",
    "PerformRpc",
];

/// What every handler gets: the app and the caller's claims (if any token came).
pub struct Call<'a> {
    /// Shared state.
    pub app: &'a AppState,
    /// Verified claims; `None` without a token.
    pub claims: Option<&'a Claims>,
}

type R<T> = Result<T, TwirpError>;

fn record_room(room: &str) {
    tracing::Span::current().record("room", room);
}

fn record_participant(room: &str, identity: &str) {
    record_room(room);
    tracing::Span::current().record("participant", identity);
}

/// One RPC: decodes its request, runs its handler, encodes the answer.
pub type Rpc = fn(&Call<'_>, Encoding, &[u8]) -> Response;

/// The handler for a method name, or `None` for names the service does not have.
pub fn route(method: &str) -> Option<Rpc> {
    let rpc: Rpc = match method {
        "CreateRoom" => |c, enc, body| unary(enc, body, |r| c.create_room(r)),
        "ListRooms" => |c, enc, body| unary(enc, body, |r| c.list_rooms(r)),
        "DeleteRoom" => |c, enc, body| unary(enc, body, |r| c.delete_room(r)),
        "ListParticipants" => |c, enc, body| unary(enc, body, |r| c.list_participants(r)),
        "GetParticipant" => |c, enc, body| unary(enc, body, |r| c.get_participant(r)),
        "RemoveParticipant" => |c, enc, body| unary(enc, body, |r| c.remove_participant(r)),
        "MutePublishedTrack" => |c, enc, body| unary(enc, body, |r| c.mute_published_track(r)),
        "UpdateParticipant" => |c, enc, body| unary(enc, body, |r| c.update_participant(r)),
        "UpdateSubscriptions" => |c, enc, body| unary(enc, body, |r| c.update_subscriptions(r)),
        "SendData" => |c, enc, body| unary(enc, body, |r| c.send_data(r)),
        "UpdateRoomMetadata" => |c, enc, body| unary(enc, body, |r| c.update_room_metadata(r)),
        "ForwardParticipant" => |c, enc, body| unary(enc, body, |r| c.forward_participant(r)),
        "MoveParticipant" => |c, enc, body| unary(enc, body, |r| c.move_participant(r)),
        "PerformRpc" => |c, enc, body| unary(enc, body, |r| c.perform_rpc(r)),
        _ => return None,
    };
    Some(rpc)
}

/// Answer of the participant RPCs whose effects on a connected participant are not built yet.
fn not_yet(what: &'static str) -> TwirpError {
    RoomError::Unsupported(what).into()
}

impl Call<'_> {
    fn limits(&self) -> &crate::config::LimitConfig {
        &self.app.config.limit
    }

    fn create_room(&self, r: proto::CreateRoomRequest) -> R<OneReply<proto::Room>> {
        record_room(&r.name);
        grants::ensure_create(self.claims)?;
        if r.egress.is_some() {
            return Err(TwirpError::new(
                Code::Internal,
                "twirp error unknown: egress not connected (Usher does not run egress)",
            ));
        }
        self.limits().check_room_name(&r.name)?;
        self.limits().check_metadata(&r.metadata)?;
        for agent in &r.agents {
            self.limits().check_metadata(&agent.metadata)?;
            self.limits().check_attributes(&agent.attributes)?;
        }
        if !r.room_preset.is_empty() {
            // `room.room_configurations` is not served yet, so every preset is unknown.
            return Err(TwirpError::new(
                Code::InvalidArgument,
                "twirp error unknown: unknown room configuration in create room request",
            ));
        }
        let outcome = self.app.registry.create_room(
            CreateRequest {
                name: RoomName::new(r.name),
                empty_timeout: r.empty_timeout,
                departure_timeout: r.departure_timeout,
                max_participants: r.max_participants,
                metadata: r.metadata,
            },
            tokio::time::Instant::now(),
        );
        Ok(OneReply(outcome.room))
    }

    fn list_rooms(&self, r: proto::ListRoomsRequest) -> R<ListReply<proto::Room>> {
        grants::ensure_list(self.claims)?;
        Ok(ListReply { key: "rooms", list: Arc::new(SnapshotList::new(self.app.registry.list_rooms(&r.names))) })
    }

    fn delete_room(&self, r: proto::DeleteRoomRequest) -> R<proto::DeleteRoomResponse> {
        record_room(&r.room);
        grants::ensure_create(self.claims)?;
        self.app.registry.delete_room(&r.room)?;
        Ok(proto::DeleteRoomResponse {})
    }

    fn list_participants(&self, r: proto::ListParticipantsRequest) -> R<ListReply<proto::ParticipantInfo>> {
        record_room(&r.room);
        grants::ensure_admin(self.claims, &r.room)?;
        Ok(ListReply { key: "participants", list: self.app.registry.list_participants(&r.room) })
    }

    fn get_participant(&self, r: proto::RoomParticipantIdentity) -> R<OneReply<proto::ParticipantInfo>> {
        record_participant(&r.room, &r.identity);
        grants::ensure_admin(self.claims, &r.room)?;
        Ok(OneReply(self.app.registry.get_participant(&r.room, &r.identity)?))
    }

    fn remove_participant(&self, r: proto::RoomParticipantIdentity) -> R<proto::RemoveParticipantResponse> {
        record_participant(&r.room, &r.identity);
        grants::ensure_admin(self.claims, &r.room)?;
        self.app.registry.remove_participant(&r.room, &r.identity, revoke_cutoff_secs(r.revoke_token_ts))?;
        Ok(proto::RemoveParticipantResponse {})
    }

    fn mute_published_track(&self, r: proto::MuteRoomTrackRequest) -> R<proto::MuteRoomTrackResponse> {
        record_participant(&r.room, &r.identity);
        grants::ensure_admin(self.claims, &r.room)?;
        let remote_unmute = self.app.config.room.enable_remote_unmute;
        let track = self.app.registry.mute_track(&r.room, &r.identity, &r.track_sid, r.muted, remote_unmute)?;
        // An unknown track is not an error in LiveKit: the answer carries `track: null`.
        Ok(proto::MuteRoomTrackResponse { track })
    }

    fn update_participant(&self, r: proto::UpdateParticipantRequest) -> R<proto::ParticipantInfo> {
        record_participant(&r.room, &r.identity);
        // Sizes are checked before the grant, as LiveKit does.
        self.limits().check_name(&r.name)?;
        self.limits().check_metadata(&r.metadata)?;
        self.limits().check_attributes(&r.attributes)?;
        grants::ensure_admin(self.claims, &r.room)?;
        let change = ParticipantChange {
            name: r.name,
            metadata: r.metadata,
            attributes: r.attributes,
            permission: r.permission,
        };
        Ok(self.app.registry.update_participant(&r.room, &r.identity, change)?)
    }

    fn update_subscriptions(&self, r: proto::UpdateSubscriptionsRequest) -> R<proto::UpdateSubscriptionsResponse> {
        record_participant(&r.room, &r.identity);
        grants::ensure_admin(self.claims, &r.room)?;
        self.app.registry.get_room(&r.room)?;
        // Recorded for the media plane; unknown tracks are answered on the subscriber's socket.
        self.app.registry.update_subscriptions(
            &r.room,
            &r.identity,
            &r.track_sids,
            &r.participant_tracks,
            r.subscribe,
        )?;
        Ok(proto::UpdateSubscriptionsResponse {})
    }

    fn send_data(&self, r: proto::SendDataRequest) -> R<proto::SendDataResponse> {
        record_room(&r.room);
        grants::ensure_admin(self.claims, &r.room)?;
        if !r.nonce.is_empty() && r.nonce.len() != 16 {
            return Err(TwirpError::new(
                Code::InvalidArgument,
                format!("nonce should be 16-bytes or not present, got: {} bytes", r.nonce.len()),
            ));
        }
        self.app.registry.get_room(&r.room)?;
        Err(RoomError::Unsupported("SendData needs data channels, which this Usher build does not serve yet").into())
    }

    fn update_room_metadata(&self, r: proto::UpdateRoomMetadataRequest) -> R<OneReply<proto::Room>> {
        record_room(&r.room);
        self.limits().check_metadata(&r.metadata)?;
        grants::ensure_admin(self.claims, &r.room)?;
        Ok(OneReply(self.app.registry.update_room_metadata(&r.room, r.metadata)?))
    }

    fn forward_participant(&self, r: proto::ForwardParticipantRequest) -> R<proto::ForwardParticipantResponse> {
        record_participant(&r.room, &r.identity);
        self.check_destination(&r.room, &r.destination_room)?;
        self.limits().check_room_name(&r.destination_room)?;
        self.app.registry.forward_participant(&r.room, &r.identity, &r.destination_room)?;
        Ok(proto::ForwardParticipantResponse {})
    }

    fn move_participant(&self, r: proto::MoveParticipantRequest) -> R<proto::MoveParticipantResponse> {
        record_participant(&r.room, &r.identity);
        self.check_destination(&r.room, &r.destination_room)?;
        self.limits().check_room_name(&r.destination_room)?;
        self.app.registry.move_participant(&r.room, &r.identity, &r.destination_room)?;
        Ok(proto::MoveParticipantResponse {})
    }

    fn check_destination(&self, room: &str, destination: &str) -> R<()> {
        grants::ensure_destination(self.claims, room, destination)?;
        if room == destination {
            return Err(TwirpError::invalid_argument("destination room cannot be the same as source room", ""));
        }
        if destination.is_empty() {
            return Err(TwirpError::invalid_argument("destination room is required", ""));
        }
        Ok(())
    }

    fn perform_rpc(&self, r: proto::PerformRpcRequest) -> R<proto::PerformRpcResponse> {
        record_participant(&r.room, &r.destination_identity);
        grants::ensure_admin(self.claims, &r.room)?;
        if r.destination_identity.is_empty() {
            return Err(TwirpError::new(
                Code::InvalidArgument,
                "twirp error unknown: destination identity is required",
            ));
        }
        self.app.registry.get_room(&r.room)?;
        self.app.registry.get_participant(&r.room, &r.destination_identity)?;
        Err(not_yet("PerformRpc needs data channels, which this build does not serve yet"))
    }
}

/// `revoke_token_ts` in Unix seconds, as the field is defined (it is compared with a token's
/// `nbf`). The Rust server SDK documents it in milliseconds, so a value that can only be
/// milliseconds (past the year 5000 in seconds) is read as milliseconds rather than shutting
/// the identity out for millennia.
fn revoke_cutoff_secs(ts: i64) -> i64 {
    const SURELY_MILLISECONDS: i64 = 100_000_000_000;
    if ts >= SURELY_MILLISECONDS { ts / 1000 } else { ts }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoke_cutoffs_in_milliseconds_are_read_as_seconds() {
        assert_eq!(revoke_cutoff_secs(1_700_000_000), 1_700_000_000);
        assert_eq!(revoke_cutoff_secs(1_700_000_000_123), 1_700_000_000);
        assert_eq!(revoke_cutoff_secs(0), 0);
    }

    #[test]
    fn every_listed_method_has_a_route_and_nothing_else_does() {
        assert!(METHODS.iter().all(|m| route(m).is_some()));
        for other in ["", "createRoom", "CreateRoom/", "Egress", "ListEgress"] {
            assert!(route(other).is_none(), "{other}");
        }
    }
}
