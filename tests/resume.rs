//! Losing the signal socket and resuming it (`/rtc?reconnect=1`), and the subscriptions and
//! sync state a client reports, black-box.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;

use common::{
    TestServer, admin, create_list, join_token,
    signal::{SignalClient, update_about},
};
use usher::proto::{
    self, DisconnectReason, SubscriptionError, TrackSource, TrackType, leave_request::Action, participant_info::State,
    signal_request::Message as Req, signal_response::Message as Signal,
};

/// A room whose departure window is `secs` seconds.
async fn room_with_window(s: &TestServer, secs: u32) {
    let req = proto::CreateRoomRequest { name: "r".into(), departure_timeout: secs, ..Default::default() };
    let _: proto::Room = s.proto("CreateRoom", &create_list(), &req).await.unwrap();
}

async fn listed(s: &TestServer) -> Vec<String> {
    let list: proto::ListParticipantsResponse =
        s.proto("ListParticipants", &admin("r"), &proto::ListParticipantsRequest { room: "r".into() }).await.unwrap();
    list.participants.into_iter().map(|p| p.identity).collect()
}

async fn resume(s: &TestServer, identity: &str, sid: &str) -> SignalClient {
    SignalClient::connect(s.addr, &join_token("r", identity), &format!("&reconnect=1&sid={sid}&reconnect_reason=1"))
        .await
        .expect("a resume is upgraded")
}

#[tokio::test]
async fn a_lost_socket_is_resumed_with_its_sid_tracks_and_the_state_it_missed() {
    let s = TestServer::spawn("").await;
    room_with_window(&s, 30).await;
    let (mut obs, _) = SignalClient::join(s.addr, &join_token("r", "observer")).await;
    let (mut a, j) = SignalClient::join(s.addr, &join_token("r", "a")).await;
    let sid = j.participant.unwrap().sid;
    let track = a.publish("mic", TrackType::Audio, TrackSource::Microphone).await;
    let (b, _) = SignalClient::join(s.addr, &join_token("r", "b")).await;
    obs.recv_until("b joined", |m| update_about(m, "b").is_some()).await;

    a.drop_connection().await;
    // While a is away: nobody is told it left, b leaves, and the room metadata changes.
    let mut b = b;
    b.send(Req::Leave(proto::LeaveRequest { reason: DisconnectReason::ClientInitiated as i32, ..Default::default() }))
        .await;
    obs.recv_until("b left", |m| update_about(m, "b").is_some_and(|p| p.state == State::Disconnected as i32)).await;
    let _: proto::Room = s
        .proto(
            "UpdateRoomMetadata",
            &admin("r"),
            &proto::UpdateRoomMetadataRequest { room: "r".into(), metadata: "while away".into() },
        )
        .await
        .unwrap();
    assert_eq!(listed(&s).await, ["a", "observer"], "a is kept for a resume");
    assert!(!obs.seen.iter().any(|m| update_about(m, "a").is_some_and(|p| p.state == State::Disconnected as i32)));

    let mut a = resume(&s, "a", &sid).await;
    let Some(Signal::Reconnect(r)) = a.recv().await else { panic!("first frame must be a reconnect: {:?}", a.seen) };
    assert!(!r.server_info.unwrap().version.is_empty());
    let Some(Signal::Update(gone)) = a.recv().await else { panic!("{:?}", a.seen) };
    assert_eq!(
        gone.participants.iter().map(|p| (p.identity.as_str(), p.state)).collect::<Vec<_>>(),
        [("b", State::Disconnected as i32)],
        "departures missed while away"
    );
    let Some(Signal::Update(all)) = a.recv().await else { panic!("{:?}", a.seen) };
    let me = all.participants.iter().find(|p| p.identity == "a").expect("its own info too");
    assert_eq!(me.sid, sid, "the sid survives a resume");
    assert_eq!(me.tracks.iter().map(|t| t.sid.as_str()).collect::<Vec<_>>(), [track.sid.as_str()]);
    assert!(all.participants.iter().any(|p| p.identity == "observer"));
    let Some(Signal::RoomUpdate(room)) = a.recv().await else { panic!("{:?}", a.seen) };
    assert_eq!(room.room.unwrap().metadata, "while away");

    // The resumed socket is live: requests are served, changes arrive.
    a.send(Req::PingReq(proto::Ping { timestamp: 7, rtt: 0 })).await;
    a.recv_until("pong", |m| matches!(m, Signal::PongResp(p) if p.last_ping_timestamp == 7)).await;
    let mut req = proto::UpdateParticipantRequest { room: "r".into(), identity: "a".into(), ..Default::default() };
    req.metadata = "back".into();
    let _: proto::ParticipantInfo = s.proto("UpdateParticipant", &admin("r"), &req).await.unwrap();
    a.recv_until("own update", |m| update_about(m, "a").is_some_and(|p| p.metadata == "back")).await;
    s.stop().await;
}

#[tokio::test]
async fn without_a_resume_the_participant_times_out_and_cannot_resume_later() {
    let s = TestServer::spawn("").await;
    room_with_window(&s, 1).await;
    let (mut obs, _) = SignalClient::join(s.addr, &join_token("r", "observer")).await;
    let (a, j) = SignalClient::join(s.addr, &join_token("r", "a")).await;
    let sid = j.participant.unwrap().sid;
    a.drop_connection().await;
    let m = obs
        .recv_until("a timed out", |m| update_about(m, "a").is_some_and(|p| p.state == State::Disconnected as i32))
        .await;
    assert_eq!(update_about(&m, "a").unwrap().disconnect_reason, DisconnectReason::ConnectionTimeout as i32);
    assert_eq!(listed(&s).await, ["observer"]);

    let mut late = resume(&s, "a", &sid).await;
    let m = late.recv().await.expect("a leave");
    assert!(
        matches!(&m, Signal::Leave(l) if l.reason == DisconnectReason::StateMismatch as i32
            && l.action == Action::Reconnect as i32),
        "{m:?}"
    );
    assert!(late.recv().await.is_none(), "then the socket closes");
    s.stop().await;
}

#[tokio::test]
async fn a_resume_takes_over_a_socket_not_yet_noticed_as_lost() {
    let s = TestServer::spawn("").await;
    room_with_window(&s, 30).await;
    let (mut obs, _) = SignalClient::join(s.addr, &join_token("r", "observer")).await;
    let (mut old, j) = SignalClient::join(s.addr, &join_token("r", "a")).await;
    let sid = j.participant.unwrap().sid;
    obs.settle(200).await;
    // A resume naming another session of this identity (an older one, replaced since) is
    // sent back to rejoin and takes nothing over.
    let mut stale = resume(&s, "a", "PA_replacedlong").await;
    assert!(matches!(stale.recv().await, Some(Signal::Leave(l)) if l.reason == DisconnectReason::StateMismatch as i32));
    old.send(Req::PingReq(proto::Ping { timestamp: 3, rtt: 0 })).await;
    old.recv_until(
        "the current socket still serves",
        |m| matches!(m, Signal::PongResp(p) if p.last_ping_timestamp == 3),
    )
    .await;
    let mut new = resume(&s, "a", &sid).await;
    assert!(matches!(new.recv().await, Some(Signal::Reconnect(_))));
    // The old socket is closed without a leave; nobody sees a leave; the participant stays.
    while let Some(m) = old.recv().await {
        assert!(!matches!(m, Signal::Leave(_)), "the old socket must not be told to leave: {m:?}");
    }
    obs.assert_quiet(300).await;
    assert_eq!(listed(&s).await, ["a", "observer"]);
    new.send(Req::Leave(proto::LeaveRequest {
        reason: DisconnectReason::ClientInitiated as i32,
        ..Default::default()
    }))
    .await;
    let m =
        obs.recv_until("a left", |m| update_about(m, "a").is_some_and(|p| p.state == State::Disconnected as i32)).await;
    assert_eq!(update_about(&m, "a").unwrap().sid, sid);
    s.stop().await;
}

#[tokio::test]
async fn a_sync_state_naming_unknown_tracks_asks_for_a_full_reconnect() {
    let s = TestServer::spawn("").await;
    room_with_window(&s, 30).await;
    let (mut obs, _) = SignalClient::join(s.addr, &join_token("r", "observer")).await;
    let (mut a, j) = SignalClient::join(s.addr, &join_token("r", "a")).await;
    let sid = j.participant.unwrap().sid;
    let track = a.publish("cam", TrackType::Video, TrackSource::Camera).await;
    a.drop_connection().await;
    let mut a = resume(&s, "a", &sid).await;
    a.settle(200).await;
    let published = |sid: &str| proto::TrackPublishedResponse {
        cid: "cam".into(),
        track: Some(proto::TrackInfo { sid: sid.into(), ..Default::default() }),
    };
    // What the room knows is fine.
    a.send(Req::SyncState(proto::SyncState { publish_tracks: vec![published(&track.sid)], ..Default::default() }))
        .await;
    a.assert_quiet(300).await;
    a.send(Req::SyncState(proto::SyncState { publish_tracks: vec![published("TR_VCunknown")], ..Default::default() }))
        .await;
    let m = a.recv_until("leave", |m| matches!(m, Signal::Leave(_))).await;
    assert!(
        matches!(&m, Signal::Leave(l) if l.reason == DisconnectReason::StateMismatch as i32
            && l.action == Action::Reconnect as i32),
        "{m:?}"
    );
    let m =
        obs.recv_until("a left", |m| update_about(m, "a").is_some_and(|p| p.state == State::Disconnected as i32)).await;
    assert_eq!(update_about(&m, "a").unwrap().disconnect_reason, DisconnectReason::StateMismatch as i32);
    s.stop().await;
}

#[tokio::test]
async fn update_subscriptions_is_recorded_and_unknown_tracks_are_answered() {
    let s = TestServer::spawn("").await;
    let (mut publisher, _) = SignalClient::join(s.addr, &join_token("r", "pub")).await;
    let track = publisher.publish("mic", TrackType::Audio, TrackSource::Microphone).await;
    let (mut sub, _) = SignalClient::join(s.addr, &join_token("r", "sub")).await;
    let req = proto::UpdateSubscriptionsRequest {
        room: "r".into(),
        identity: "sub".into(),
        track_sids: vec![track.sid.clone()],
        subscribe: true,
        participant_tracks: vec![proto::ParticipantTracks {
            participant_sid: "PA_ignored".into(),
            track_sids: vec!["TR_AMmissing".into()],
        }],
    };
    let _: proto::UpdateSubscriptionsResponse = s.proto("UpdateSubscriptions", &admin("r"), &req).await.unwrap();
    let m = sub.recv_until("subscription response", |m| matches!(m, Signal::SubscriptionResponse(_))).await;
    assert!(
        matches!(&m, Signal::SubscriptionResponse(r) if r.track_sid == "TR_AMmissing"
            && r.err == SubscriptionError::SeTrackNotfound as i32),
        "{m:?}"
    );
    // The same through JSON, and from the client's own socket.
    let json = serde_json::json!({"room": "r", "identity": "sub", "track_sids": [track.sid], "subscribe": false});
    let body: serde_json::Value = s.json("UpdateSubscriptions", &admin("r"), &json).await.unwrap();
    assert_eq!(body, serde_json::json!({}));
    sub.send(Req::Subscription(proto::UpdateSubscription {
        track_sids: vec!["TR_AMother".into()],
        subscribe: true,
        participant_tracks: vec![],
    }))
    .await;
    sub.recv_until(
        "client subscription answered",
        |m| matches!(m, Signal::SubscriptionResponse(r) if r.track_sid == "TR_AMother"),
    )
    .await;
    // Unknown participant: not_found, as every participant RPC.
    let missing = proto::UpdateSubscriptionsRequest { identity: "nobody".into(), ..req };
    let err = s.proto::<_, proto::UpdateSubscriptionsResponse>("UpdateSubscriptions", &admin("r"), &missing).await;
    err.unwrap_err().assert_twirp(404, "not_found", "twirp error unknown: participant does not exist");
    s.stop().await;
}

#[tokio::test]
async fn a_refused_resume_speaks_the_clients_protocol() {
    let s = TestServer::spawn("").await;
    // Protocol 13 and later read the action; older clients only `can_reconnect`.
    for (protocol, can_reconnect, action) in [(16, false, Action::Reconnect as i32), (12, true, 0)] {
        let url = format!(
            "ws://{}/rtc?access_token={}&protocol={protocol}&reconnect=1&sid=PA_x",
            s.addr,
            join_token("r", "gone")
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        use futures_util::StreamExt as _;
        use prost::Message as _;
        let Some(Ok(tokio_tungstenite::tungstenite::Message::Binary(b))) = ws.next().await else { panic!("a frame") };
        let Some(Signal::Leave(l)) = proto::SignalResponse::decode(b).unwrap().message else { panic!("a leave") };
        assert_eq!(
            (l.reason, l.can_reconnect, l.action),
            (DisconnectReason::StateMismatch as i32, can_reconnect, action),
            "protocol {protocol}"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn a_client_silent_past_the_ping_timeout_is_kept_for_a_resume_not_removed() {
    let s = TestServer::spawn("").await;
    room_with_window(&s, 30).await;
    let (mut obs, _) = SignalClient::join(s.addr, &join_token("r", "observer")).await;
    let (mut a, j) = SignalClient::join(s.addr, &join_token("r", "quiet")).await;
    let sid = j.participant.unwrap().sid;
    // No pings for the advertised timeout (15 s): the server gives up on the socket, while
    // the observer, which keeps pinging, is served throughout...
    let watch = async {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(17);
        while std::time::Instant::now() < until {
            obs.settle(500).await;
        }
    };
    let (closed, ()) = tokio::join!(a.silent_until_closed(20), watch);
    assert!(closed, "the silent socket is closed");
    obs.send(Req::PingReq(proto::Ping { timestamp: 9, rtt: 0 })).await;
    obs.recv_until("pong", |m| matches!(m, Signal::PongResp(p) if p.last_ping_timestamp == 9)).await;
    // ...and, as for any lost connection, keeps the participant for a resume; nobody is told
    // it left.
    assert_eq!(listed(&s).await, ["observer", "quiet"]);
    assert!(!obs.seen.iter().any(|m| update_about(m, "quiet").is_some_and(|p| p.state == State::Disconnected as i32)));
    let mut a = resume(&s, "quiet", &sid).await;
    assert!(matches!(a.recv().await, Some(Signal::Reconnect(_))), "{:?}", a.seen);
    s.stop().await;
}
