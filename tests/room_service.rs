//! RoomService over Twirp, black-box: values, errors and grants, in both encodings.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;

use common::{TestServer, admin, create_list, token};
use usher::{auth::VideoGrant, proto};

fn create(name: &str) -> proto::CreateRoomRequest {
    proto::CreateRoomRequest { name: name.into(), ..Default::default() }
}

#[tokio::test]
async fn room_lifecycle_in_protobuf() {
    let s = TestServer::spawn("").await;
    let t = create_list();
    let before = usher::clock::Clock::now_secs(&usher::clock::SystemClock);
    let room: proto::Room = s
        .proto(
            "CreateRoom",
            &t,
            &proto::CreateRoomRequest {
                name: "lobby".into(),
                metadata: "{\"topic\":\"hi\"}".into(),
                max_participants: 12,
                empty_timeout: 60,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(room.sid.starts_with("RM_") && room.sid.len() == 15, "{}", room.sid);
    assert_eq!(room.name, "lobby");
    assert_eq!(room.metadata, "{\"topic\":\"hi\"}");
    assert_eq!((room.max_participants, room.empty_timeout, room.departure_timeout), (12, 60, 20));
    assert!(room.creation_time >= before && room.creation_time <= before + 5);
    assert_eq!(room.creation_time_ms / 1000, room.creation_time);
    assert_eq!((room.num_participants, room.num_publishers), (0, 0));

    // Creating again returns the live room unchanged, whatever the request says.
    let again: proto::Room = s
        .proto("CreateRoom", &t, &proto::CreateRoomRequest { metadata: "other".into(), ..create("lobby") })
        .await
        .unwrap();
    assert_eq!(again, room);

    let other: proto::Room = s.proto("CreateRoom", &t, &create("stage")).await.unwrap();
    assert_eq!(other.empty_timeout, 300, "config default");
    let all: proto::ListRoomsResponse = s.proto("ListRooms", &t, &proto::ListRoomsRequest::default()).await.unwrap();
    assert_eq!(all.rooms.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["lobby", "stage"]);
    let some: proto::ListRoomsResponse = s
        .proto("ListRooms", &t, &proto::ListRoomsRequest { names: vec!["stage".into(), "missing".into()] })
        .await
        .unwrap();
    assert_eq!(some.rooms, std::slice::from_ref(&other));

    let updated: proto::Room = s
        .proto(
            "UpdateRoomMetadata",
            &admin("lobby"),
            &proto::UpdateRoomMetadataRequest { room: "lobby".into(), metadata: "new".into() },
        )
        .await
        .unwrap();
    assert_eq!(updated.metadata, "new");
    assert_eq!(updated.sid, room.sid);
    // An empty string clears room metadata (unlike participant metadata), as LiveKit.
    let cleared: proto::Room = s
        .proto(
            "UpdateRoomMetadata",
            &admin("lobby"),
            &proto::UpdateRoomMetadataRequest { room: "lobby".into(), metadata: String::new() },
        )
        .await
        .unwrap();
    assert_eq!(cleared.metadata, "");

    let _: proto::DeleteRoomResponse =
        s.proto("DeleteRoom", &t, &proto::DeleteRoomRequest { room: "lobby".into() }).await.unwrap();
    let all: proto::ListRoomsResponse = s.proto("ListRooms", &t, &proto::ListRoomsRequest::default()).await.unwrap();
    assert_eq!(all.rooms, [other]);
    let err = s
        .proto::<_, proto::DeleteRoomResponse>("DeleteRoom", &t, &proto::DeleteRoomRequest { room: "lobby".into() })
        .await
        .unwrap_err();
    err.assert_twirp(404, "not_found", "twirp error unknown: requested room does not exist");

    // A deleted name can be created afresh, with a new sid.
    let reborn: proto::Room = s.proto("CreateRoom", &t, &create("lobby")).await.unwrap();
    assert_ne!(reborn.sid, room.sid);
    s.stop().await;
}

#[tokio::test]
async fn room_lifecycle_in_json() {
    let s = TestServer::spawn("room:\n  departure_timeout: 45\n").await;
    let t = create_list();
    // camelCase and snake_case input both work; unknown fields are ignored.
    let r = s
        .call_json("CreateRoom", Some(&t), r#"{"name":"j","maxParticipants":3,"empty_timeout":9,"future_field":[1]}"#)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["name"], "j");
    assert_eq!(v["max_participants"], 3);
    assert_eq!(v["empty_timeout"], 9);
    assert_eq!(v["departure_timeout"], 45, "room.departure_timeout from config");
    assert!(v["creation_time"].is_string(), "int64 as string: {v}");
    assert_eq!(v["num_participants"], 0, "defaults are emitted");
    assert_eq!(v["metadata"], "");
    assert_eq!(v["version"], serde_json::Value::Null);

    let r = s.call_json("ListRooms", Some(&t), r#"{"names":["j"]}"#).await;
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["rooms"][0]["name"], "j");

    let r = s.call_json("ListParticipants", Some(&admin("j")), r#"{"room":"j"}"#).await;
    assert_eq!(r.text(), r#"{"participants":[]}"#);
    s.stop().await;
}

#[tokio::test]
async fn participant_rpcs_answer_like_livekit_for_a_room_without_participants() {
    let s = TestServer::spawn("").await;
    let _: proto::Room = s.proto("CreateRoom", &create_list(), &create("r")).await.unwrap();
    let a = admin("r");
    let not_participant = "twirp error unknown: participant does not exist";

    // An unknown room lists no participants (200), as LiveKit's store answers.
    let list: proto::ListParticipantsResponse = s
        .proto("ListParticipants", &admin("nope"), &proto::ListParticipantsRequest { room: "nope".into() })
        .await
        .unwrap();
    assert!(list.participants.is_empty());

    let who = proto::RoomParticipantIdentity { room: "r".into(), identity: "ghost".into(), ..Default::default() };
    let e = s.proto::<_, proto::ParticipantInfo>("GetParticipant", &a, &who).await.unwrap_err();
    e.assert_twirp(404, "not_found", not_participant);
    let e = s.proto::<_, proto::RemoveParticipantResponse>("RemoveParticipant", &a, &who).await.unwrap_err();
    e.assert_twirp(404, "not_found", not_participant);
    let e = s
        .proto::<_, proto::ParticipantInfo>(
            "UpdateParticipant",
            &a,
            &proto::UpdateParticipantRequest { room: "r".into(), identity: "ghost".into(), ..Default::default() },
        )
        .await
        .unwrap_err();
    e.assert_twirp(404, "not_found", not_participant);
    let mute = proto::MuteRoomTrackRequest {
        room: "r".into(),
        identity: "ghost".into(),
        track_sid: "TR_x".into(),
        muted: true,
    };
    let e = s.proto::<_, proto::MuteRoomTrackResponse>("MutePublishedTrack", &a, &mute).await.unwrap_err();
    e.assert_twirp(404, "not_found", not_participant);
    let sub = proto::UpdateSubscriptionsRequest { room: "r".into(), identity: "ghost".into(), ..Default::default() };
    let e = s.proto::<_, proto::UpdateSubscriptionsResponse>("UpdateSubscriptions", &a, &sub).await.unwrap_err();
    e.assert_twirp(404, "not_found", not_participant);
    let rpc = proto::PerformRpcRequest { room: "r".into(), destination_identity: "ghost".into(), ..Default::default() };
    let e = s.proto::<_, proto::PerformRpcResponse>("PerformRpc", &a, &rpc).await.unwrap_err();
    e.assert_twirp(404, "not_found", not_participant);

    // Room-level lookups of an unknown room.
    let mute_elsewhere = proto::MuteRoomTrackRequest { room: "gone".into(), ..mute.clone() };
    let e = s
        .proto::<_, proto::MuteRoomTrackResponse>("MutePublishedTrack", &admin("gone"), &mute_elsewhere)
        .await
        .unwrap_err();
    e.assert_twirp(404, "not_found", "twirp error unknown: requested room does not exist");
    let e = s
        .proto::<_, proto::Room>(
            "UpdateRoomMetadata",
            &admin("gone"),
            &proto::UpdateRoomMetadataRequest { room: "gone".into(), metadata: "x".into() },
        )
        .await
        .unwrap_err();
    e.assert_twirp(404, "not_found", "twirp error unknown: requested room does not exist");

    // SendData validates its nonce, then says plainly that data channels are not served yet.
    let bad_nonce = proto::SendDataRequest { room: "r".into(), nonce: vec![1, 2, 3], ..Default::default() };
    let e = s.proto::<_, proto::SendDataResponse>("SendData", &a, &bad_nonce).await.unwrap_err();
    e.assert_twirp(400, "invalid_argument", "nonce should be 16-bytes or not present, got: 3 bytes");
    let data =
        proto::SendDataRequest { room: "r".into(), data: b"hi".to_vec(), nonce: vec![7; 16], ..Default::default() };
    let e = s.proto::<_, proto::SendDataResponse>("SendData", &a, &data).await.unwrap_err();
    assert_eq!(e.status, 501);
    assert_eq!(e.twirp().0, "unimplemented");
    s.stop().await;
}

#[tokio::test]
async fn validation_errors_match_livekit_texts() {
    let s = TestServer::spawn("limit:\n  max_metadata_size: 10\n  max_room_name_length: 5\n").await;
    let t = create_list();
    let e = s.proto::<_, proto::Room>("CreateRoom", &t, &create("toolong")).await.unwrap_err();
    e.assert_twirp(400, "invalid_argument", "twirp error unknown: room name length exceeds limits: max length 5");
    let big = proto::CreateRoomRequest { metadata: "x".repeat(11), ..create("ok") };
    let e = s.proto::<_, proto::Room>("CreateRoom", &t, &big).await.unwrap_err();
    e.assert_twirp(400, "invalid_argument", "metadata size exceeds limits 10");
    let v: serde_json::Value = serde_json::from_slice(&e.body).unwrap();
    assert_eq!(v["meta"]["argument"], "metadata size exceeds limits");
    // Exactly at the limit is fine; empty names are accepted, as LiveKit.
    let _: proto::Room = s
        .proto("CreateRoom", &t, &proto::CreateRoomRequest { metadata: "x".repeat(10), ..create("ok") })
        .await
        .unwrap();
    let _: proto::Room = s.proto("CreateRoom", &t, &create("")).await.unwrap();

    // Metadata size is checked before the grant (LiveKit's order), so even no token gets 400.
    let r =
        s.call_json("UpdateRoomMetadata", None, &format!(r#"{{"room":"ok","metadata":"{}"}}"#, "y".repeat(11))).await;
    r.assert_twirp(400, "invalid_argument", "metadata size exceeds limits 10");
    let r = s
        .call_json(
            "UpdateParticipant",
            None,
            &format!(r#"{{"room":"ok","identity":"a","name":"{}"}}"#, "n".repeat(300)),
        )
        .await;
    r.assert_twirp(400, "invalid_argument", "name length exceeds limits 256");
    let r = s
        .call_json(
            "UpdateParticipant",
            None,
            &format!(r#"{{"room":"ok","identity":"a","metadata":"{}"}}"#, "m".repeat(11)),
        )
        .await;
    r.assert_twirp(400, "invalid_argument", "metadata size exceeds limits 10");
    // Attribute size counts keys and values of the request (default limit 65536).
    let big = format!(r#"{{"room":"ok","identity":"a","attributes":{{"k":"{}"}}}}"#, "v".repeat(65_536));
    let r = s.call_json("UpdateParticipant", None, &big).await;
    r.assert_twirp(400, "invalid_argument", "attribute size exceeds limits 65536");
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["meta"]["argument"], "attribute size exceeds limits");

    let e = s
        .proto::<_, proto::Room>(
            "CreateRoom",
            &t,
            &proto::CreateRoomRequest { room_preset: "p".into(), ..create("ok2") },
        )
        .await
        .unwrap_err();
    e.assert_twirp(400, "invalid_argument", "twirp error unknown: unknown room configuration in create room request");
    let egress = proto::CreateRoomRequest { egress: Some(proto::RoomEgress::default()), ..create("ok3") };
    let e = s.proto::<_, proto::Room>("CreateRoom", &t, &egress).await.unwrap_err();
    assert_eq!((e.status.as_u16(), e.twirp().0.as_str()), (500, "internal"));

    // Move/Forward: same room is refused with LiveKit's text (note its trailing space).
    let tok =
        token(VideoGrant { room_admin: true, room: "ok".into(), destination_room: "ok".into(), ..Default::default() });
    let same = proto::MoveParticipantRequest { room: "ok".into(), identity: "a".into(), destination_room: "ok".into() };
    let e = s.proto::<_, proto::MoveParticipantResponse>("MoveParticipant", &tok, &same).await.unwrap_err();
    e.assert_twirp(400, "invalid_argument", "destination room cannot be the same as source room ");
    let rpc = proto::PerformRpcRequest { room: "ok".into(), ..Default::default() };
    let e = s.proto::<_, proto::PerformRpcResponse>("PerformRpc", &admin("ok"), &rpc).await.unwrap_err();
    e.assert_twirp(400, "invalid_argument", "twirp error unknown: destination identity is required");
    // None of the refused creates left a room behind.
    let names: Vec<_> = s.app().registry.list_rooms(&[]).iter().map(|r| r.proto.name.clone()).collect();
    assert_eq!(names, ["", "ok"]);
    s.stop().await;
}

/// Every RPC, called with tokens that lack its grant, answers 401 `permissions denied`.
#[tokio::test]
async fn every_rpc_checks_its_grant() {
    let s = TestServer::spawn("").await;
    let _: proto::Room = s.proto("CreateRoom", &create_list(), &create("a")).await.unwrap();
    let join_only = token(VideoGrant { room_join: true, room: "a".into(), ..Default::default() });
    let other_room_admin = admin("b");
    let admin_a = admin("a");
    let create_only = token(VideoGrant { room_create: true, ..Default::default() });
    let list_only = token(VideoGrant { room_list: true, ..Default::default() });
    let wrong_dest =
        token(VideoGrant { room_admin: true, room: "a".into(), destination_room: "x".into(), ..Default::default() });

    let room_a = r#"{"room":"a","identity":"p","destination_room":"c","destination_identity":"p"}"#;
    // (method, body, tokens that must be refused)
    let cases: &[(&str, &str, Vec<Option<&str>>)] = &[
        ("CreateRoom", r#"{"name":"z"}"#, vec![None, Some(&join_only), Some(&list_only), Some(&other_room_admin)]),
        ("DeleteRoom", r#"{"room":"a"}"#, vec![None, Some(&join_only), Some(&list_only), Some(&admin_a)]),
        ("ListRooms", "{}", vec![None, Some(&join_only), Some(&create_only), Some(&admin_a)]),
        ("ListParticipants", room_a, vec![None, Some(&join_only), Some(&other_room_admin), Some(&create_only)]),
        ("GetParticipant", room_a, vec![None, Some(&join_only), Some(&other_room_admin)]),
        ("RemoveParticipant", room_a, vec![None, Some(&join_only), Some(&other_room_admin)]),
        ("MutePublishedTrack", room_a, vec![None, Some(&join_only), Some(&other_room_admin)]),
        ("UpdateParticipant", room_a, vec![None, Some(&join_only), Some(&other_room_admin)]),
        ("UpdateSubscriptions", room_a, vec![None, Some(&join_only), Some(&other_room_admin)]),
        ("SendData", room_a, vec![None, Some(&join_only), Some(&other_room_admin)]),
        ("UpdateRoomMetadata", room_a, vec![None, Some(&join_only), Some(&other_room_admin), Some(&create_only)]),
        ("PerformRpc", room_a, vec![None, Some(&join_only), Some(&other_room_admin)]),
        ("ForwardParticipant", room_a, vec![None, Some(&admin_a), Some(&wrong_dest)]),
        ("MoveParticipant", room_a, vec![None, Some(&admin_a), Some(&wrong_dest)]),
    ];
    assert_eq!(cases.len(), usher::twirp::room_service::METHODS.len());
    for (method, body, tokens) in cases {
        for t in tokens {
            let r = s.call_json(method, *t, body).await;
            assert_eq!(r.status, 401, "{method} with {t:?}: {}", r.text());
            assert_eq!(r.twirp(), ("unauthenticated".into(), "permissions denied".into()), "{method}");
        }
    }
    // Nothing changed.
    assert_eq!(s.app().registry.list_rooms(&[]).len(), 1);

    // And the smallest sufficient token gets past the check (whatever the RPC answers next).
    let dest_c =
        token(VideoGrant { room_admin: true, room: "a".into(), destination_room: "c".into(), ..Default::default() });
    let allowed: &[(&str, &str, &str)] = &[
        ("CreateRoom", r#"{"name":"z"}"#, &create_only),
        ("DeleteRoom", r#"{"room":"z"}"#, &create_only),
        ("ListRooms", "{}", &list_only),
        ("ListParticipants", room_a, &admin_a),
        ("GetParticipant", room_a, &admin_a),
        ("RemoveParticipant", room_a, &admin_a),
        ("MutePublishedTrack", room_a, &admin_a),
        ("UpdateParticipant", room_a, &admin_a),
        ("UpdateSubscriptions", room_a, &admin_a),
        ("SendData", room_a, &admin_a),
        ("UpdateRoomMetadata", room_a, &admin_a),
        ("PerformRpc", room_a, &admin_a),
        ("ForwardParticipant", room_a, &dest_c),
        ("MoveParticipant", room_a, &dest_c),
    ];
    assert_eq!(allowed.len(), usher::twirp::room_service::METHODS.len());
    for (method, body, t) in allowed {
        let r = s.call_json(method, Some(t), body).await;
        assert_ne!(r.status, 401, "{method} refused a sufficient token: {}", r.text());
    }
    s.stop().await;
}
