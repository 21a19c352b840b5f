//! The `/rtc` signalling WebSocket, black-box: join, ping, leave, and what every connected
//! session sees when the RoomService acts on the room.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;

use common::{
    TestServer, admin, create_list, join_token, join_token_with,
    signal::{SignalClient, update_about},
};
use usher::{
    auth::VideoGrant,
    proto::{
        self, DisconnectReason, participant_info::State, signal_request::Message as Req,
        signal_response::Message as Signal,
    },
};

fn is_leave(reason: DisconnectReason) -> impl Fn(&Signal) -> bool {
    move |m| matches!(m, Signal::Leave(l) if l.reason == reason as i32)
}

#[tokio::test]
async fn join_response_and_presence_of_others() {
    let s = TestServer::spawn("").await;
    let (mut alice, join) = SignalClient::join(s.addr, &join_token("r", "alice")).await;
    let me = join.participant.clone().unwrap();
    assert!(me.sid.starts_with("PA_") && me.sid.len() == 15, "{}", me.sid);
    assert_eq!((me.identity.as_str(), me.name.as_str()), ("alice", "alice name"));
    let perm = me.permission.clone().expect("permission is present (JS needs it)");
    assert!(perm.can_publish && perm.can_subscribe && perm.can_publish_data);
    assert!(me.joined_at > 0 && me.joined_at_ms / 1000 == me.joined_at);
    let room = join.room.clone().unwrap();
    assert!(room.sid.starts_with("RM_"));
    assert_eq!((room.name.as_str(), room.num_participants), ("r", 1));
    assert!(!join.server_info.as_ref().unwrap().version.is_empty(), "JS refuses an empty server version");
    assert_eq!((join.ping_interval, join.ping_timeout), (5, 15));
    assert!(join.subscriber_primary);
    assert!(join.other_participants.is_empty());
    // Alice also hears of her own JOINED state.
    let own = alice.recv_until("own update", |m| update_about(m, "alice").is_some()).await;
    assert_eq!(update_about(&own, "alice").unwrap().state, State::Joined as i32);

    let (_bob, bob_join) = SignalClient::join(s.addr, &join_token("r", "bob")).await;
    assert_eq!(bob_join.other_participants.iter().map(|p| p.identity.as_str()).collect::<Vec<_>>(), ["alice"]);
    let m = alice.recv_until("bob joined", |m| update_about(m, "bob").is_some()).await;
    assert_eq!(update_about(&m, "bob").unwrap().state, State::Joined as i32);

    // The API sees what the clients see.
    let list: proto::ListParticipantsResponse =
        s.proto("ListParticipants", &admin("r"), &proto::ListParticipantsRequest { room: "r".into() }).await.unwrap();
    let mut names: Vec<_> = list.participants.iter().map(|p| p.identity.clone()).collect();
    names.sort();
    assert_eq!(names, ["alice", "bob"]);
    let got: proto::ParticipantInfo = s
        .proto(
            "GetParticipant",
            &admin("r"),
            &proto::RoomParticipantIdentity { room: "r".into(), identity: "alice".into(), ..Default::default() },
        )
        .await
        .unwrap();
    assert_eq!(got.sid, me.sid);
    let rooms: proto::ListRoomsResponse =
        s.proto("ListRooms", &create_list(), &proto::ListRoomsRequest::default()).await.unwrap();
    assert_eq!(rooms.rooms[0].num_participants, 2);
    s.stop().await;
}

#[tokio::test]
async fn pings_are_answered() {
    let s = TestServer::spawn("").await;
    let (mut c, _) = SignalClient::join(s.addr, &join_token("r", "alice")).await;
    c.send(Req::PingReq(proto::Ping { timestamp: 12_345, rtt: 7 })).await;
    let m = c.recv_until("pong_resp", |m| matches!(m, Signal::PongResp(_))).await;
    let Signal::PongResp(p) = m else { unreachable!() };
    assert_eq!(p.last_ping_timestamp, 12_345);
    assert!(p.timestamp > 1_700_000_000_000);
    c.send(Req::Ping(1)).await;
    let m = c.recv_until("pong", |m| matches!(m, Signal::Pong(_))).await;
    assert!(matches!(m, Signal::Pong(t) if t > 1_700_000_000_000));
    // Garbage and unknown requests are ignored; the session keeps serving.
    c.send_raw(vec![0xff, 0xff, 0xff]).await;
    c.send_raw(b"\x0a\x10ab".to_vec()).await;
    c.send(Req::Simulate(proto::SimulateScenario::default())).await;
    c.send(Req::PingReq(proto::Ping { timestamp: 99, rtt: 0 })).await;
    let m = c.recv_until("pong_resp after garbage", |m| matches!(m, Signal::PongResp(_))).await;
    assert!(matches!(m, Signal::PongResp(p) if p.last_ping_timestamp == 99));
    s.stop().await;
}

#[tokio::test]
async fn leaving_and_losing_the_socket_are_seen_by_others() {
    // A lost socket keeps the participant for the departure window (1 s here), for a resume.
    let s = TestServer::spawn("room:\n  departure_timeout: 1\n").await;
    let (mut obs, _) = SignalClient::join(s.addr, &join_token("r", "observer")).await;
    let (mut a, _) = SignalClient::join(s.addr, &join_token("r", "a")).await;
    let (b, _) = SignalClient::join(s.addr, &join_token("r", "b")).await;
    a.send(Req::Leave(proto::LeaveRequest { reason: DisconnectReason::ClientInitiated as i32, ..Default::default() }))
        .await;
    let m =
        obs.recv_until("a left", |m| update_about(m, "a").is_some_and(|p| p.state == State::Disconnected as i32)).await;
    assert_eq!(update_about(&m, "a").unwrap().disconnect_reason, DisconnectReason::ClientInitiated as i32);
    obs.settle(200).await;
    b.drop_connection().await;
    obs.assert_quiet(400).await;
    let m =
        obs.recv_until("b lost", |m| update_about(m, "b").is_some_and(|p| p.state == State::Disconnected as i32)).await;
    assert_eq!(update_about(&m, "b").unwrap().disconnect_reason, DisconnectReason::ConnectionTimeout as i32);
    let list: proto::ListParticipantsResponse =
        s.proto("ListParticipants", &admin("r"), &proto::ListParticipantsRequest { room: "r".into() }).await.unwrap();
    assert_eq!(list.participants.iter().map(|p| p.identity.as_str()).collect::<Vec<_>>(), ["observer"]);
    s.stop().await;
}

#[tokio::test]
async fn versions_seen_by_an_observer_only_grow() {
    let s = TestServer::spawn("").await;
    let (mut obs, _) = SignalClient::join(s.addr, &join_token("r", "observer")).await;
    let (mut a, _) = SignalClient::join(s.addr, &join_token("r", "a")).await;
    // Presence is batched: see the join before the leave, or the two coalesce into one.
    obs.recv_until("a joined", |m| update_about(m, "a").is_some()).await;
    let _: proto::ParticipantInfo = s
        .proto(
            "UpdateParticipant",
            &admin("r"),
            &proto::UpdateParticipantRequest {
                room: "r".into(),
                identity: "a".into(),
                metadata: "m".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    a.send(Req::Leave(proto::LeaveRequest::default())).await;
    obs.recv_until("a left", |m| update_about(m, "a").is_some_and(|p| p.state == State::Disconnected as i32)).await;
    let versions: Vec<u32> = obs.seen.iter().filter_map(|m| update_about(m, "a")).map(|p| p.version).collect();
    assert!(versions.len() >= 3, "{versions:?}");
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "versions must strictly increase: {versions:?}");
    s.stop().await;
}

#[tokio::test]
async fn remove_participant_tells_the_target_and_everyone_else() {
    let s = TestServer::spawn("").await;
    let (mut obs, _) = SignalClient::join(s.addr, &join_token("r", "observer")).await;
    let (mut target, _) = SignalClient::join(s.addr, &join_token("r", "target")).await;
    let who = proto::RoomParticipantIdentity { room: "r".into(), identity: "target".into(), ..Default::default() };
    let _: proto::RemoveParticipantResponse = s.proto("RemoveParticipant", &admin("r"), &who).await.unwrap();
    target.recv_until("removed", is_leave(DisconnectReason::ParticipantRemoved)).await;
    assert!(target.recv().await.is_none(), "the socket closes after the leave");
    assert_eq!(target.close_code, Some(1000), "a normal close, or JS would start reconnecting");
    let m = obs
        .recv_until("target gone", |m| update_about(m, "target").is_some_and(|p| p.state == State::Disconnected as i32))
        .await;
    assert_eq!(update_about(&m, "target").unwrap().disconnect_reason, DisconnectReason::ParticipantRemoved as i32);
    let again =
        s.proto::<_, proto::RemoveParticipantResponse>("RemoveParticipant", &admin("r"), &who).await.unwrap_err();
    again.assert_twirp(404, "not_found", "twirp error unknown: participant does not exist");
    s.stop().await;
}

#[tokio::test]
async fn room_metadata_and_deletion_reach_every_session() {
    let s = TestServer::spawn("").await;
    let (mut a, _) = SignalClient::join(s.addr, &join_token("r", "a")).await;
    let (mut b, _) = SignalClient::join(s.addr, &join_token("r", "b")).await;
    let _: proto::Room = s
        .proto(
            "UpdateRoomMetadata",
            &admin("r"),
            &proto::UpdateRoomMetadataRequest { room: "r".into(), metadata: "m2".into() },
        )
        .await
        .unwrap();
    for c in [&mut a, &mut b] {
        // Count changes also arrive as RoomUpdates; the metadata one must come.
        let m = c
            .recv_until(
                "room update",
                |m| matches!(m, Signal::RoomUpdate(u) if u.room.as_ref().is_some_and(|r| r.metadata == "m2")),
            )
            .await;
        assert!(matches!(&m, Signal::RoomUpdate(u) if u.room.as_ref().unwrap().num_participants == 2));
    }
    let _: proto::DeleteRoomResponse =
        s.proto("DeleteRoom", &create_list(), &proto::DeleteRoomRequest { room: "r".into() }).await.unwrap();
    for c in [&mut a, &mut b] {
        c.recv_until("room deleted", is_leave(DisconnectReason::RoomDeleted)).await;
        assert!(c.recv().await.is_none());
    }
    s.stop().await;
}

#[tokio::test]
async fn a_second_session_with_the_same_identity_replaces_the_first() {
    let s = TestServer::spawn("").await;
    let (mut obs, _) = SignalClient::join(s.addr, &join_token("r", "observer")).await;
    // A client from before identity reconciliation (protocol < 12).
    let mut old_obs = SignalClient::connect(s.addr, &join_token("r", "old-observer"), "&protocol=11").await.unwrap();
    old_obs.recv_until("join", |m| matches!(m, Signal::Join(_))).await;
    let (mut first, j1) = SignalClient::join(s.addr, &join_token("r", "alice")).await;
    let old_sid = j1.participant.unwrap().sid;
    let (_second, j2) = SignalClient::join(s.addr, &join_token("r", "alice")).await;
    let new_sid = j2.participant.clone().unwrap().sid;
    assert_ne!(old_sid, new_sid);
    first.recv_until("duplicate", is_leave(DisconnectReason::DuplicateIdentity)).await;
    assert!(first.recv().await.is_none());
    // Both observers see the new session arrive.
    let seen_new = |m: &Signal| matches!(m, Signal::Update(u) if u.participants.iter().any(|p| p.sid == new_sid));
    let old_gone = |m: &Signal| {
        update_about(m, "alice").is_some_and(|p| p.sid == old_sid && p.state == State::Disconnected as i32)
    };
    // An old client is told the old session went, with the reason (LiveKit synthesizes this
    // for protocol < 12)...
    let m = old_obs.recv_until("old session gone", old_gone).await;
    assert_eq!(update_about(&m, "alice").unwrap().disconnect_reason, DisconnectReason::DuplicateIdentity as i32);
    if !old_obs.seen.iter().any(seen_new) {
        old_obs.recv_until("new session", seen_new).await;
    }
    // ...a current one is not: it replaces by identity when it sees the new sid, and the JS
    // SDK, which removes participants by identity, would drop the new session on that
    // departure.
    if !obs.seen.iter().any(seen_new) {
        obs.recv_until("new session", seen_new).await;
    }
    obs.settle(300).await;
    assert!(!obs.seen.iter().any(old_gone), "protocol 16 must not hear the replaced session's departure");
    let got: proto::ParticipantInfo = s
        .proto(
            "GetParticipant",
            &admin("r"),
            &proto::RoomParticipantIdentity { room: "r".into(), identity: "alice".into(), ..Default::default() },
        )
        .await
        .unwrap();
    assert_eq!(got.sid, j2.participant.unwrap().sid, "the old session's cleanup must not remove the new one");
    s.stop().await;
}

#[tokio::test]
async fn joins_are_validated_before_the_upgrade() {
    let s = TestServer::spawn("room:\n  auto_create: false\n").await;
    let refused = |token: &str| {
        let addr = s.addr;
        let token = token.to_string();
        async move { SignalClient::connect(addr, &token, "").await.err().expect("refused") }
    };
    let r = refused("").await;
    assert_eq!((r.status, r.body.as_str()), (401, "no permissions to access the room"));
    let r = refused("garbage").await;
    assert_eq!((r.status, r.body.as_str()), (401, "invalid authorization token"));
    let no_join = common::token(VideoGrant { room: "r".into(), ..Default::default() });
    let r = refused(&no_join).await;
    assert_eq!((r.status, r.body.as_str()), (401, "permissions denied"));
    let r = refused(&join_token("", "alice")).await;
    assert_eq!((r.status, r.body.as_str()), (400, "no room name"));
    let r = refused(&join_token("missing", "alice")).await;
    assert_eq!((r.status, r.body.as_str()), (404, "requested room does not exist"));

    // /rtc/validate gives the same verdicts as plain HTTP, with CORS for browsers.
    let r = s.validate(&join_token("missing", "alice")).await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (404, "requested room does not exist"));
    assert_eq!(r.headers["access-control-allow-origin"], "*");
    // roomCreate may create a room even with auto_create off.
    let creator = join_token_with("new", "alice", VideoGrant { room_create: true, ..Default::default() });
    let r = s.validate(&creator).await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "success"));
    let (_c, j) = SignalClient::join(s.addr, &creator).await;
    assert_eq!(j.room.unwrap().name, "new");

    // v1 is not served: a 404 without "requested room does not exist" makes clients use v0.
    let r = common::Reply::from(s.http.get(format!("{}/rtc/v1/validate", s.url())).send().await.unwrap()).await;
    assert_eq!(r.status, 404);
    assert!(!r.text().contains("requested room does not exist"));
    // A plain GET on /rtc (no upgrade) is a bare 404.
    let r = common::Reply::from(s.http.get(format!("{}/rtc", s.url())).send().await.unwrap()).await;
    assert_eq!(r.status, 404);
    s.stop().await;
}

#[tokio::test]
async fn a_full_room_refuses_and_a_resume_is_sent_back_to_rejoin() {
    let s = TestServer::spawn("").await;
    let _: proto::Room = s
        .proto(
            "CreateRoom",
            &create_list(),
            &proto::CreateRoomRequest { name: "r".into(), max_participants: 1, ..Default::default() },
        )
        .await
        .unwrap();
    let (_a, _) = SignalClient::join(s.addr, &join_token("r", "a")).await;
    let r = SignalClient::connect(s.addr, &join_token("r", "b"), "").await.err().expect("room is full");
    assert_eq!((r.status, r.body.as_str()), (503, "room is full"));
    // /rtc/validate gives the same verdict; the current occupant may still replace itself.
    let r = s.validate(&join_token("r", "b")).await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (503, "room is full"));
    let r = s.validate(&join_token("r", "a")).await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "success"));

    // A resume for someone the room does not hold is sent back to rejoin from scratch.
    let mut resumed =
        SignalClient::connect(s.addr, &join_token("r", "zz"), "&reconnect=1&sid=PA_unknown").await.expect("upgraded");
    let m = resumed.recv().await.expect("a leave");
    assert!(
        matches!(&m, Signal::Leave(l) if l.reason == DisconnectReason::StateMismatch as i32
            && l.action == proto::leave_request::Action::Reconnect as i32),
        "{m:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_stalled_client_is_dropped_and_the_room_keeps_serving_everyone_else() {
    let s = TestServer::spawn("").await;
    let (mut reader, _) = SignalClient::join(s.addr, &join_token("r", "reader")).await;
    let (stalled, _) = SignalClient::join(s.addr, &join_token("r", "stalled")).await; // never reads again
    let metadata = "x".repeat(4 * 1024);
    let sender = {
        let s_url = s.url();
        let http = s.http.clone();
        let metadata = metadata.clone();
        tokio::spawn(async move {
            // 10,000 RoomUpdates, ~40 MB: more than the socket buffers and the 1024-frame queue
            // hold for a client that reads nothing.
            for i in 0..10_000 {
                let body = format!(r#"{{"room":"r","metadata":"{i}{metadata}"}}"#);
                let resp = http
                    .post(format!("{s_url}/twirp/livekit.RoomService/UpdateRoomMetadata"))
                    .header("content-type", "application/json")
                    .bearer_auth(admin("r"))
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200);
            }
        })
    };
    // The reader keeps up and sees the stalled participant dropped.
    let m = reader
        .recv_until("stalled dropped", |m| {
            update_about(m, "stalled").is_some_and(|p| p.state == State::Disconnected as i32)
        })
        .await;
    // Dropped for back-pressure, not found silent later and timed out.
    assert_eq!(update_about(&m, "stalled").unwrap().disconnect_reason, DisconnectReason::SignalClose as i32);
    // It keeps reading while the updates go on, and gets every one of them.
    let mut room_updates = reader.seen.iter().filter(|m| matches!(m, Signal::RoomUpdate(_))).count();
    while room_updates < 10_000 {
        if matches!(reader.recv().await.expect("reader still served"), Signal::RoomUpdate(_)) {
            room_updates += 1;
        }
    }
    sender.await.unwrap();
    let list: proto::ListParticipantsResponse =
        s.proto("ListParticipants", &admin("r"), &proto::ListParticipantsRequest { room: "r".into() }).await.unwrap();
    assert_eq!(list.participants.iter().map(|p| p.identity.as_str()).collect::<Vec<_>>(), ["reader"]);
    drop(stalled);
    s.stop().await;
}

#[tokio::test]
async fn stopping_the_server_sends_every_session_a_shutdown_leave() {
    let s = TestServer::spawn("").await;
    let (mut a, _) = SignalClient::join(s.addr, &join_token("r", "a")).await;
    let (mut b, _) = SignalClient::join(s.addr, &join_token("other", "b")).await;
    let stop = tokio::spawn(s.stop());
    for c in [&mut a, &mut b] {
        c.recv_until("shutdown leave", is_leave(DisconnectReason::ServerShutdown)).await;
        assert!(c.recv().await.is_none(), "the socket closes after the leave");
    }
    stop.await.unwrap();
}

#[tokio::test]
async fn a_client_leave_keeps_the_reasons_a_client_may_give() {
    let s = TestServer::spawn("").await;
    let (mut obs, _) = SignalClient::join(s.addr, &join_token("r", "observer")).await;
    for (identity, given, seen) in [
        ("callee", DisconnectReason::UserRejected, DisconnectReason::UserRejected),
        ("agent", DisconnectReason::AgentError, DisconnectReason::AgentError),
        ("liar", DisconnectReason::ServerShutdown, DisconnectReason::ClientInitiated),
    ] {
        let (mut c, _) = SignalClient::join(s.addr, &join_token("r", identity)).await;
        c.send(Req::Leave(proto::LeaveRequest { reason: given as i32, ..Default::default() })).await;
        let m = obs
            .recv_until("left", |m| update_about(m, identity).is_some_and(|p| p.state == State::Disconnected as i32))
            .await;
        assert_eq!(update_about(&m, identity).unwrap().disconnect_reason, seen as i32, "{identity}");
    }
    s.stop().await;
}

#[tokio::test]
async fn replies_follow_the_encoding_of_the_latest_request() {
    let s = TestServer::spawn("").await;
    let (mut c, _) = SignalClient::join(s.addr, &join_token("r", "json")).await;
    c.settle(200).await;
    // A text frame (protobuf JSON, proto field names) switches replies to JSON text frames.
    c.send_text(r#"{"ping_req": {"timestamp": "99", "rtt": "0"}}"#).await;
    let pong = c.recv_text().await;
    assert_eq!(pong["pong_resp"]["last_ping_timestamp"], "99", "{pong}");
    // Room news arrives as JSON too while the client speaks JSON.
    let _: proto::Room = s
        .proto(
            "UpdateRoomMetadata",
            &admin("r"),
            &proto::UpdateRoomMetadataRequest { room: "r".into(), metadata: "m".into() },
        )
        .await
        .unwrap();
    let update = c.recv_text().await;
    assert_eq!(update["room_update"]["room"]["metadata"], "m", "{update}");
    // Undecodable JSON is ignored; a binary frame switches back.
    c.send_text("{not json").await;
    c.send(Req::PingReq(proto::Ping { timestamp: 5, rtt: 0 })).await;
    let m = c.recv().await.unwrap();
    assert!(matches!(m, Signal::PongResp(p) if p.last_ping_timestamp == 5), "{m:?}");
    s.stop().await;
}

#[tokio::test]
async fn nothing_follows_a_leave_even_while_the_client_keeps_pinging() {
    use futures_util::{SinkExt as _, StreamExt as _};
    use prost::Message as _;
    use tokio_tungstenite::tungstenite::Message;
    let s = TestServer::spawn("").await;
    for round in 0..20 {
        let url = format!("ws://{}/rtc?access_token={}&protocol=16", s.addr, join_token("r", "pinger"));
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let (mut tx, mut rx) = ws.split();
        // Pings as fast as the socket takes them, so one is in flight when the leave goes out.
        let pinger = tokio::spawn(async move {
            let ping = proto::SignalRequest { message: Some(Req::PingReq(proto::Ping { timestamp: 1, rtt: 0 })) };
            while tx.send(Message::Binary(ping.encode_to_vec().into())).await.is_ok() {
                tokio::task::yield_now().await;
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let who = proto::RoomParticipantIdentity { room: "r".into(), identity: "pinger".into(), ..Default::default() };
        let _: proto::RemoveParticipantResponse = s.proto("RemoveParticipant", &admin("r"), &who).await.unwrap();
        let mut frames = Vec::new();
        let started = std::time::Instant::now();
        let ended = loop {
            match tokio::time::timeout(std::time::Duration::from_secs(5), rx.next()).await {
                Ok(Some(Ok(Message::Binary(b)))) => {
                    frames.push(proto::SignalResponse::decode(b).unwrap().message.unwrap())
                }
                other => break format!("{other:?} after {:?}", started.elapsed()),
            }
        };
        pinger.abort();
        let last = frames.last().unwrap();
        let tail: Vec<String> = frames.iter().rev().map(|m| format!("{m:?}").chars().take(12).collect()).collect();
        assert!(
            matches!(last, Signal::Leave(l) if l.reason == DisconnectReason::ParticipantRemoved as i32),
            "round {round}: {} frames, ended by {ended}, newest first {tail:?}",
            frames.len()
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn an_oversized_frame_ends_only_its_own_session() {
    // 2 KiB frames at most; the room's departure window is 1 s.
    let s = TestServer::spawn("limit:\n  signal_message_size_limit: 2048\nroom:\n  departure_timeout: 1\n").await;
    let (mut obs, _) = SignalClient::join(s.addr, &join_token("big", "observer")).await;
    let (mut big, _) = SignalClient::join(s.addr, &join_token("big", "big")).await;
    // An UpdateParticipantMetadata of 8 KiB: over the frame limit, refused before decoding.
    let update = proto::SignalRequest {
        message: Some(Req::UpdateMetadata(proto::UpdateParticipantMetadata {
            metadata: "m".repeat(8 * 1024),
            ..Default::default()
        })),
    };
    big.send_raw(prost::Message::encode_to_vec(&update)).await;
    // The sender's socket is closed; nothing of the frame was applied.
    while big.recv().await.is_some() {}
    let info: proto::ParticipantInfo = s
        .proto(
            "GetParticipant",
            &admin("big"),
            &proto::RoomParticipantIdentity { room: "big".into(), identity: "big".into(), ..Default::default() },
        )
        .await
        .unwrap();
    assert!(info.metadata.is_empty(), "the oversized request changed nothing");
    // Like any lost socket, it may resume within the window; then it is gone. The observer is
    // served throughout.
    let m = obs
        .recv_until("big gone", |m| update_about(m, "big").is_some_and(|p| p.state == State::Disconnected as i32))
        .await;
    assert_eq!(update_about(&m, "big").unwrap().disconnect_reason, DisconnectReason::ConnectionTimeout as i32);
    obs.send(Req::PingReq(proto::Ping { timestamp: 7, rtt: 0 })).await;
    obs.recv_until("observer still served", |m| matches!(m, Signal::PongResp(p) if p.last_ping_timestamp == 7)).await;
    let list: proto::ListParticipantsResponse = s
        .proto("ListParticipants", &admin("big"), &proto::ListParticipantsRequest { room: "big".into() })
        .await
        .unwrap();
    assert_eq!(list.participants.iter().map(|p| p.identity.as_str()).collect::<Vec<_>>(), ["observer"]);
    s.stop().await;
}
