//! The HTTP surface around the RPCs: health, 404s, CORS, double slashes, token in the query.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;

use common::{TestServer, create_list};

#[tokio::test]
async fn health_and_unknown_paths() {
    let s = TestServer::spawn("").await;
    let r = common::Reply::from(s.http.get(s.url()).send().await.unwrap()).await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "OK"));
    // Any method, as LiveKit's health handler.
    let r = common::Reply::from(s.http.post(s.url()).send().await.unwrap()).await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "OK"));
    let r = common::Reply::from(s.http.get(format!("{}/nope", s.url())).send().await.unwrap()).await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (404, "404 page not found\n"));
    s.stop().await;
}

#[tokio::test]
async fn cors_preflight_and_error_responses_echo_the_origin() {
    let s = TestServer::spawn("").await;
    let url = format!("{}/twirp/livekit.RoomService/ListRooms", s.url());
    let pre = s
        .http
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization,content-type")
        .send()
        .await
        .unwrap();
    assert!(pre.status().is_success(), "{}", pre.status());
    let h = pre.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example");
    assert!(h["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    assert!(h["access-control-allow-headers"].to_str().unwrap().contains("authorization"));
    assert_eq!(h["access-control-max-age"], "86400");

    // A refused call still carries the CORS header, so browsers can read the error.
    let resp = s
        .http
        .post(&url)
        .header("origin", "https://app.example")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["access-control-allow-origin"], "https://app.example");
    assert_eq!(resp.headers()["access-control-expose-headers"], "*");
    // So does a token refused before any route runs, and a body over the limit.
    for (auth, body) in [("Bearer not.a.token", 2), ("", 11 << 20)] {
        let resp = s
            .http
            .post(&url)
            .header("origin", "https://app.example")
            .header("authorization", auth)
            .header("content-type", "application/json")
            .body(vec![b' '; body])
            .send()
            .await
            .unwrap();
        assert!(matches!(resp.status().as_u16(), 401 | 413), "{}", resp.status());
        assert_eq!(resp.headers()["access-control-allow-origin"], "https://app.example");
    }
    // Without an Origin (server SDKs) nothing CORS is added.
    let resp = s.http.post(&url).header("content-type", "application/json").body("{}").send().await.unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    s.stop().await;
}

#[tokio::test]
async fn double_slash_and_query_token_are_served() {
    let s = TestServer::spawn("").await;
    // Clients with a trailing slash in their base URL send `//twirp/...`.
    let resp = s
        .http
        .post(format!("{}//twirp/livekit.RoomService/ListRooms?access_token={}", s.url(), create_list()))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    let r = common::Reply::from(resp).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), r#"{"rooms":[]}"#);
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_does_not_wait_forever_for_a_stalled_request() {
    use tokio::io::AsyncWriteExt as _;
    let s = TestServer::spawn("").await;
    // A request that promises 100 bytes of body and sends one.
    let mut sock = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    sock.write_all(
        b"POST /twirp/livekit.RoomService/ListRooms HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{",
    )
    .await
    .unwrap();
    tokio::task::yield_now().await;
    // With time paused, the grace period elapses as soon as everything is idle; without the
    // deadline this would hang forever.
    tokio::time::timeout(usher::server::SHUTDOWN_GRACE * 2, s.stop()).await.expect("shutdown finishes");
    drop(sock);
}

#[tokio::test]
async fn without_bind_addresses_both_ipv4_and_ipv6_loopback_answer() {
    let no_files = |_: &std::path::Path| Err(std::io::Error::other("none"));
    let overrides = usher::config::Overrides { port: Some(0), ..Default::default() };
    let config =
        usher::config::load(&format!("keys:\n  {}: {}\n", common::KEY, common::SECRET), &overrides, &no_files).unwrap();
    let server = usher::server::Server::start(config, std::sync::Arc::new(usher::clock::SystemClock)).await.unwrap();
    let port = server.addrs()[0].port();
    let http = reqwest::Client::new();
    let v4 = http.get(format!("http://127.0.0.1:{port}/")).send().await.unwrap();
    assert_eq!(v4.text().await.unwrap(), "OK");
    // IPv6 loopback may be missing in a sandbox; only check it where it exists.
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        let v6 = http.get(format!("http://[::1]:{port}/")).send().await.unwrap();
        assert_eq!(v6.text().await.unwrap(), "OK");
    }
    server.shutdown().await;
}
