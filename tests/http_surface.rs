//! The HTTP surface around the RPCs: health, 404s, CORS, double slashes, token in the query.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod common;

use common::{TestServer, create_list};

#[tokio::test]
async fn health_and_unknown_paths() {
    let s = TestServer::spawn("").await;
    let r = common::Reply::from(s.http.get(s.url()).send().await.unwrap()).await;
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
