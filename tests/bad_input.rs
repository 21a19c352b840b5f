//! Bad input gets the right error, the server keeps serving, and nothing else changes.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;

use common::{TestServer, admin, create_list, token_with};
use usher::{auth::VideoGrant, proto};

const CREATE: &str = "/twirp/livekit.RoomService/CreateRoom";

/// A room created up front must be untouched after every bad request.
async fn with_witness(s: &TestServer) -> proto::Room {
    let req = proto::CreateRoomRequest { name: "witness".into(), metadata: "keep".into(), ..Default::default() };
    s.proto("CreateRoom", &create_list(), &req).await.unwrap()
}

async fn assert_unchanged(s: &TestServer, witness: &proto::Room) {
    let rooms: proto::ListRoomsResponse =
        s.proto("ListRooms", &create_list(), &proto::ListRoomsRequest::default()).await.expect("still serving");
    assert_eq!(rooms.rooms, std::slice::from_ref(witness));
}

#[tokio::test]
async fn undecodable_bodies_are_malformed() {
    let s = TestServer::spawn("").await;
    let w = with_witness(&s).await;
    let t = create_list();
    // Truncated protobuf: field 1 claims 16 bytes, 2 follow.
    let r = s.raw("CreateRoom", Some(&t), "application/protobuf", b"\x0a\x10ab".to_vec()).await;
    r.assert_twirp(400, "malformed", "the protobuf request could not be decoded");
    // Wrong wire type for a known field.
    let r = s.raw("CreateRoom", Some(&t), "application/protobuf", b"\x0d\x00".to_vec()).await;
    r.assert_twirp(400, "malformed", "the protobuf request could not be decoded");
    for body in ["", "{", "not json", "[]", r#"{"name": 12}"#, r#"{"empty_timeout": -1}"#, "\u{0}"] {
        let r = s.call_json("CreateRoom", Some(&t), body).await;
        r.assert_twirp(400, "malformed", "the json request could not be decoded");
    }
    // Unknown enum names are malformed too, not a crash.
    let r = s.call_json("SendData", Some(&admin("witness")), r#"{"room":"witness","kind":"SIDEWAYS"}"#).await;
    r.assert_twirp(400, "malformed", "the json request could not be decoded");
    assert_unchanged(&s, &w).await;
    s.stop().await;
}

#[tokio::test]
async fn oversized_bodies_are_refused_before_decoding() {
    let s = TestServer::spawn("").await;
    let w = with_witness(&s).await;
    let t = create_list();
    // 20 MB with a declared length: 413 plain text, as LiveKit's limiter.
    let r = s.raw("CreateRoom", Some(&t), "application/protobuf", vec![0x0a; 20 << 20]).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.text(), "request body too large");

    // Same size streamed without a length: caught while reading → malformed.
    let chunks = (0..20).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1 << 20]));
    let resp = s
        .http
        .post(format!("{}{CREATE}", s.url()))
        .header("content-type", "application/json")
        .bearer_auth(&t)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    let r = common::Reply::from(resp).await;
    r.assert_twirp(400, "malformed", "the json request could not be decoded");
    assert_unchanged(&s, &w).await;
    s.stop().await;
}

#[tokio::test]
async fn body_limit_follows_config() {
    let s = TestServer::spawn("limit:\n  max_api_request_body_size: 64\n").await;
    let t = create_list();
    let r = s.call_json("CreateRoom", Some(&t), &format!(r#"{{"name":"{}"}}"#, "x".repeat(80))).await;
    assert_eq!(r.status, 413);
    let r = s.call_json("CreateRoom", Some(&t), r#"{"name":"small"}"#).await;
    assert_eq!(r.status, 200);
    s.stop().await;

    // 0 means unlimited, as LiveKit.
    let s = TestServer::spawn("limit:\n  max_api_request_body_size: 0\n").await;
    let r =
        s.call_json("CreateRoom", Some(&t), &format!(r#"{{"name":"big","metadata":"{}"}}"#, "x".repeat(300_000))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    s.stop().await;
}

#[tokio::test]
async fn empty_tokens_count_as_no_token() {
    // LiveKit skips empty values, so the RPC's own grant check answers (Twirp JSON), not the
    // token layer (plain text).
    let s = TestServer::spawn("").await;
    let url = format!("{}{CREATE}?access_token=", s.url());
    let resp = s.http.post(url).header("content-type", "application/json").body("{}").send().await.unwrap();
    common::Reply::from(resp).await.assert_twirp(401, "unauthenticated", "permissions denied");
    let resp = s
        .http
        .post(format!("{}{CREATE}", s.url()))
        .header("content-type", "application/json")
        .header("authorization", "")
        .body("{}")
        .send()
        .await
        .unwrap();
    common::Reply::from(resp).await.assert_twirp(401, "unauthenticated", "permissions denied");
    s.stop().await;
}

#[tokio::test]
async fn wrong_routes_and_content_types_are_bad_route() {
    let s = TestServer::spawn("").await;
    let w = with_witness(&s).await;
    let t = create_list();
    let r = s.raw("CreateRoom", Some(&t), "text/plain", b"{}".to_vec()).await;
    r.assert_twirp(404, "bad_route", "unexpected Content-Type: \"text/plain\"");
    let r = s.raw("CreateRoom", Some(&t), "", b"{}".to_vec()).await;
    r.assert_twirp(404, "bad_route", "unexpected Content-Type: \"\"");
    // Parameters are fine.
    let r = s.raw("ListRooms", Some(&t), "application/json; charset=UTF-8", b"{}".to_vec()).await;
    assert_eq!(r.status, 200);

    let r = s.call_json("NoSuchMethod", Some(&t), "{}").await;
    r.assert_twirp(404, "bad_route", "no handler for path \"/twirp/livekit.RoomService/NoSuchMethod\"");
    let resp = s
        .http
        .post(format!("{}/twirp/livekit.Egress/ListEgress", s.url()))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    let r = common::Reply::from(resp).await;
    assert_eq!(r.twirp().0, "bad_route");
    let resp = s.http.get(format!("{}{CREATE}", s.url())).send().await.unwrap();
    let r = common::Reply::from(resp).await;
    r.assert_twirp(404, "bad_route", "unsupported method \"GET\" (only POST is allowed)");
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["meta"]["twirp_invalid_route"], format!("GET {CREATE}"));
    assert_unchanged(&s, &w).await;
    s.stop().await;
}

#[tokio::test]
async fn bad_tokens_get_livekits_plain_401() {
    let s = TestServer::spawn("").await;
    let w = with_witness(&s).await;
    let all = VideoGrant { room_create: true, room_list: true, ..Default::default() };
    let cases = [
        (Some("garbage".to_string()), "invalid authorization token"),
        (Some("a.b.c".to_string()), "invalid authorization token"),
        (Some(token_with("unknown-key", common::SECRET, all.clone(), 600)), "invalid API key"),
        (
            Some(token_with(common::KEY, "wrong-secret", all.clone(), 600)),
            "invalid authorization token: token signature is invalid: signature is invalid",
        ),
        // Expired by more than the 60 s leeway.
        (
            Some(token_with(common::KEY, common::SECRET, all.clone(), -120)),
            "invalid authorization token: token has invalid claims: token is expired",
        ),
    ];
    for (tok, text) in cases {
        let r = s.call_json("CreateRoom", tok.as_deref(), r#"{"name":"evil"}"#).await;
        assert_eq!(r.status, 401, "{text}");
        assert_eq!(r.text(), text);
        assert!(r.content_type().starts_with("text/plain"), "{}", r.content_type());
    }
    // Within the leeway is still fine.
    let recent = token_with(common::KEY, common::SECRET, all, -30);
    let r = s.call_json("ListRooms", Some(&recent), "{}").await;
    assert_eq!(r.status, 200);
    // Not "Bearer ".
    let resp = s
        .http
        .post(format!("{}{CREATE}", s.url()))
        .header("content-type", "application/json")
        .header("authorization", format!("bearer {}", create_list()))
        .body(r#"{"name":"evil"}"#)
        .send()
        .await
        .unwrap();
    let r = common::Reply::from(resp).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.text(), "invalid authorization header. Must start with Bearer ");
    assert_unchanged(&s, &w).await;
    s.stop().await;
}

#[tokio::test]
async fn many_bad_requests_in_parallel_leave_the_server_serving() {
    let s = std::sync::Arc::new(TestServer::spawn("").await);
    let w = with_witness(&s).await;
    let mut tasks = Vec::new();
    for i in 0..64u8 {
        let s = std::sync::Arc::clone(&s);
        tasks.push(tokio::spawn(async move {
            let t = create_list();
            let body: Vec<u8> = (0..200).map(|j| i.wrapping_mul(31).wrapping_add(j)).collect();
            let r = s.raw("CreateRoom", Some(&t), "application/protobuf", body).await;
            assert!(matches!(r.status.as_u16(), 200 | 400), "{}", r.status);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Random bytes may decode into a valid request and create a room; the witness is intact.
    let rooms: proto::ListRoomsResponse =
        s.proto("ListRooms", &create_list(), &proto::ListRoomsRequest { names: vec!["witness".into()] }).await.unwrap();
    assert_eq!(rooms.rooms, [w]);
    std::sync::Arc::into_inner(s).expect("all tasks done").stop().await;
}
