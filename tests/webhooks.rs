//! Webhooks, black-box: a real HTTP receiver in the test checks every delivery's signature
//! and the sequence of events of a scenario; failing and hanging receivers.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, routing::post};
use base64::Engine as _;
use common::{TestServer, admin, join_token, signal::SignalClient};
use sha2::Digest as _;
use usher::{
    auth::TokenVerifier,
    clock::Clock as _,
    config::Keys,
    proto::{self, TrackSource, TrackType},
};

/// What the receiver got, in arrival order.
#[derive(Default)]
struct Received {
    events: parking_lot::Mutex<Vec<serde_json::Value>>,
    /// Answer 503 to this many requests first.
    fail_first: AtomicUsize,
    /// Never answer (a hung receiver).
    hang: bool,
    /// Never answer this many requests first.
    hang_first: AtomicUsize,
    /// Never answer events about this room (the others are answered).
    hang_room: Option<&'static str>,
    /// Take this long to answer each request.
    delay: Duration,
    attempts: AtomicUsize,
}

async fn receive(State(r): State<Arc<Received>>, headers: HeaderMap, body: Bytes) -> axum::http::StatusCode {
    r.attempts.fetch_add(1, Ordering::SeqCst);
    let about_hung_room = r.hang_room.is_some_and(|room| {
        serde_json::from_slice::<serde_json::Value>(&body).is_ok_and(|e| e["room"]["name"] == room)
    });
    let hang_this = r.hang_first.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
    if r.hang || about_hung_room || hang_this {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    tokio::time::sleep(r.delay).await;
    if r.fail_first.load(Ordering::SeqCst) > 0 {
        r.fail_first.fetch_sub(1, Ordering::SeqCst);
        return axum::http::StatusCode::SERVICE_UNAVAILABLE;
    }
    // Verify as LiveKit's receivers do: the JWT (no "Bearer "), then the body's hash.
    assert_eq!(headers["content-type"], "application/webhook+json");
    assert_eq!(headers["user-agent"], "LiveKit", "as LiveKit's notifier");
    let token = headers["authorization"].to_str().unwrap();
    let verifier = TokenVerifier::new(Keys::new([(common::KEY.to_string(), common::SECRET.to_string())]));
    let claims = verifier.verify(token, usher::clock::SystemClock.now_secs()).expect("signed with the webhook key");
    let sha = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&body));
    assert_eq!(claims.sha256, sha, "the token carries the body's hash");
    r.events.lock().push(serde_json::from_slice(&body).unwrap());
    axum::http::StatusCode::OK
}

async fn receiver(r: Arc<Received>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/hook", post(receive)).with_state(r);
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn config(addr: SocketAddr, extra: &str) -> String {
    format!(
        "keys:\n  {k}: {s}\nwebhook:\n  api_key: {k}\n  urls: ['http://{addr}/hook']\n{extra}room:\n  departure_timeout: 1\n",
        k = common::KEY,
        s = common::SECRET
    )
}

async fn wait_for(r: &Received, n: usize) -> Vec<serde_json::Value> {
    for _ in 0..200 {
        if r.events.lock().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    r.events.lock().clone()
}

fn names(events: &[serde_json::Value]) -> Vec<String> {
    events.iter().map(|e| e["event"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn a_rooms_life_arrives_in_order_each_event_once_and_signed() {
    let r = Arc::new(Received::default());
    let addr = receiver(Arc::clone(&r)).await;
    let extras = "  filter_params:\n    include_events: [room_started, room_finished, participant_joined, participant_left, \
                  track_published, track_unpublished, participant_updated]\n";
    let s = TestServer::spawn(&config(addr, extras)).await;
    let (mut alice, _) = SignalClient::join(s.addr, &join_token("life", "alice")).await;
    let mic = alice.publish("mic", TrackType::Audio, TrackSource::Microphone).await;
    let mut req =
        proto::UpdateParticipantRequest { room: "life".into(), identity: "alice".into(), ..Default::default() };
    req.metadata = "hand raised".into();
    let _: proto::ParticipantInfo = s.proto("UpdateParticipant", &admin("life"), &req).await.unwrap();
    let who = proto::RoomParticipantIdentity { room: "life".into(), identity: "alice".into(), ..Default::default() };
    let _: proto::RemoveParticipantResponse = s.proto("RemoveParticipant", &admin("life"), &who).await.unwrap();
    // The room empties and closes after its departure timeout (1 s).
    let events = wait_for(&r, 7).await;
    assert_eq!(
        names(&events),
        [
            "room_started",
            "participant_joined",
            "track_published",
            "participant_updated",
            "track_unpublished",
            "participant_left",
            "room_finished"
        ]
    );
    let ids: std::collections::BTreeSet<_> = events.iter().map(|e| e["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), 7, "each event once, each with its own id");
    assert!(ids.iter().all(|id| id.starts_with("EV_")));
    assert_eq!(events[1]["participant"]["identity"], "alice");
    assert_eq!(events[2]["track"]["sid"], mic.sid.as_str());
    assert_eq!(events[3]["participant"]["metadata"], "hand raised");
    assert_eq!(events[5]["participant"]["disconnectReason"], "PARTICIPANT_REMOVED");
    assert!(events.iter().all(|e| e["room"]["name"] == "life" && e["createdAt"].is_string()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(r.events.lock().len(), 7, "nothing more");
    s.stop().await;
}

#[tokio::test]
async fn extras_only_when_asked_for_and_filters_apply() {
    let r = Arc::new(Received::default());
    let addr = receiver(Arc::clone(&r)).await;
    let s = TestServer::spawn(&config(addr, "  filter_params:\n    exclude_events: [track_published]\n")).await;
    let (mut alice, _) = SignalClient::join(s.addr, &join_token("f", "alice")).await;
    alice.publish("mic", TrackType::Audio, TrackSource::Microphone).await;
    let mut req = proto::UpdateParticipantRequest { room: "f".into(), identity: "alice".into(), ..Default::default() };
    req.metadata = "m".into();
    let _: proto::ParticipantInfo = s.proto("UpdateParticipant", &admin("f"), &req).await.unwrap();
    let _: proto::Room = s
        .proto(
            "UpdateRoomMetadata",
            &admin("f"),
            &proto::UpdateRoomMetadataRequest { room: "f".into(), metadata: "x".into() },
        )
        .await
        .unwrap();
    let events = wait_for(&r, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(names(&r.events.lock()), ["room_started", "participant_joined"], "no extras, no excluded events");
    assert!(events.len() <= 2);
    s.stop().await;
}

#[tokio::test]
async fn a_failing_receiver_gets_everything_after_retries_in_order() {
    let r = Arc::new(Received { fail_first: AtomicUsize::new(3), ..Default::default() });
    let addr = receiver(Arc::clone(&r)).await;
    let s = TestServer::spawn(&config(addr, "")).await;
    let (_a, _) = SignalClient::join(s.addr, &join_token("retry", "a")).await;
    let (_b, _) = SignalClient::join(s.addr, &join_token("retry", "b")).await;
    let events = wait_for(&r, 3).await;
    assert_eq!(names(&events), ["room_started", "participant_joined", "participant_joined"]);
    assert_eq!(events[1]["participant"]["identity"], "a");
    assert_eq!(events[2]["participant"]["identity"], "b");
    assert!(r.attempts.load(Ordering::SeqCst) >= 6, "three failures, then three deliveries");
    let stats = s.app().webhooks.as_ref().unwrap().stats();
    assert_eq!((stats.delivered.load(Ordering::SeqCst), stats.lost()), (3, 0));
    s.stop().await;
}

#[tokio::test]
async fn a_hung_receiver_slows_nothing_and_drops_are_counted() {
    let r = Arc::new(Received { hang: true, ..Default::default() });
    let addr = receiver(Arc::clone(&r)).await;
    let s = TestServer::spawn(&config(addr, "  resource_url_notifier:\n    max_depth: 2\n")).await;
    let (mut c, _) = SignalClient::join(s.addr, &join_token("hung", "a")).await;
    // Plenty of events for one room while its receiver hangs: the room and the API go on.
    for i in 0..20 {
        c.publish(&format!("t{i}"), TrackType::Audio, TrackSource::Unknown).await;
    }
    let list: proto::ListParticipantsResponse = s
        .proto("ListParticipants", &admin("hung"), &proto::ListParticipantsRequest { room: "hung".into() })
        .await
        .unwrap();
    assert_eq!(list.participants[0].tracks.len(), 20);
    let app = Arc::clone(s.app());
    let stats = app.webhooks.as_ref().unwrap().stats();
    // room_started and participant_joined came first; then 20 track_published. One event is
    // being sent (hung), two wait; the rest were dropped and counted.
    let dropped = stats.dropped_full.load(Ordering::SeqCst);
    assert!(dropped >= 15, "{dropped}");
    s.stop().await;
    // Shutdown's grace ran out: what was still queued or being sent is counted once, as
    // dropped at shutdown, and nothing is left pending or also counted delivered.
    let at_shutdown = stats.dropped_shutdown.load(Ordering::SeqCst);
    assert!(at_shutdown >= 1, "the hung delivery and what waited behind it");
    assert_eq!(stats.pending.load(Ordering::SeqCst), 0);
    assert_eq!(stats.delivered.load(Ordering::SeqCst), 0);
    assert_eq!(stats.dropped_full.load(Ordering::SeqCst) + at_shutdown, stats.lost());
    // 2 + 20 events before the stop, 20 track_unpublished + participant_left + room_finished
    // at it: every one counted exactly once.
    assert_eq!(stats.lost(), 44);
}

#[tokio::test]
async fn a_hung_room_does_not_hold_up_other_rooms() {
    let r = Arc::new(Received { hang_room: Some("stuck"), ..Default::default() });
    let addr = receiver(Arc::clone(&r)).await;
    let s = TestServer::spawn(&config(addr, "")).await;
    let (_a, _) = SignalClient::join(s.addr, &join_token("stuck", "a")).await;
    let (_b, _) = SignalClient::join(s.addr, &join_token("free", "b")).await;
    let events = wait_for(&r, 2).await;
    assert_eq!(names(&events), ["room_started", "participant_joined"]);
    assert!(events.iter().all(|e| e["room"]["name"] == "free"), "{events:?}");
    // stuck's first event was sent and is still unanswered while free's two went through
    // (and nothing of stuck's was answered).
    for _ in 0..80 {
        if r.attempts.load(Ordering::SeqCst) >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(r.attempts.load(Ordering::SeqCst), 3, "stuck's room_started in flight, free's two answered");
    assert_eq!(r.events.lock().len(), 2);
    s.stop().await;
}

#[tokio::test]
async fn an_event_not_delivered_by_its_deadline_is_dropped_and_the_next_goes_on() {
    // The receiver never answers the first request; each event has 1 s (max_age) in all.
    let r = Arc::new(Received { hang_first: AtomicUsize::new(1), ..Default::default() });
    let addr = receiver(Arc::clone(&r)).await;
    let s = TestServer::spawn(&config(addr, "  resource_url_notifier:\n    max_age: 1s\n")).await;
    let _: proto::Room = s
        .proto(
            "CreateRoom",
            &common::create_list(),
            &proto::CreateRoomRequest { name: "late".into(), ..Default::default() },
        )
        .await
        .unwrap();
    // room_started's attempt hangs; without the deadline it alone would take 10 s (then
    // retries), and the join's event would wait behind it.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (_a, _) = SignalClient::join(s.addr, &join_token("late", "a")).await;
    let events = wait_for(&r, 1).await;
    assert_eq!(names(&events), ["participant_joined"], "room_started gave up at its deadline");
    let stats = s.app().webhooks.as_ref().unwrap().stats();
    assert_eq!(stats.dropped_expired.load(Ordering::SeqCst), 1);
    assert_eq!(stats.delivered.load(Ordering::SeqCst), 1);
    s.stop().await;
}

#[tokio::test]
async fn queued_events_are_delivered_during_shutdowns_grace() {
    // A slow receiver: 200 ms an event, so the room's last events are still queued at stop.
    let r = Arc::new(Received { delay: Duration::from_millis(200), ..Default::default() });
    let addr = receiver(Arc::clone(&r)).await;
    let s = TestServer::spawn(&config(addr, "")).await;
    let (_a, _) = SignalClient::join(s.addr, &join_token("grace", "a")).await;
    let (_b, _) = SignalClient::join(s.addr, &join_token("grace", "b")).await;
    let app = Arc::clone(s.app());
    s.stop().await;
    // The shutdown closed the room: both leave, then room_finished, all within the grace.
    let got = names(&r.events.lock());
    assert_eq!(
        got,
        [
            "room_started",
            "participant_joined",
            "participant_joined",
            "participant_left",
            "participant_left",
            "room_finished"
        ]
    );
    let stats = app.webhooks.as_ref().unwrap().stats();
    assert_eq!((stats.delivered.load(Ordering::SeqCst), stats.lost()), (6, 0));
}

#[tokio::test]
async fn included_extras_are_sent_and_include_wins_over_exclude() {
    let r = Arc::new(Received::default());
    let addr = receiver(Arc::clone(&r)).await;
    let filters = concat!(
        "  filter_params:\n",
        "    include_events: [room_started, room_metadata_changed]\n",
        "    exclude_events: [room_started]\n"
    );
    let s = TestServer::spawn(&config(addr, filters)).await;
    let _: proto::Room = s
        .proto(
            "CreateRoom",
            &common::create_list(),
            &proto::CreateRoomRequest { name: "x".into(), ..Default::default() },
        )
        .await
        .unwrap();
    let (_a, _) = SignalClient::join(s.addr, &join_token("x", "a")).await;
    let _: proto::Room = s
        .proto(
            "UpdateRoomMetadata",
            &admin("x"),
            &proto::UpdateRoomMetadataRequest { room: "x".into(), metadata: "agenda".into() },
        )
        .await
        .unwrap();
    let events = wait_for(&r, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(names(&r.events.lock()), ["room_started", "room_metadata_changed"], "joins are not included");
    assert_eq!(events[1]["room"]["metadata"], "agenda");
    s.stop().await;
}

#[tokio::test]
async fn a_room_recreated_under_the_same_name_starts_after_the_old_one_finished() {
    // A slow receiver: the old room's lane is still sending when the new room's events come,
    // so they can only come out in order if the new lane waits for the old one.
    let r = Arc::new(Received { delay: Duration::from_millis(150), ..Default::default() });
    let addr = receiver(Arc::clone(&r)).await;
    let s = TestServer::spawn(&config(addr, "")).await;
    let (_a, _) = SignalClient::join(s.addr, &join_token("again", "a")).await;
    let _: proto::DeleteRoomResponse = s
        .proto("DeleteRoom", &common::create_list(), &proto::DeleteRoomRequest { room: "again".into() })
        .await
        .unwrap();
    let (_b, _) = SignalClient::join(s.addr, &join_token("again", "b")).await;
    let events = wait_for(&r, 6).await;
    assert_eq!(
        names(&events),
        [
            "room_started",
            "participant_joined",
            "participant_left",
            "room_finished",
            "room_started",
            "participant_joined"
        ]
    );
    assert_eq!(events[2]["participant"]["disconnectReason"], "ROOM_DELETED");
    assert_ne!(events[0]["room"]["sid"], events[4]["room"]["sid"]);
    s.stop().await;
}
