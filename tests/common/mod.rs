//! Shared black-box test harness: a real server on 127.0.0.1:0, a token minter, and a Twirp
//! client speaking both encodings. Every test gets its own server and stops it at the end.
#![allow(dead_code)]

use std::{net::SocketAddr, sync::Arc};

use prost::Message;
use reqwest::{Client, StatusCode, header::HeaderMap};
use serde::{Serialize, de::DeserializeOwned};
use usher::{
    auth::{
        VideoGrant,
        mint::{TokenMinter, TokenSpec},
    },
    clock::{Clock as _, SystemClock},
    config::{self, Overrides},
    server::Server,
};

/// API key and secret every test server accepts.
pub const KEY: &str = "test-key";
pub const SECRET: &str = "test-secret-that-is-long-enough-0123456789";

/// A running Usher on a free loopback port.
pub struct TestServer {
    server: Option<Server>,
    pub addr: SocketAddr,
    pub http: Client,
}

impl TestServer {
    /// Starts a server with `yaml` (keys are added unless the YAML sets its own).
    pub async fn spawn(yaml: &str) -> Self {
        let yaml = if yaml.contains("keys:") { yaml.to_string() } else { format!("keys:\n  {KEY}: {SECRET}\n{yaml}") };
        let overrides = Overrides { bind: vec!["127.0.0.1".into()], port: Some(0), ..Default::default() };
        let no_files = |_: &std::path::Path| Err(std::io::Error::other("no key files in tests"));
        let mut config = config::load(&yaml, &overrides, &no_files).expect("test config is valid");
        // Presence batches every 50 ms instead of 3 s, so tests wait less (same code path);
        // webhook retries start at 50 ms instead of 1 s.
        config.room.update_batch_interval = std::time::Duration::from_millis(50);
        config.webhook.retry_base = std::time::Duration::from_millis(50);
        let server = Server::start(config, Arc::new(SystemClock)).await.expect("server starts");
        let addr = server.addrs()[0];
        Self { server: Some(server), addr, http: Client::new() }
    }

    /// Base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The server's state, for checking that bad input changed nothing.
    pub fn app(&self) -> &Arc<usher::app::AppState> {
        self.server.as_ref().expect("running").app()
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }

    /// `GET /rtc/validate` with a token: the join verdict as plain HTTP.
    pub async fn validate(&self, token: &str) -> Reply {
        let url = format!("{}/rtc/validate?access_token={token}", self.url());
        Reply::from(self.http.get(url).send().await.expect("request sent")).await
    }

    /// Twirp call with a JSON body; returns status, headers and the raw body.
    pub async fn call_json(&self, method: &str, token: Option<&str>, body: &str) -> Reply {
        self.raw(method, token, "application/json", body.as_bytes().to_vec()).await
    }

    /// Twirp call with any content type and body.
    pub async fn raw(&self, method: &str, token: Option<&str>, content_type: &str, body: Vec<u8>) -> Reply {
        let mut req = self
            .http
            .post(format!("{}/twirp/livekit.RoomService/{method}", self.url()))
            .header("content-type", content_type)
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Reply::from(req.send().await.expect("request sent")).await
    }

    /// Typed protobuf call.
    pub async fn proto<Req: Message, Resp: Message + Default>(
        &self,
        method: &str,
        token: &str,
        req: &Req,
    ) -> Result<Resp, Reply> {
        let r = self.raw(method, Some(token), "application/protobuf", req.encode_to_vec()).await;
        if r.status == StatusCode::OK {
            assert_eq!(r.content_type(), "application/protobuf");
            Ok(Resp::decode(r.body.as_slice()).expect("protobuf response decodes"))
        } else {
            Err(r)
        }
    }

    /// Typed JSON call (request written with proto field names, as Go clients do).
    pub async fn json<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        method: &str,
        token: &str,
        req: &Req,
    ) -> Result<Resp, Reply> {
        let body = serde_json::to_string(req).expect("request to JSON");
        let r = self.call_json(method, Some(token), &body).await;
        if r.status == StatusCode::OK {
            assert_eq!(r.content_type(), "application/json");
            Ok(serde_json::from_slice(&r.body).expect("JSON response decodes"))
        } else {
            Err(r)
        }
    }
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub async fn from(resp: reqwest::Response) -> Self {
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.expect("body").to_vec();
        Self { status, headers, body }
    }

    pub fn content_type(&self) -> &str {
        self.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The Twirp error `(code, msg)`; panics unless the body is a Twirp JSON error.
    pub fn twirp(&self) -> (String, String) {
        assert_eq!(self.content_type(), "application/json", "Twirp errors are exactly application/json");
        let v: serde_json::Value = serde_json::from_slice(&self.body).expect("error body is JSON");
        (v["code"].as_str().unwrap_or("").to_string(), v["msg"].as_str().unwrap_or("").to_string())
    }

    /// Asserts a Twirp error with this status, code and message.
    #[track_caller]
    pub fn assert_twirp(&self, status: u16, code: &str, msg: &str) {
        assert_eq!(self.status.as_u16(), status, "status; body: {}", self.text());
        assert_eq!(self.twirp(), (code.to_string(), msg.to_string()));
    }
}

/// Mints tokens for the test key.
pub fn token(video: VideoGrant) -> String {
    token_with(KEY, SECRET, video, 600)
}

/// Mints a token with any key, secret and lifetime (negative = already expired).
pub fn token_with(key: &str, secret: &str, video: VideoGrant, ttl_secs: i64) -> String {
    let spec = TokenSpec {
        api_key: key.into(),
        identity: "backend".into(),
        video,
        now_secs: SystemClock.now_secs(),
        ttl_secs,
        ..Default::default()
    };
    TokenMinter::mint(&spec, secret).expect("token signs")
}

/// Token with roomCreate + roomList (backend admin).
pub fn create_list() -> String {
    token(VideoGrant { room_create: true, room_list: true, ..Default::default() })
}

/// Token with roomAdmin for one room.
pub fn admin(room: &str) -> String {
    token(VideoGrant { room_admin: true, room: room.into(), ..Default::default() })
}

pub mod signal;

/// A join token for `identity` in `room`.
pub fn join_token(room: &str, identity: &str) -> String {
    join_token_with(room, identity, VideoGrant::default())
}

/// A join token with extra grant fields.
pub fn join_token_with(room: &str, identity: &str, extra: VideoGrant) -> String {
    let spec = TokenSpec {
        api_key: KEY.into(),
        identity: identity.into(),
        name: format!("{identity} name"),
        video: VideoGrant { room_join: true, room: room.into(), ..extra },
        now_secs: SystemClock.now_secs(),
        ttl_secs: 600,
        ..Default::default()
    };
    TokenMinter::mint(&spec, SECRET).expect("token signs")
}
