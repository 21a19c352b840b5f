//! ForwardParticipant on connected sessions, black-box: copies in other rooms, kept up to date,
//! removed one by one or all at once when the participant goes; refusals; races with moves.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;

use common::{
    TestServer, admin, join_token,
    signal::{SignalClient, update_about},
    token,
};
use usher::{
    auth::VideoGrant,
    proto::{
        self, DisconnectReason, TrackSource, TrackType, participant_info::KindDetail, participant_info::State,
        signal_request::Message as Req,
    },
};

fn forwarder(room: &str, destination: &str) -> String {
    token(VideoGrant {
        room_admin: true,
        room: room.into(),
        destination_room: destination.into(),
        ..Default::default()
    })
}

fn fwd(identity: &str, from: &str, to: &str) -> proto::ForwardParticipantRequest {
    proto::ForwardParticipantRequest { room: from.into(), identity: identity.into(), destination_room: to.into() }
}

async fn forward(s: &TestServer, identity: &str, from: &str, to: &str) -> Result<(), common::Reply> {
    s.proto::<_, proto::ForwardParticipantResponse>(
        "ForwardParticipant",
        &forwarder(from, to),
        &fwd(identity, from, to),
    )
    .await
    .map(|_| ())
}

async fn get(s: &TestServer, room: &str, identity: &str) -> Result<proto::ParticipantInfo, common::Reply> {
    let who = proto::RoomParticipantIdentity { room: room.into(), identity: identity.into(), ..Default::default() };
    s.proto("GetParticipant", &admin(room), &who).await
}

async fn identities(s: &TestServer, room: &str) -> Vec<String> {
    let list: proto::ListParticipantsResponse =
        s.proto("ListParticipants", &admin(room), &proto::ListParticipantsRequest { room: room.into() }).await.unwrap();
    let mut v: Vec<_> = list.participants.into_iter().map(|p| p.identity).collect();
    v.sort();
    v
}

fn gone(identity: &str) -> impl Fn(&proto::signal_response::Message) -> bool + '_ {
    move |m| update_about(m, identity).is_some_and(|p| p.state == State::Disconnected as i32)
}

#[tokio::test]
async fn a_forwarded_publisher_appears_in_each_destination_and_stays_in_sync() {
    let s = TestServer::spawn("").await;
    let (mut in_b, _) = SignalClient::join(s.addr, &join_token("b", "watcher-b")).await;
    let (mut in_c, _) = SignalClient::join(s.addr, &join_token("c", "watcher-c")).await;
    let (mut host, j) = SignalClient::join(s.addr, &join_token("a", "host")).await;
    let sid = j.participant.unwrap().sid;
    let mic = host.publish("mic", TrackType::Audio, TrackSource::Microphone).await;
    host.settle(200).await;

    forward(&s, "host", "a", "b").await.unwrap();
    forward(&s, "host", "a", "c").await.unwrap();
    for (room, watcher) in [("b", &mut in_b), ("c", &mut in_c)] {
        let m = watcher.recv_until("copy arrives", |m| update_about(m, "host").is_some()).await;
        let copy = update_about(&m, "host").unwrap();
        assert_eq!((copy.sid.as_str(), copy.tracks[0].sid.as_str()), (sid.as_str(), mic.sid.as_str()), "{room}");
        assert!(copy.kind_details.contains(&(KindDetail::Forwarded as i32)));
        let listed = get(&s, room, "host").await.unwrap();
        assert_eq!((listed.sid.as_str(), listed.tracks.len()), (sid.as_str(), 1), "{room}");
        assert_eq!(identities(&s, room).await, ["host".to_string(), format!("watcher-{room}")]);
    }
    assert_eq!(identities(&s, "a").await, ["host"], "the participant stays at home");

    // Metadata (by the API, in the source) and a mute (from the client) reach every copy.
    let mut req = proto::UpdateParticipantRequest { room: "a".into(), identity: "host".into(), ..Default::default() };
    req.metadata = "live".into();
    let _: proto::ParticipantInfo = s.proto("UpdateParticipant", &admin("a"), &req).await.unwrap();
    host.send(Req::Mute(proto::MuteTrackRequest { sid: mic.sid.clone(), muted: true })).await;
    for watcher in [&mut in_b, &mut in_c] {
        watcher
            .recv_until("metadata mirrored", |m| update_about(m, "host").is_some_and(|p| p.metadata == "live"))
            .await;
        watcher
            .recv_until("mute mirrored", |m| {
                update_about(m, "host").is_some_and(|p| p.tracks.first().is_some_and(|t| t.muted))
            })
            .await;
    }
    assert!(get(&s, "c", "host").await.unwrap().tracks[0].muted);
    // Changes go to the participant's own room: a copy is read-only.
    let mut req = proto::UpdateParticipantRequest { room: "b".into(), identity: "host".into(), ..Default::default() };
    req.metadata = "nope".into();
    let e = s.proto::<_, proto::ParticipantInfo>("UpdateParticipant", &admin("b"), &req).await.unwrap_err();
    assert_eq!(e.twirp().0, "failed_precondition");

    // RemoveParticipant in c removes only c's copy.
    let who = proto::RoomParticipantIdentity { room: "c".into(), identity: "host".into(), ..Default::default() };
    let _: proto::RemoveParticipantResponse = s.proto("RemoveParticipant", &admin("c"), &who).await.unwrap();
    let m = in_c.recv_until("c's copy gone", gone("host")).await;
    let gone_version = update_about(&m, "host").unwrap().version;
    assert_eq!(identities(&s, "c").await, ["watcher-c"]);
    assert!(get(&s, "b", "host").await.is_ok());
    assert!(get(&s, "a", "host").await.is_ok());
    host.settle(200).await;
    assert!(!host.seen.iter().any(|m| matches!(m, proto::signal_response::Message::Leave(_))), "the host stays");
    // Forwarding to c can start again; further changes reach b only until then.
    forward(&s, "host", "a", "c").await.unwrap();
    let m = in_c
        .recv_until("copy back", |m| update_about(m, "host").is_some_and(|p| p.state != State::Disconnected as i32))
        .await;
    assert!(update_about(&m, "host").unwrap().version > gone_version, "versions never go back in one room");

    // The host leaving its room removes every copy.
    host.send(Req::Leave(proto::LeaveRequest {
        reason: DisconnectReason::ClientInitiated as i32,
        ..Default::default()
    }))
    .await;
    for watcher in [&mut in_b, &mut in_c] {
        let m = watcher.recv_until("copy gone with the host", gone("host")).await;
        let why = update_about(&m, "host").unwrap().disconnect_reason;
        assert_eq!(why, DisconnectReason::ClientInitiated as i32, "the copy goes for the host's reason");
    }
    assert_eq!(identities(&s, "b").await, ["watcher-b"]);
    assert_eq!(identities(&s, "c").await, ["watcher-c"]);
    s.stop().await;
}

#[tokio::test]
async fn refused_forwards_change_nothing() {
    let s = TestServer::spawn("").await;
    let (_host, _) = SignalClient::join(s.addr, &join_token("a", "host")).await;
    let (mut twin, _) = SignalClient::join(s.addr, &join_token("b", "host")).await;
    twin.settle(200).await;
    forward(&s, "host", "a", "b").await.unwrap_err().assert_twirp(
        409,
        "already_exists",
        "twirp error unknown: participant already exists in the destination room",
    );
    forward(&s, "host", "a", "a").await.unwrap_err().assert_twirp(
        400,
        "invalid_argument",
        "destination room cannot be the same as source room ",
    );
    forward(&s, "nobody", "a", "c").await.unwrap_err().assert_twirp(
        404,
        "not_found",
        "twirp error unknown: participant does not exist",
    );
    let wrong = s
        .proto::<_, proto::ForwardParticipantResponse>(
            "ForwardParticipant",
            &forwarder("a", "x"),
            &fwd("host", "a", "c"),
        )
        .await
        .unwrap_err();
    wrong.assert_twirp(401, "unauthenticated", "permissions denied");
    twin.assert_quiet(300).await;
    assert_eq!(identities(&s, "b").await, ["host"]);
    // A second forward to the same room is refused too.
    forward(&s, "host", "a", "c").await.unwrap();
    assert_eq!(forward(&s, "host", "a", "c").await.unwrap_err().twirp().0, "already_exists");
    s.stop().await;
}

// Two workers, so the racing requests really run at the same time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_and_moves_together_end_consistent() {
    let s = TestServer::spawn("").await;
    // Forwarded to b, then moved to c: forwarding stops with the move.
    let (mut in_b, _) = SignalClient::join(s.addr, &join_token("b", "watcher")).await;
    let (_host, _) = SignalClient::join(s.addr, &join_token("a", "host")).await;
    forward(&s, "host", "a", "b").await.unwrap();
    in_b.recv_until("copy", |m| update_about(m, "host").is_some()).await;
    let mover =
        token(VideoGrant { room_admin: true, room: "a".into(), destination_room: "c".into(), ..Default::default() });
    let req = proto::MoveParticipantRequest { room: "a".into(), identity: "host".into(), destination_room: "c".into() };
    let _: proto::MoveParticipantResponse = s.proto("MoveParticipant", &mover, &req).await.unwrap();
    in_b.recv_until("copy gone with the move", gone("host")).await;
    assert_eq!(identities(&s, "b").await, ["watcher"]);
    assert_eq!(identities(&s, "c").await, ["host"]);
    // Moving into a room that shows its copy ("forward to preview, then transfer"): the
    // participant takes its copy's place, and is listed there once, in person.
    let (mut in_d, _) = SignalClient::join(s.addr, &join_token("d", "watcher-d")).await;
    forward(&s, "host", "c", "d").await.unwrap();
    in_d.recv_until("copy in d", |m| update_about(m, "host").is_some()).await;
    let mover =
        token(VideoGrant { room_admin: true, room: "c".into(), destination_room: "d".into(), ..Default::default() });
    let req = proto::MoveParticipantRequest { room: "c".into(), identity: "host".into(), destination_room: "d".into() };
    let _: proto::MoveParticipantResponse = s.proto("MoveParticipant", &mover, &req).await.unwrap();
    assert_eq!(identities(&s, "c").await, Vec::<String>::new());
    assert_eq!(identities(&s, "d").await, ["host", "watcher-d"]);
    let got = get(&s, "d", "host").await.unwrap();
    assert!(got.kind_details.is_empty(), "in person, not a copy: {:?}", got.kind_details);

    // A forward racing the participant's leave leaves no copy behind.
    for round in 0..10 {
        let room = format!("src{round}");
        let (mut c, _) = SignalClient::join(s.addr, &join_token(&room, "racer")).await;
        let dest = format!("dst{round}");
        let bye = proto::LeaveRequest { reason: DisconnectReason::ClientInitiated as i32, ..Default::default() };
        let (_, _) = tokio::join!(c.send(Req::Leave(bye)), forward(&s, "racer", &room, &dest));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(!identities(&s, &dest).await.contains(&"racer".to_string()), "round {round}: a copy outlived racer");
    }

    // A forward racing a move of the same participant: the move wins whatever the order; a
    // copy made before it is taken away by it, one made after is undone.
    for round in 0..10 {
        let (home, copy, next) = (format!("fa{round}"), format!("fb{round}"), format!("fc{round}"));
        let (_c, _) = SignalClient::join(s.addr, &join_token(&home, "both")).await;
        let mover = token(VideoGrant {
            room_admin: true,
            room: home.clone(),
            destination_room: next.clone(),
            ..Default::default()
        });
        let req = proto::MoveParticipantRequest {
            room: home.clone(),
            identity: "both".into(),
            destination_room: next.clone(),
        };
        let (forwarded, moved) = tokio::join!(
            forward(&s, "both", &home, &copy),
            s.proto::<_, proto::MoveParticipantResponse>("MoveParticipant", &mover, &req),
        );
        assert!(moved.is_ok(), "round {round}: the move wins: {moved:?}");
        if let Err(e) = forwarded {
            assert_eq!(e.twirp().0, "not_found", "round {round}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(identities(&s, &next).await, ["both"], "round {round}");
        assert!(identities(&s, &home).await.is_empty(), "round {round}");
        assert!(!identities(&s, &copy).await.contains(&"both".to_string()), "round {round}: a copy outlived the move");
    }
    s.stop().await;
}

#[tokio::test]
async fn the_participant_joining_where_its_copy_is_replaces_the_copy() {
    let s = TestServer::spawn("").await;
    let (mut in_b, _) = SignalClient::join(s.addr, &join_token("b", "watcher")).await;
    let (_home, _) = SignalClient::join(s.addr, &join_token("a", "host")).await;
    forward(&s, "host", "a", "b").await.unwrap();
    in_b.recv_until("copy", |m| update_about(m, "host").is_some()).await;
    let (_there, j) = SignalClient::join(s.addr, &join_token("b", "host")).await;
    let me = j.participant.unwrap();
    assert!(!j.other_participants.iter().any(|p| p.identity == "host"), "the newcomer does not see its own copy");
    assert_eq!(identities(&s, "b").await, ["host", "watcher"], "one entry for host");
    let listed = get(&s, "b", "host").await.unwrap();
    assert_eq!(listed.sid, me.sid);
    assert!(!listed.kind_details.contains(&(KindDetail::Forwarded as i32)));
    // The one in b is a real participant now: the API can change it.
    let mut req = proto::UpdateParticipantRequest { room: "b".into(), identity: "host".into(), ..Default::default() };
    req.metadata = "here".into();
    let _: proto::ParticipantInfo = s.proto("UpdateParticipant", &admin("b"), &req).await.unwrap();
    s.stop().await;
}

#[tokio::test]
async fn a_copy_follows_publications_and_unpublications() {
    let s = TestServer::spawn("").await;
    let (mut in_b, _) = SignalClient::join(s.addr, &join_token("b", "watcher")).await;
    let (mut host, _) = SignalClient::join(s.addr, &join_token("a", "host")).await;
    let mic = host.publish("mic", TrackType::Audio, TrackSource::Microphone).await;
    forward(&s, "host", "a", "b").await.unwrap();
    in_b.recv_until("copy with the mic", |m| update_about(m, "host").is_some_and(|p| p.tracks.len() == 1)).await;

    // A publication made after the forward is forwarded too.
    let cam = host.publish("cam", TrackType::Video, TrackSource::Camera).await;
    let m = in_b.recv_until("cam forwarded", |m| update_about(m, "host").is_some_and(|p| p.tracks.len() == 2)).await;
    let sids: Vec<_> = update_about(&m, "host").unwrap().tracks.iter().map(|t| t.sid.clone()).collect();
    assert_eq!(sids, [mic.sid.clone(), cam.sid.clone()], "the same publications, not copies");
    assert_eq!(get(&s, "b", "host").await.unwrap().tracks.len(), 2);

    // Revoking publish unpublishes at home, and the copy loses the tracks with it.
    let mut req = proto::UpdateParticipantRequest { room: "a".into(), identity: "host".into(), ..Default::default() };
    req.permission = Some(proto::ParticipantPermission { can_subscribe: true, ..Default::default() });
    let _: proto::ParticipantInfo = s.proto("UpdateParticipant", &admin("a"), &req).await.unwrap();
    in_b.recv_until("tracks gone from the copy", |m| update_about(m, "host").is_some_and(|p| p.tracks.is_empty()))
        .await;
    let copy = get(&s, "b", "host").await.unwrap();
    assert!(copy.tracks.is_empty());
    assert!(copy.kind_details.contains(&(KindDetail::Forwarded as i32)), "still shown in b, without tracks");
    assert!(get(&s, "a", "host").await.unwrap().tracks.is_empty());
    s.stop().await;
}
