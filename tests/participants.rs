//! Participant management on connected sessions: UpdateParticipant, MutePublishedTrack and the
//! client's own requests, checked from the RPC answer *and* from what every session received.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;

use common::{
    TestServer, admin, join_token, join_token_with,
    signal::{SignalClient, update_about},
};
use usher::{
    auth::{TokenVerifier, VideoGrant},
    clock::Clock as _,
    config::Keys,
    proto::{
        self, TrackSource, TrackType, request_response::Reason, signal_request::Message as Req,
        signal_response::Message as Signal,
    },
};

fn change(identity: &str) -> proto::UpdateParticipantRequest {
    proto::UpdateParticipantRequest { room: "r".into(), identity: identity.into(), ..Default::default() }
}

async fn publish(c: &mut SignalClient, cid: &str, kind: TrackType, source: TrackSource) -> proto::TrackInfo {
    c.publish(cid, kind, source).await
}

#[tokio::test]
async fn metadata_name_and_attributes_reach_everyone_with_a_refresh_token() {
    let s = TestServer::spawn("").await;
    let (mut obs, _) = SignalClient::join(s.addr, &join_token("r", "observer")).await;
    // The target's token also carries an admin grant, which refresh tokens must keep.
    let with_admin = join_token_with("r", "target", VideoGrant { room_admin: true, ..Default::default() });
    let (mut t, j) = SignalClient::join(s.addr, &with_admin).await;
    let v0 = j.participant.unwrap().version;
    let mut req = change("target");
    req.name = "New Name".into();
    req.metadata = "{\"hand\":true}".into();
    req.attributes = [("role".to_string(), "speaker".to_string()), ("gone".to_string(), String::new())].into();
    let info: proto::ParticipantInfo = s.proto("UpdateParticipant", &admin("r"), &req).await.unwrap();
    assert_eq!((info.name.as_str(), info.metadata.as_str()), ("New Name", "{\"hand\":true}"));
    assert_eq!(info.attributes.get("role").map(String::as_str), Some("speaker"));
    assert!(!info.attributes.contains_key("gone"));
    assert!(info.version > v0);

    for c in [&mut obs, &mut t] {
        let m = c
            .recv_until("update", |m| update_about(m, "target").is_some_and(|p| p.metadata == "{\"hand\":true}"))
            .await;
        assert_eq!(update_about(&m, "target").unwrap().name, "New Name");
    }
    let m = t.recv_until("refresh token", |m| matches!(m, Signal::RefreshToken(_))).await;
    let Signal::RefreshToken(token) = m else { unreachable!() };
    let keys = Keys::new([(common::KEY.to_string(), common::SECRET.to_string())]);
    let verifier = TokenVerifier::new(keys);
    let claims = verifier.verify(&token, usher::clock::SystemClock.now_secs()).unwrap();
    assert_eq!((claims.identity.as_str(), claims.name.as_str()), ("target", "New Name"));
    assert_eq!(claims.metadata, "{\"hand\":true}");
    assert_eq!(claims.video().room, "r");
    assert!(claims.video().room_join);
    assert!(claims.video().room_admin, "grants beyond the permission survive the refresh");
    // The observer only ever gets its own tokens.
    for m in &obs.seen {
        if let Signal::RefreshToken(tok) = m {
            let c = verifier.verify(tok, usher::clock::SystemClock.now_secs()).unwrap();
            assert_eq!(c.identity, "observer");
        }
    }

    // Empty name/metadata mean "unchanged" (they cannot be cleared this way, as in LiveKit).
    let info: proto::ParticipantInfo = s.proto("UpdateParticipant", &admin("r"), &change("target")).await.unwrap();
    assert_eq!(info.metadata, "{\"hand\":true}");
    s.stop().await;
}

#[tokio::test]
async fn revoking_publish_unpublishes_tracks() {
    let s = TestServer::spawn("").await;
    let (mut obs, _) = SignalClient::join(s.addr, &join_token("r", "observer")).await;
    let (mut t, _) = SignalClient::join(s.addr, &join_token("r", "speaker")).await;
    let mic = publish(&mut t, "mic", TrackType::Audio, TrackSource::Microphone).await;
    let cam = publish(&mut t, "cam", TrackType::Video, TrackSource::Camera).await;
    assert!(mic.sid.starts_with("TR_AM") && cam.sid.starts_with("TR_VC"), "{} {}", mic.sid, cam.sid);
    obs.recv_until("two tracks", |m| update_about(m, "speaker").is_some_and(|p| p.tracks.len() == 2)).await;

    // Narrow to camera only: the microphone goes.
    let mut req = change("speaker");
    req.permission = Some(proto::ParticipantPermission {
        can_publish: true,
        can_subscribe: true,
        can_publish_sources: vec![TrackSource::Camera as i32],
        ..Default::default()
    });
    let info: proto::ParticipantInfo = s.proto("UpdateParticipant", &admin("r"), &req).await.unwrap();
    assert_eq!(info.tracks.iter().map(|t| t.sid.as_str()).collect::<Vec<_>>(), [cam.sid.as_str()]);
    let m = t.recv_until("mic unpublished", |m| matches!(m, Signal::TrackUnpublished(_))).await;
    assert!(matches!(m, Signal::TrackUnpublished(u) if u.track_sid == mic.sid));
    obs.recv_until("one track left", |m| update_about(m, "speaker").is_some_and(|p| p.tracks.len() == 1)).await;

    // Back to the audience: everything goes, and the permission is replaced as a whole.
    let mut req = change("speaker");
    req.permission = Some(proto::ParticipantPermission { can_subscribe: true, ..Default::default() });
    let info: proto::ParticipantInfo = s.proto("UpdateParticipant", &admin("r"), &req).await.unwrap();
    assert!(info.tracks.is_empty());
    let perm = info.permission.unwrap();
    assert!(!perm.can_publish && !perm.can_publish_data && perm.can_subscribe);
    let m = t.recv_until("cam unpublished", |m| matches!(m, Signal::TrackUnpublished(_))).await;
    assert!(matches!(m, Signal::TrackUnpublished(u) if u.track_sid == cam.sid));
    let m = obs.recv_until("no tracks", |m| update_about(m, "speaker").is_some_and(|p| p.tracks.is_empty())).await;
    assert!(!update_about(&m, "speaker").unwrap().permission.as_ref().unwrap().can_publish);
    // Publishing again is refused.
    t.send(Req::AddTrack(proto::AddTrackRequest {
        cid: "again".into(),
        source: TrackSource::Microphone as i32,
        ..Default::default()
    }))
    .await;
    let m = t.recv_until("refusal", |m| matches!(m, Signal::RequestResponse(_))).await;
    assert!(matches!(m, Signal::RequestResponse(r) if r.reason == Reason::NotAllowed as i32));
    s.stop().await;
}

#[tokio::test]
async fn remote_mute_and_the_unmute_setting() {
    for (yaml, unmute_allowed) in [("", false), ("room:\n  enable_remote_unmute: true\n", true)] {
        let s = TestServer::spawn(yaml).await;
        let (mut obs, _) = SignalClient::join(s.addr, &join_token("r", "observer")).await;
        let (mut t, _) = SignalClient::join(s.addr, &join_token("r", "speaker")).await;
        let mic = publish(&mut t, "mic", TrackType::Audio, TrackSource::Microphone).await;
        let mute = |muted: bool, sid: &str| proto::MuteRoomTrackRequest {
            room: "r".into(),
            identity: "speaker".into(),
            track_sid: sid.into(),
            muted,
        };
        let r: proto::MuteRoomTrackResponse =
            s.proto("MutePublishedTrack", &admin("r"), &mute(true, &mic.sid)).await.unwrap();
        assert!(r.track.unwrap().muted);
        // The owner is told first, then everyone sees the new state.
        let m = t.recv_until("mute", |m| matches!(m, Signal::Mute(_))).await;
        assert!(matches!(m, Signal::Mute(ref x) if x.sid == mic.sid && x.muted));
        for c in [&mut obs, &mut t] {
            c.recv_until("muted state", |m| {
                update_about(m, "speaker").is_some_and(|p| p.tracks.first().is_some_and(|x| x.muted))
            })
            .await;
        }
        let r =
            s.proto::<_, proto::MuteRoomTrackResponse>("MutePublishedTrack", &admin("r"), &mute(false, &mic.sid)).await;
        if unmute_allowed {
            assert!(!r.unwrap().track.unwrap().muted);
            obs.recv_until("unmuted", |m| {
                update_about(m, "speaker").is_some_and(|p| p.tracks.first().is_some_and(|x| !x.muted))
            })
            .await;
        } else {
            r.unwrap_err().assert_twirp(412, "failed_precondition", "twirp error unknown: remote unmute not enabled");
        }
        // An unknown track is not an error: 200 with `track: null` (JSON), as LiveKit.
        let body = r#"{"room":"r","identity":"speaker","track_sid":"TR_nope","muted":true}"#;
        let r = s.call_json("MutePublishedTrack", Some(&admin("r")), body).await;
        assert_eq!((r.status.as_u16(), r.text().as_str()), (200, r#"{"track":null}"#));
        s.stop().await;
    }
}

#[tokio::test]
async fn clients_update_their_own_metadata_only_with_permission() {
    let s = TestServer::spawn("").await;
    let (mut obs, _) = SignalClient::join(s.addr, &join_token("r", "observer")).await;
    let (mut plain, _) = SignalClient::join(s.addr, &join_token("r", "plain")).await;
    plain
        .send(Req::UpdateMetadata(proto::UpdateParticipantMetadata {
            metadata: "x".into(),
            request_id: 7,
            ..Default::default()
        }))
        .await;
    let m = plain.recv_until("refusal", |m| matches!(m, Signal::RequestResponse(_))).await;
    assert!(matches!(m, Signal::RequestResponse(r) if r.request_id == 7 && r.reason == Reason::NotAllowed as i32));

    let allowed =
        join_token_with("r", "editor", VideoGrant { can_update_own_metadata: Some(true), ..Default::default() });
    let (mut ed, _) = SignalClient::join(s.addr, &allowed).await;
    ed.send(Req::UpdateMetadata(proto::UpdateParticipantMetadata {
        metadata: "mine".into(),
        request_id: 9,
        ..Default::default()
    }))
    .await;
    let m = ed.recv_until("ok", |m| matches!(m, Signal::RequestResponse(_))).await;
    assert!(matches!(m, Signal::RequestResponse(r) if r.request_id == 9 && r.reason == Reason::Ok as i32));
    obs.recv_until("editor metadata", |m| update_about(m, "editor").is_some_and(|p| p.metadata == "mine")).await;
    // Client-side mute of an own track is broadcast too.
    let mic = publish(&mut ed, "mic", TrackType::Audio, TrackSource::Microphone).await;
    ed.send(Req::Mute(proto::MuteTrackRequest { sid: mic.sid.clone(), muted: true })).await;
    obs.recv_until("client mute", |m| {
        update_about(m, "editor").is_some_and(|p| p.tracks.first().is_some_and(|t| t.muted))
    })
    .await;
    s.stop().await;
}

/// A join token whose `nbf` is `now + offset` seconds.
fn join_token_at(room: &str, identity: &str, offset: i64) -> String {
    use usher::auth::mint::{TokenMinter, TokenSpec};
    let spec = TokenSpec {
        api_key: common::KEY.into(),
        identity: identity.into(),
        video: VideoGrant { room_join: true, room: room.into(), ..Default::default() },
        now_secs: usher::clock::SystemClock.now_secs() + offset,
        ttl_secs: 600,
        ..Default::default()
    };
    TokenMinter::mint(&spec, common::SECRET).unwrap()
}

#[tokio::test]
async fn removal_with_revoke_token_ts_refuses_older_tokens() {
    let s = TestServer::spawn("").await;
    let old = join_token_at("r", "troll", 0);
    let (_keep, _) = SignalClient::join(s.addr, &join_token("r", "host")).await;

    // Without revoke_token_ts a removed participant may come straight back (LiveKit's rule).
    let (_t, _) = SignalClient::join(s.addr, &old).await;
    let who =
        |ts: i64| proto::RoomParticipantIdentity { room: "r".into(), identity: "troll".into(), revoke_token_ts: ts };
    let _: proto::RemoveParticipantResponse = s.proto("RemoveParticipant", &admin("r"), &who(0)).await.unwrap();
    let (_t, _) = SignalClient::join(s.addr, &old).await;

    // With it, tokens valid from before that instant are refused; newer ones are fine.
    let cutoff = usher::clock::SystemClock.now_secs() + 1;
    let _: proto::RemoveParticipantResponse = s.proto("RemoveParticipant", &admin("r"), &who(cutoff)).await.unwrap();
    let r = SignalClient::connect(s.addr, &old, "").await.err().expect("revoked");
    assert_eq!((r.status, r.body.as_str()), (401, "access token was revoked"));
    let r = s.validate(&old).await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (401, "access token was revoked"));
    let (_t, j) = SignalClient::join(s.addr, &join_token_at("r", "troll", 5)).await;
    assert_eq!(j.participant.unwrap().identity, "troll");
    s.stop().await;
}

#[tokio::test]
async fn add_track_refusals_echo_the_request_as_livekit() {
    use proto::request_response::Request as Echo;
    let s = TestServer::spawn("").await;
    let (mut c, _) = SignalClient::join(s.addr, &join_token("r", "pub")).await;
    let answer = async |c: &mut SignalClient, req: proto::AddTrackRequest| {
        c.send(Req::AddTrack(req)).await;
        let m = c.recv_until("request response", |m| matches!(m, Signal::RequestResponse(_))).await;
        let Signal::RequestResponse(r) = m else { unreachable!() };
        r
    };
    let data = proto::AddTrackRequest { cid: "d".into(), r#type: TrackType::Data as i32, ..Default::default() };
    let r = answer(&mut c, data.clone()).await;
    assert_eq!((r.reason, r.request), (Reason::UnsupportedType as i32, Some(Echo::AddTrack(data))));

    let first = publish(&mut c, "mic", TrackType::Audio, TrackSource::Microphone).await;
    let again = proto::AddTrackRequest { cid: "mic".into(), r#type: TrackType::Audio as i32, ..Default::default() };
    let r = answer(&mut c, again.clone()).await;
    assert_eq!((r.reason, r.request), (Reason::Queued as i32, Some(Echo::AddTrack(again))));

    // Another codec for a published track answers with that track; for an unknown one, NOT_FOUND.
    let codec = proto::AddTrackRequest {
        cid: "mic-2".into(),
        sid: first.sid.clone(),
        r#type: TrackType::Audio as i32,
        ..Default::default()
    };
    c.send(Req::AddTrack(codec)).await;
    let m = c.recv_until("published", |m| matches!(m, Signal::TrackPublished(t) if t.cid == "mic-2")).await;
    assert!(matches!(m, Signal::TrackPublished(t) if t.track.as_ref().unwrap().sid == first.sid));
    let ghost = proto::AddTrackRequest {
        cid: "g".into(),
        sid: "TR_AMghost".into(),
        r#type: TrackType::Audio as i32,
        ..Default::default()
    };
    let r = answer(&mut c, ghost).await;
    assert_eq!(r.reason, Reason::NotFound as i32);

    // Names and stream ids are bounded: every participant receives them with each update.
    let long = proto::AddTrackRequest { cid: "long".into(), name: "n".repeat(1025), ..Default::default() };
    let r = answer(&mut c, long).await;
    assert_eq!(r.reason, Reason::LimitExceeded as i32, "{r:?}");

    // The cap: 20 tracks in all.
    for i in 1..20 {
        publish(&mut c, &format!("t{i}"), TrackType::Video, TrackSource::Camera).await;
    }
    let over = proto::AddTrackRequest { cid: "t20".into(), r#type: TrackType::Video as i32, ..Default::default() };
    let r = answer(&mut c, over).await;
    assert_eq!(r.reason, Reason::LimitExceeded as i32, "{r:?}");
    let info: proto::ParticipantInfo = s
        .proto(
            "GetParticipant",
            &admin("r"),
            &proto::RoomParticipantIdentity { room: "r".into(), identity: "pub".into(), ..Default::default() },
        )
        .await
        .unwrap();
    assert_eq!(info.tracks.len(), 20);

    // Muting a track it does not have echoes the mute.
    let mute = proto::MuteTrackRequest { sid: "TR_nope".into(), muted: true };
    c.send(Req::Mute(mute.clone())).await;
    let m = c.recv_until("mute answer", |m| matches!(m, Signal::RequestResponse(_))).await;
    assert!(
        matches!(m, Signal::RequestResponse(r) if r.reason == Reason::NotFound as i32 && r.request == Some(Echo::Mute(mute)))
    );
    s.stop().await;
}
