//! Hot paths of the RoomService, each next to a baseline measured in the same run.
//!
//! Run: `cargo bench --bench hot_paths`. Figures go into BENCHMARKS.md as ratios
//! (Usher ÷ baseline), because this machine is shared and absolute times drift.
//!
//! * `token/verify` vs `token/hmac_only`: what our verification adds on top of the one
//!   HMAC-SHA256 that any JWT check must compute.
//! * `rpc/*/usher` vs `rpc/*/baseline`: one whole request through Usher's service (panic guard,
//!   trace span, CORS, body limit, auth, routing, decode, registry, encode), against a bare axum
//!   route that does the same JWT check and answers the same pre-encoded bytes.

use std::{hint::black_box, sync::Arc};

#[path = "support.rs"]
mod support;

use axum::{Router, body::Body, extract::Request, routing::post};
use criterion::{Criterion, criterion_group, criterion_main};
use http::{StatusCode, header};
use http_body_util::BodyExt as _;
use prost::Message as _;
use tower::ServiceExt as _;
use usher::{
    app::AppState,
    auth::{
        TokenVerifier, VideoGrant,
        mint::{TokenMinter, TokenSpec},
    },
    clock::{Clock as _, SystemClock},
    config::{self, Keys, Overrides},
    proto,
    rooms::CreateRequest,
};

const KEY: &str = "bench-key";
const SECRET: &str = "bench-secret-0123456789abcdef0123456789";

fn token(video: VideoGrant) -> String {
    let spec = TokenSpec {
        api_key: KEY.into(),
        identity: "bench".into(),
        video,
        now_secs: SystemClock.now_secs(),
        ttl_secs: 3600,
        ..Default::default()
    };
    TokenMinter::mint(&spec, SECRET).expect("mint")
}

fn keys() -> Keys {
    Keys::new([(KEY.to_string(), SECRET.to_string())])
}

fn bench_token(c: &mut Criterion) {
    let t = token(VideoGrant { room_admin: true, room: "r".into(), ..Default::default() });
    let verifier = TokenVerifier::new(keys());
    let now = SystemClock.now_secs();
    let mut g = c.benchmark_group("token");
    g.bench_function("verify", |b| b.iter(|| verifier.verify(black_box(&t), now).expect("valid")));
    // Baseline: only the HMAC over header.payload that every verification must do.
    let (signing_input, _) = t.rsplit_once('.').expect("three parts");
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()).expect("key");
    g.bench_function("hmac_only", |b| {
        b.iter(|| jsonwebtoken::crypto::sign(black_box(signing_input.as_bytes()), &key, jsonwebtoken::Algorithm::HS256))
    });
    g.finish();
}

fn app_with_rooms(n: usize) -> Arc<AppState> {
    let no_files = |_: &std::path::Path| Err(std::io::Error::other("none"));
    let cfg = config::load(
        &format!("keys:\n  {KEY}: {SECRET}\nlogging: {{level: error}}\n"),
        &Overrides::default(),
        &no_files,
    )
    .expect("config");
    let app = Arc::new(AppState::new(cfg, Arc::new(SystemClock)));
    for i in 0..n {
        app.registry.create_room(
            CreateRequest { name: usher::ids::RoomName::new(format!("room-{i:04}")), ..Default::default() },
            tokio::time::Instant::now(),
        );
    }
    app
}

/// A bare axum route: extract the bearer token, verify it, answer fixed bytes.
fn baseline(body: bytes::Bytes) -> Router {
    let verifier = Arc::new(TokenVerifier::new(keys()));
    Router::new().route(
        "/twirp/livekit.RoomService/{method}",
        post(move |req: Request| {
            let verifier = Arc::clone(&verifier);
            let body = body.clone();
            async move { support::baseline_rpc(&verifier, &req, body) }
        }),
    )
}

fn request(method: &str, token: &str, body: Vec<u8>) -> Request {
    http::Request::post(format!("/twirp/livekit.RoomService/{method}"))
        .header(header::CONTENT_TYPE, "application/protobuf")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::from(body))
        .expect("request")
}

async fn run(svc: Router, req: Request) -> usize {
    let resp = svc.oneshot(req).await.expect("infallible");
    assert_eq!(resp.status(), StatusCode::OK);
    resp.into_body().collect().await.expect("body").to_bytes().len()
}

fn bench_rpc(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let app = app_with_rooms(100);
    let usher_svc = usher::http::service(Arc::clone(&app));

    let cases: Vec<(&str, String, Vec<u8>)> = vec![
        (
            "ListRooms",
            token(VideoGrant { room_list: true, ..Default::default() }),
            proto::ListRoomsRequest::default().encode_to_vec(),
        ),
        (
            "ListRooms_names_1",
            token(VideoGrant { room_list: true, ..Default::default() }),
            proto::ListRoomsRequest { names: vec!["room-0042".into()] }.encode_to_vec(),
        ),
        (
            "UpdateRoomMetadata",
            token(VideoGrant { room_admin: true, room: "room-0007".into(), ..Default::default() }),
            proto::UpdateRoomMetadataRequest { room: "room-0007".into(), metadata: "m".into() }.encode_to_vec(),
        ),
    ];
    for (name, tok, body) in cases {
        let method = name.split('_').next().expect("name");
        // The baseline answers exactly what Usher answers, pre-encoded.
        let answer = rt.block_on(async {
            let resp = usher_svc.clone().oneshot(request(method, &tok, body.clone())).await.expect("ok");
            resp.into_body().collect().await.expect("body").to_bytes()
        });
        let base_svc = baseline(answer);
        let mut g = c.benchmark_group(format!("rpc/{name}"));
        g.bench_function("usher", |b| {
            b.to_async(&rt).iter(|| run(usher_svc.clone(), request(method, &tok, body.clone())))
        });
        g.bench_function("baseline", |b| {
            b.to_async(&rt).iter(|| run(base_svc.clone(), request(method, &tok, body.clone())))
        });
        g.finish();
    }
}

criterion_group!(benches, bench_token, bench_rpc);
criterion_main!(benches);
