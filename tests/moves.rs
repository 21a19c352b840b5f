//! MoveParticipant on connected sessions, black-box: what the moved client and the observers
//! in both rooms receive, what the API lists afterwards, refusals that change nothing, races.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;

use common::{
    TestServer, join_token,
    signal::{SignalClient, update_about},
    token,
};
use usher::{
    auth::{TokenVerifier, VideoGrant},
    clock::Clock as _,
    config::Keys,
    proto::{
        self, DisconnectReason, TrackSource, TrackType, participant_info::State, signal_request::Message as Req,
        signal_response::Message as Signal,
    },
};

/// A token allowed to move participants from `room` to `destination`.
fn mover(room: &str, destination: &str) -> String {
    token(VideoGrant {
        room_admin: true,
        room: room.into(),
        destination_room: destination.into(),
        ..Default::default()
    })
}

fn admin(room: &str) -> String {
    common::admin(room)
}

fn move_req(identity: &str, from: &str, to: &str) -> proto::MoveParticipantRequest {
    proto::MoveParticipantRequest { room: from.into(), identity: identity.into(), destination_room: to.into() }
}

async fn listed(s: &TestServer, room: &str) -> Vec<(String, String)> {
    let list: proto::ListParticipantsResponse =
        s.proto("ListParticipants", &admin(room), &proto::ListParticipantsRequest { room: room.into() }).await.unwrap();
    let mut v: Vec<_> = list.participants.into_iter().map(|p| (p.identity, p.sid)).collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_moved_participant_keeps_its_socket_and_everyone_sees_it_change_rooms() {
    let s = TestServer::spawn("").await;
    let (mut in_a, _) = SignalClient::join(s.addr, &join_token("a", "watcher-a")).await;
    let (mut in_b, jb) = SignalClient::join(s.addr, &join_token("b", "watcher-b")).await;
    let (mut mover_c, j) = SignalClient::join(s.addr, &join_token("a", "alice")).await;
    let sid = j.participant.unwrap().sid;
    let track = mover_c.publish("mic", TrackType::Audio, TrackSource::Microphone).await;
    in_a.recv_until("alice's track", |m| update_about(m, "alice").is_some_and(|p| !p.tracks.is_empty())).await;
    in_b.settle(200).await;
    mover_c.settle(200).await;

    let marks = (mover_c.seen.len(), in_a.seen.len(), in_b.seen.len());
    let _: proto::MoveParticipantResponse =
        s.proto("MoveParticipant", &mover("a", "b"), &move_req("alice", "a", "b")).await.unwrap();
    for c in [&mut mover_c, &mut in_a, &mut in_b] {
        c.settle(300).await;
    }
    // Exactly what each socket was told, in order (leaving out RoomUpdates, which only carry
    // the rooms' new counts): the mover one room_moved and nothing else (no leave, no
    // unpublished tracks); each room's observer one update about alice.
    let news = |c: &SignalClient, from: usize| -> Vec<Signal> {
        c.seen[from..].iter().filter(|m| !matches!(m, Signal::RoomUpdate(_))).cloned().collect()
    };
    let about_alice_only = |seen: &[Signal]| matches!(seen, [Signal::Update(u)] if u.participants.len() == 1 && u.participants[0].identity == "alice");
    let (to_mover, to_a, to_b) = (news(&mover_c, marks.0), news(&in_a, marks.1), news(&in_b, marks.2));
    assert!(matches!(&to_mover[..], [Signal::RoomMoved(_)]), "the mover got {to_mover:?}");
    assert!(about_alice_only(&to_a), "room a's observer got {to_a:?}");
    assert!(about_alice_only(&to_b), "room b's observer got {to_b:?}");

    // The mover: room_moved on the same socket.
    let Signal::RoomMoved(moved) = to_mover[0].clone() else { unreachable!() };
    let room = moved.room.unwrap();
    assert_eq!((room.name.as_str(), room.sid.as_str()), ("b", jb.room.unwrap().sid.as_str()));
    let me = moved.participant.unwrap();
    assert_eq!(me.sid, sid, "the sid survives the move");
    assert_eq!(me.tracks.iter().map(|t| t.sid.as_str()).collect::<Vec<_>>(), [track.sid.as_str()]);
    assert_eq!(moved.other_participants.iter().map(|p| p.identity.as_str()).collect::<Vec<_>>(), ["watcher-b"]);
    let verifier = TokenVerifier::new(Keys::new([(common::KEY.to_string(), common::SECRET.to_string())]));
    let claims = verifier.verify(&moved.token, usher::clock::SystemClock.now_secs()).unwrap();
    let grant = claims.video.unwrap();
    assert_eq!((claims.identity.as_str(), grant.room.as_str(), grant.room_join), ("alice", "b", true));

    // Observers: the source sees it leave, the destination sees it arrive with its track.
    let left = update_about(&to_a[0], "alice").unwrap();
    assert_eq!((left.state, left.disconnect_reason), (State::Disconnected as i32, DisconnectReason::Migration as i32));
    let arrived = update_about(&to_b[0], "alice").unwrap();
    assert_eq!((arrived.sid.as_str(), arrived.tracks.len()), (sid.as_str(), 1));

    // The API agrees; RPCs and the client's own requests now address room b.
    assert_eq!(listed(&s, "a").await.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(), ["watcher-a"]);
    assert_eq!(
        listed(&s, "b").await,
        [("alice".to_string(), sid.clone()), ("watcher-b".to_string(), jb.participant.unwrap().sid)]
    );
    let mut req = proto::UpdateParticipantRequest { room: "b".into(), identity: "alice".into(), ..Default::default() };
    req.metadata = "in b".into();
    let _: proto::ParticipantInfo = s.proto("UpdateParticipant", &admin("b"), &req).await.unwrap();
    mover_c.recv_until("own update in b", |m| update_about(m, "alice").is_some_and(|p| p.metadata == "in b")).await;
    in_b.recv_until("b sees the update", |m| update_about(m, "alice").is_some_and(|p| p.metadata == "in b")).await;
    mover_c.send(Req::Mute(proto::MuteTrackRequest { sid: track.sid.clone(), muted: true })).await;
    in_b.recv_until("b sees the mute", |m| {
        update_about(m, "alice").is_some_and(|p| p.tracks.first().is_some_and(|t| t.muted))
    })
    .await;
    let gone = s
        .proto::<_, proto::ParticipantInfo>(
            "GetParticipant",
            &admin("a"),
            &proto::RoomParticipantIdentity { room: "a".into(), identity: "alice".into(), ..Default::default() },
        )
        .await
        .unwrap_err();
    gone.assert_twirp(404, "not_found", "twirp error unknown: participant does not exist");
    in_a.settle(300).await;
    assert!(
        !in_a.seen.iter().any(|m| update_about(m, "alice").is_some_and(|p| p.metadata == "in b")),
        "room a hears nothing more of alice"
    );

    // Leaving from room b ends it there.
    mover_c
        .send(Req::Leave(proto::LeaveRequest {
            reason: DisconnectReason::ClientInitiated as i32,
            ..Default::default()
        }))
        .await;
    in_b.recv_until("alice left b", |m| {
        update_about(m, "alice").is_some_and(|p| p.state == State::Disconnected as i32)
    })
    .await;
    assert_eq!(listed(&s, "b").await.len(), 1);
    s.stop().await;
}

#[tokio::test]
async fn refused_moves_change_nothing() {
    let s = TestServer::spawn("").await;
    let (mut alice, _) = SignalClient::join(s.addr, &join_token("a", "alice")).await;
    let (mut in_b1, _) = SignalClient::join(s.addr, &join_token("b", "alice-twin")).await;
    let (mut in_b2, _) = SignalClient::join(s.addr, &join_token("b", "alice2")).await;
    // An old client that cannot follow a move.
    let old = SignalClient::connect(s.addr, &join_token("a", "old"), "&protocol=15").await.unwrap();
    for c in [&mut alice, &mut in_b1, &mut in_b2] {
        c.settle(200).await;
    }
    let before = (listed(&s, "a").await, listed(&s, "b").await);

    let cases: Vec<(proto::MoveParticipantRequest, String, u16, &str, &str)> = vec![
        (
            move_req("alice", "a", "a"),
            mover("a", "a"),
            400,
            "invalid_argument",
            "destination room cannot be the same as source room ",
        ),
        (
            move_req("nobody", "a", "b"),
            mover("a", "b"),
            404,
            "not_found",
            "twirp error unknown: participant does not exist",
        ),
        (
            move_req("alice", "zz", "b"),
            mover("zz", "b"),
            404,
            "not_found",
            "twirp error unknown: participant does not exist",
        ),
        (move_req("alice", "a", "b"), mover("a", "c"), 401, "unauthenticated", "permissions denied"),
    ];
    for (req, tok, status, code, msg) in cases {
        let e = s.proto::<_, proto::MoveParticipantResponse>("MoveParticipant", &tok, &req).await.unwrap_err();
        e.assert_twirp(status, code, msg);
    }
    // Nobody in either room heard anything, and both rooms are as they were.
    for c in [&mut alice, &mut in_b1, &mut in_b2] {
        c.assert_quiet(300).await;
    }
    assert_eq!((listed(&s, "a").await, listed(&s, "b").await), before);
    drop(old);
    // The identity is already in the destination.
    let (_, _) = SignalClient::join(s.addr, &join_token("b", "alice")).await;
    let e = s
        .proto::<_, proto::MoveParticipantResponse>("MoveParticipant", &mover("a", "b"), &move_req("alice", "a", "b"))
        .await;
    assert_eq!(e.unwrap_err().twirp().0, "already_exists");
    alice.assert_quiet(300).await;
    assert!(listed(&s, "a").await.iter().any(|p| p.0 == "alice"));
    s.stop().await;
}

#[tokio::test]
async fn a_client_too_old_to_follow_is_refused_with_failed_precondition() {
    let s = TestServer::spawn("").await;
    let mut old = SignalClient::connect(s.addr, &join_token("a", "old"), "&protocol=15").await.unwrap();
    assert!(matches!(old.recv().await, Some(Signal::Join(_))));
    let e = s
        .proto::<_, proto::MoveParticipantResponse>("MoveParticipant", &mover("a", "b"), &move_req("old", "a", "b"))
        .await;
    e.unwrap_err().assert_twirp(
        412,
        "failed_precondition",
        "twirp error unknown: participant client version does not support moving",
    );
    assert_eq!(listed(&s, "a").await.len(), 1);
    s.stop().await;
}

// Two workers, so the racing requests really run at the same time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_moves_and_leaves_end_consistent() {
    let s = TestServer::spawn("").await;
    for round in 0..10 {
        let src = format!("src{round}");
        let (mut c, _) = SignalClient::join(s.addr, &join_token(&src, "racer")).await;
        // Two moves of the same participant at once: exactly one wins.
        let (t1, t2) = (mover(&src, "d1"), mover(&src, "d2"));
        let (q1, q2) = (move_req("racer", &src, "d1"), move_req("racer", &src, "d2"));
        let (r1, r2) = tokio::join!(
            s.proto::<_, proto::MoveParticipantResponse>("MoveParticipant", &t1, &q1),
            s.proto::<_, proto::MoveParticipantResponse>("MoveParticipant", &t2, &q2),
        );
        assert!(r1.is_ok() ^ r2.is_ok(), "round {round}: exactly one move wins");
        let winner = if r1.is_ok() { "d1" } else { "d2" };
        let loser = if r1.is_ok() { r2 } else { r1 };
        assert_eq!(loser.unwrap_err().twirp().0, "not_found");
        let Signal::RoomMoved(m) = c.recv_until("moved", |m| matches!(m, Signal::RoomMoved(_))).await else {
            unreachable!()
        };
        assert_eq!(m.room.unwrap().name, winner);
        // Then a move racing the client's own leave: the participant ends in no room.
        let (t3, q3) = (mover(winner, "d3"), move_req("racer", winner, "d3"));
        let bye = proto::LeaveRequest { reason: DisconnectReason::ClientInitiated as i32, ..Default::default() };
        let (_, moved) = tokio::join!(
            c.send(Req::Leave(bye)),
            s.proto::<_, proto::MoveParticipantResponse>("MoveParticipant", &t3, &q3),
        );
        // Either the move came first (and the leave then took it out of d3), or the leave did
        // and the move is told plainly why it could not be done.
        if let Err(e) = moved {
            let code = e.twirp().0;
            assert!(["not_found", "failed_precondition"].contains(&code.as_str()), "round {round}: {code}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        for room in [src.as_str(), "d1", "d2", "d3"] {
            assert!(
                !listed(&s, room).await.iter().any(|p| p.0 == "racer"),
                "round {round}: racer left, yet listed in {room}"
            );
        }
    }
    s.stop().await;
}

// Two workers, so the racing requests really run at the same time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_into_a_room_being_deleted_ends_consistent() {
    let s = TestServer::spawn("").await;
    for round in 0..10 {
        let src = format!("from{round}");
        let dst = format!("to{round}");
        let (mut c, _) = SignalClient::join(s.addr, &join_token(&src, "mover")).await;
        let _: proto::Room = s
            .proto(
                "CreateRoom",
                &common::create_list(),
                &proto::CreateRoomRequest { name: dst.clone(), ..Default::default() },
            )
            .await
            .unwrap();
        let (tok, req) = (mover(&src, &dst), move_req("mover", &src, &dst));
        let (deleter, del) = (common::create_list(), proto::DeleteRoomRequest { room: dst.clone() });
        let (moved, _deleted) = tokio::join!(
            s.proto::<_, proto::MoveParticipantResponse>("MoveParticipant", &tok, &req),
            s.proto::<_, proto::DeleteRoomResponse>("DeleteRoom", &deleter, &del),
        );
        let in_src = listed(&s, &src).await.iter().any(|p| p.0 == "mover");
        let in_dst = listed(&s, &dst).await.iter().any(|p| p.0 == "mover");
        match moved {
            // Moved: it is in exactly one room; if the deletion came after, it got the leave.
            Ok(_) => {
                assert!(!in_src, "round {round}: moved, yet still in the source");
                let m = c.recv_until("moved", |m| matches!(m, Signal::RoomMoved(_))).await;
                assert!(matches!(m, Signal::RoomMoved(_)));
                if !in_dst {
                    c.recv_until(
                        "deleted",
                        |m| matches!(m, Signal::Leave(l) if l.reason == DisconnectReason::RoomDeleted as i32),
                    )
                    .await;
                }
            }
            Err(e) => {
                assert!(in_src && !in_dst, "round {round}: refused ({e:?}), yet not where it was");
            }
        }
    }
    s.stop().await;
}
