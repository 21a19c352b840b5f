//! A minimal signalling client for black-box tests: joins over `/rtc`, records every
//! `SignalResponse`, sends requests, and can stop reading to play a stalled client.

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use prost::Message as _;
use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};
use usher::proto::{self, signal_request, signal_response::Message as Signal};

/// One connected client.
pub struct SignalClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Everything received so far, in order.
    pub seen: Vec<Signal>,
    /// The close code the server sent, once it closed.
    pub close_code: Option<u16>,
    /// When the client last sent anything: a reading client keeps its session alive with
    /// WebSocket pings, as a real one does with its signal pings, so tests that run longer
    /// than the server's 15 s silence timeout are not cut off. A stalled client (one that
    /// stops reading) sends nothing.
    last_sent: std::time::Instant,
}

/// How often a reading client pings (the server's silence timeout is 15 s).
const KEEPALIVE: Duration = Duration::from_secs(4);

/// Why a connect failed: the HTTP status and body of the refused handshake.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub body: String,
}

impl SignalClient {
    /// Opens `/rtc` with a token (protocol 16, as current SDKs announce) and extra query text.
    pub async fn connect(addr: std::net::SocketAddr, token: &str, extra_query: &str) -> Result<Self, Refused> {
        let url = format!("ws://{addr}/rtc?access_token={token}&protocol=16&sdk=rust{extra_query}");
        match tokio_tungstenite::connect_async(url).await {
            Ok((ws, _)) => Ok(Self { ws, seen: Vec::new(), close_code: None, last_sent: std::time::Instant::now() }),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(Refused {
                status: resp.status().as_u16(),
                body: resp.body().as_ref().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default(),
            }),
            Err(e) => panic!("connect failed: {e}"),
        }
    }

    /// Joins and returns the client with its JoinResponse already read.
    pub async fn join(addr: std::net::SocketAddr, token: &str) -> (Self, proto::JoinResponse) {
        let mut c = Self::connect(addr, token, "").await.expect("join accepted");
        match c.recv().await {
            Some(Signal::Join(j)) => (c, j),
            other => panic!("first frame must be a JoinResponse, got {other:?}"),
        }
    }

    /// The next message, or `None` when the server closed the socket (5 s at most).
    pub async fn recv(&mut self) -> Option<Signal> {
        loop {
            self.keepalive().await;
            let next = tokio::time::timeout(Duration::from_secs(5), self.ws.next()).await.expect("a frame within 5 s");
            match next {
                Some(Ok(Message::Binary(b))) => {
                    let m = proto::SignalResponse::decode(b).expect("SignalResponse").message.expect("variant set");
                    self.seen.push(m.clone());
                    return Some(m);
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(frame))) => {
                    self.close_code = frame.map(|f| u16::from(f.code));
                    return None;
                }
                None | Some(Err(_)) => return None,
                Some(Ok(other)) => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// Reads until `pred` matches a message; panics if the socket closes first.
    pub async fn recv_until(&mut self, what: &str, pred: impl Fn(&Signal) -> bool) -> Signal {
        loop {
            match self.recv().await {
                Some(m) if pred(&m) => return m,
                Some(_) => continue,
                None => panic!("socket closed while waiting for {what}; seen {:?}", self.seen),
            }
        }
    }

    /// Reads (and records) whatever arrives until `ms` milliseconds pass without a frame.
    pub async fn settle(&mut self, ms: u64) {
        self.keepalive().await;
        while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_millis(ms), self.ws.next()).await {
            if let Message::Binary(b) = m {
                self.record(&b);
            }
        }
    }

    /// Asserts nothing arrives for `ms` milliseconds.
    pub async fn assert_quiet(&mut self, ms: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
        while let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline, self.ws.next()).await {
            // Answers to our keepalive pings are not news.
            if !matches!(m, Message::Pong(_)) {
                panic!("expected silence, got {m:?}");
            }
        }
    }

    /// Reads without ever sending (no keepalive: a client whose pings stopped) until the
    /// server closes the socket; false if it is still open after `secs` seconds.
    pub async fn silent_until_closed(&mut self, secs: u64) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return false,
                Ok(None | Some(Err(_))) => return true,
                Ok(Some(Ok(Message::Close(frame)))) => {
                    self.close_code = frame.map(|f| u16::from(f.code));
                    return true;
                }
                Ok(Some(Ok(Message::Binary(b)))) => self.record(&b),
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// Records a binary frame that carries a SignalResponse (others are left out).
    fn record(&mut self, frame: &[u8]) {
        if let Ok(r) = proto::SignalResponse::decode(frame)
            && let Some(m) = r.message
        {
            self.seen.push(m);
        }
    }

    /// Pings when the client has been quiet for [`KEEPALIVE`].
    async fn keepalive(&mut self) {
        if self.last_sent.elapsed() >= KEEPALIVE {
            self.last_sent = std::time::Instant::now();
            let _ = self.ws.send(Message::Ping(Vec::new().into())).await;
        }
    }

    /// Sends a request.
    pub async fn send(&mut self, m: signal_request::Message) {
        let bytes = proto::SignalRequest { message: Some(m) }.encode_to_vec();
        self.last_sent = std::time::Instant::now();
        self.ws.send(Message::Binary(bytes.into())).await.expect("send");
    }

    /// Sends a text frame (protobuf JSON).
    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::Text(text.into())).await.expect("send");
    }

    /// The next text frame, as JSON (skipping nothing: any other frame fails the test).
    pub async fn recv_text(&mut self) -> serde_json::Value {
        let next = tokio::time::timeout(Duration::from_secs(5), self.ws.next()).await.expect("a frame within 5 s");
        match next {
            Some(Ok(Message::Text(t))) => serde_json::from_str(t.as_str()).expect("JSON"),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// Sends raw bytes (bad-input tests).
    pub async fn send_raw(&mut self, bytes: Vec<u8>) {
        self.ws.send(Message::Binary(bytes.into())).await.expect("send");
    }

    /// Publishes a track and returns it as the server acknowledged it.
    pub async fn publish(&mut self, cid: &str, kind: proto::TrackType, source: proto::TrackSource) -> proto::TrackInfo {
        self.send(signal_request::Message::AddTrack(proto::AddTrackRequest {
            cid: cid.into(),
            name: cid.into(),
            r#type: kind as i32,
            source: source as i32,
            ..Default::default()
        }))
        .await;
        let m = self.recv_until("track published", |m| matches!(m, Signal::TrackPublished(t) if t.cid == cid)).await;
        let Signal::TrackPublished(t) = m else { unreachable!() };
        t.track.expect("published track")
    }

    /// Closes the socket without a leave (a lost connection).
    pub async fn drop_connection(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// The participant update entries about `identity` in a message, if it is an update.
pub fn update_about<'a>(m: &'a Signal, identity: &str) -> Option<&'a proto::ParticipantInfo> {
    match m {
        Signal::Update(u) => u.participants.iter().find(|p| p.identity == identity),
        _ => None,
    }
}
