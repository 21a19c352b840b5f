//! Socket-level load tool: Usher against baselines measured in the same run.
//!
//! `cargo bench --bench load -- [rpc|fanout|storm|all] [--sessions N] [--secs S]`
//!
//! Each server runs as its own process so its CPU time and memory can be read from `/proc`:
//! Usher is the real binary; the baseline is this tool re-run as `serve-baseline`, a bare axum
//! server that does the same JWT check and answers the same bytes (RPC scenario) or keeps raw
//! WebSockets and broadcasts one frame to all of them (fan-out scenario). Figures are reported
//! as Usher ÷ baseline; the machine is shared, so absolute numbers drift between runs.
//!
//! Scenarios:
//! * `rpc`: ListParticipants and GetParticipant on a 100-participant room, protobuf, 32
//!   concurrent keep-alive clients: requests per second and per server CPU-second.
//! * `fanout`: N (default 5000) idle sessions; one UpdateRoomMetadata → time until every
//!   session has the RoomUpdate, against a raw broadcast of an equal-sized frame; plus
//!   resident memory per idle session. Sessions join as hidden participants so setting up the
//!   room is not itself an N² presence storm (the measured broadcast is the same).
//! * `storm`: n participants join at once (n = 250, 500, 1000): time until all have joined and
//!   signalling bytes received per session, to show per-session bytes grow linearly in n.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a measuring tool: fail loudly

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

#[path = "support.rs"]
mod support;

use futures_util::{SinkExt as _, StreamExt as _};
use prost::Message as _;
use tokio_tungstenite::tungstenite::Message;
use usher::{
    auth::{
        VideoGrant,
        mint::{TokenMinter, TokenSpec},
    },
    clock::{Clock as _, SystemClock},
    proto,
};

const KEY: &str = "load-key";
/// First byte of an encoded `SignalResponse` carrying `room_update` (field 11, length-delimited).
const ROOM_UPDATE_TAG: u8 = (11 << 3) | 2;
const SECRET: &str = "load-secret-0123456789abcdef0123456789";

fn token(identity: &str, video: VideoGrant) -> String {
    let spec = TokenSpec {
        api_key: KEY.into(),
        identity: identity.into(),
        video,
        now_secs: SystemClock.now_secs(),
        ttl_secs: 3600,
        ..Default::default()
    };
    TokenMinter::mint(&spec, SECRET).unwrap()
}

fn join_token(room: &str, identity: &str, hidden: bool) -> String {
    token(identity, VideoGrant { room_join: true, room: room.into(), hidden, ..Default::default() })
}

fn admin_token(room: &str) -> String {
    token("load", VideoGrant { room_admin: true, room: room.into(), ..Default::default() })
}

/// A server process under test.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(mut cmd: Command) -> Self {
        let mut child = cmd.stderr(Stdio::piped()).stdout(Stdio::null()).env("NO_COLOR", "1").spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && let Some(at) = line.find("listening on http://") {
                    let url = line[at + "listening on ".len()..].split_whitespace().next().unwrap().to_string();
                    let _ = tx.send(url);
                    sent = true;
                }
            }
        });
        let url = rx.recv_timeout(Duration::from_secs(20)).expect("server reports its address");
        Self { child, url }
    }

    fn usher() -> Self {
        let yaml = format!("keys:\n  {KEY}: {SECRET}\nlogging:\n  level: info\nlimit:\n  max_metadata_size: 0\n");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_usher"));
        cmd.args(["--config-body", &yaml, "--bind", "127.0.0.1", "--port", "0"]);
        cmd.env("USHER_LOG", "usher=info");
        Self::start(cmd)
    }

    fn baseline(answer_file: Option<&std::path::Path>) -> Self {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.arg("serve-baseline");
        if let Some(f) = answer_file {
            cmd.arg(f);
        }
        Self::start(cmd)
    }

    fn ws_url(&self) -> String {
        self.url.replacen("http://", "ws://", 1)
    }

    /// User + system CPU seconds the process has used.
    fn cpu_secs(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = after.split_whitespace().collect();
        (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
    }

    /// Resident memory in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A signalling session that counts what it receives and reports RoomUpdates.
async fn session(
    ws_url: String,
    token: String,
    joined: Arc<AtomicUsize>,
    room_updates: Arc<AtomicUsize>,
    bytes: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    session_sized(ws_url, token, joined, room_updates, bytes, Arc::default()).await
}

/// [`session`], also recording the size of the last RoomUpdate frame.
async fn session_sized(
    ws_url: String,
    token: String,
    joined: Arc<AtomicUsize>,
    room_updates: Arc<AtomicUsize>,
    bytes: Arc<AtomicU64>,
    update_len: Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<()> {
    let url = format!("{ws_url}/rtc?access_token={token}&protocol=16");
    let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("join");
    joined.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(async move {
        let (mut tx, mut rx) = ws.split();
        let mut ping = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                msg = rx.next() => match msg {
                    Some(Ok(Message::Binary(b))) => {
                        let len = b.len();
                        bytes.fetch_add(len as u64, Ordering::Relaxed);
                        // A RoomUpdate frame starts with field 11's tag; checking one byte keeps
                        // the client's work per frame as small as the raw baseline client's.
                        if b.first() == Some(&ROOM_UPDATE_TAG) {
                            update_len.store(len, Ordering::Relaxed);
                            room_updates.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Some(Ok(_)) => {}
                    _ => break,
                },
                _ = ping.tick() => {
                    let ping = proto::SignalRequest { message: Some(proto::signal_request::Message::PingReq(proto::Ping { timestamp: 1, rtt: 0 })) };
                    if tx.send(Message::Binary(ping.encode_to_vec().into())).await.is_err() { break; }
                }
            }
        }
    })
}

/// A raw WebSocket client of the baseline: counts frames.
async fn raw_client(ws_url: String, frames: Arc<AtomicUsize>) -> tokio::task::JoinHandle<()> {
    let (ws, _) = tokio_tungstenite::connect_async(format!("{ws_url}/ws")).await.expect("baseline ws");
    tokio::spawn(async move {
        let (_tx, mut rx) = ws.split();
        while let Some(Ok(m)) = rx.next().await {
            if matches!(m, Message::Binary(_)) {
                frames.fetch_add(1, Ordering::Relaxed);
            }
        }
    })
}

async fn wait_for(counter: &AtomicUsize, target: usize, limit: Duration) -> Duration {
    let start = Instant::now();
    while counter.load(Ordering::Relaxed) < target {
        assert!(start.elapsed() < limit, "only {} of {target} after {limit:?}", counter.load(Ordering::Relaxed));
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    start.elapsed()
}

async fn post(http: &reqwest::Client, url: &str, token: &str, body: Vec<u8>) -> bytes::Bytes {
    let resp = http
        .post(url)
        .header("content-type", "application/protobuf")
        .bearer_auth(token)
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{url}: {}", resp.status());
    resp.bytes().await.unwrap()
}

/// Runs `clients` concurrent request loops for `secs`; returns (requests, server CPU seconds).
async fn hammer(server: &Server, path: &str, token: &str, body: Vec<u8>, secs: u64) -> (u64, f64) {
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
    let url = format!("{}{path}", server.url);
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let cpu0 = server.cpu_secs();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (http, url, token, body, done) =
            (http.clone(), url.clone(), token.to_string(), body.clone(), Arc::clone(&done));
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                post(&http, &url, &token, body.clone()).await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (done.load(Ordering::Relaxed), server.cpu_secs() - cpu0)
}

async fn scenario_rpc(secs: u64) {
    println!("\n## rpc: 100-participant room, protobuf, 32 clients, {secs} s per run");
    let usher = Server::usher();
    let (joined, updates, bytes) = (Arc::default(), Arc::default(), Arc::default());
    let mut sessions = Vec::new();
    for i in 0..100 {
        let t = join_token("bench", &format!("p{i:03}"), false);
        sessions.push(session(usher.ws_url(), t, Arc::clone(&joined), Arc::clone(&updates), Arc::clone(&bytes)).await);
    }
    tokio::time::sleep(Duration::from_secs(4)).await; // let presence batches settle
    let admin = admin_token("bench");
    let http = reqwest::Client::new();
    let cases = [
        ("ListParticipants", proto::ListParticipantsRequest { room: "bench".into() }.encode_to_vec()),
        (
            "GetParticipant",
            proto::RoomParticipantIdentity { room: "bench".into(), identity: "p042".into(), ..Default::default() }
                .encode_to_vec(),
        ),
    ];
    for (method, body) in cases {
        let path = format!("/twirp/livekit.RoomService/{method}");
        let answer = post(&http, &format!("{}{path}", usher.url), &admin, body.clone()).await;
        let file = std::env::temp_dir().join(format!("usher-load-{method}.bin"));
        std::fs::write(&file, &answer).unwrap();
        let baseline = Server::baseline(Some(&file));
        // Alternate Usher and baseline runs and keep the median ratio: the load generator
        // shares the machine, so single runs drift by tens of percent.
        let (mut rps_ratios, mut cpu_ratios, mut last) = (Vec::new(), Vec::new(), (0.0, 0.0, 0.0, 0.0));
        for _ in 0..3 {
            let (u_n, u_cpu) = hammer(&usher, &path, &admin, body.clone(), secs).await;
            let (b_n, b_cpu) = hammer(&baseline, &path, &admin, body.clone(), secs).await;
            let (u_rps, b_rps) = (u_n as f64 / secs as f64, b_n as f64 / secs as f64);
            let (u_eff, b_eff) = (u_n as f64 / u_cpu.max(0.01), b_n as f64 / b_cpu.max(0.01));
            rps_ratios.push(u_rps / b_rps);
            cpu_ratios.push(u_eff / b_eff);
            last = (u_rps, u_eff, b_rps, b_eff);
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (u_rps, u_eff, b_rps, b_eff) = last;
        println!(
            "{method:17} answer {:6} B | last run: Usher {u_rps:7.0} req/s {u_eff:7.0} req/CPU-s, baseline {b_rps:7.0} req/s {b_eff:7.0} req/CPU-s | median of 3 ratios: rps {:.2} per-CPU {:.2} (runs {:.2?} / {:.2?})",
            answer.len(),
            median(&mut rps_ratios.clone()),
            median(&mut cpu_ratios.clone()),
            rps_ratios,
            cpu_ratios,
        );
    }
    drop(sessions);
}

async fn scenario_fanout(n: usize) {
    println!("\n## fanout: {n} idle sessions, one update to all");
    let usher = Server::usher();
    let rss0 = usher.rss_kib();
    let (joined, updates, bytes) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::default());
    let update_len = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut sessions = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let mut batch = Vec::new();
        for i in chunk {
            let t = join_token("fan", &format!("s{i:05}"), true);
            let (j, u, b, l) = (Arc::clone(&joined), Arc::clone(&updates), Arc::clone(&bytes), Arc::clone(&update_len));
            batch.push(session_sized(usher.ws_url(), t, j, u, b, l));
        }
        sessions.extend(futures_util::future::join_all(batch).await);
    }
    println!("joined {n} sessions in {:.2?}", t0.elapsed());
    tokio::time::sleep(Duration::from_secs(4)).await;
    let usher_per_session = (usher.rss_kib().saturating_sub(rss0)) as f64 * 1024.0 / n as f64;

    let http = reqwest::Client::new();
    let metadata = "m".repeat(64);
    let mut usher_times = Vec::new();
    for round in 0..5 {
        let before = updates.load(Ordering::Relaxed);
        let body = proto::UpdateRoomMetadataRequest { room: "fan".into(), metadata: format!("{round}{metadata}") };
        let start = Instant::now();
        post(
            &http,
            &format!("{}/twirp/livekit.RoomService/UpdateRoomMetadata", usher.url),
            &admin_token("fan"),
            body.encode_to_vec(),
        )
        .await;
        wait_for(&updates, before + n, Duration::from_secs(60)).await;
        usher_times.push(start.elapsed());
    }
    // The baseline broadcasts a frame as large as the RoomUpdate every session received.
    let frame_len = update_len.load(Ordering::Relaxed);
    drop(sessions);
    drop(usher);

    let baseline = Server::baseline(None);
    let rss0 = baseline.rss_kib();
    let frames = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let batch: Vec<_> = chunk.iter().map(|_| raw_client(baseline.ws_url(), Arc::clone(&frames))).collect();
        clients.extend(futures_util::future::join_all(batch).await);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let base_per_session = (baseline.rss_kib().saturating_sub(rss0)) as f64 * 1024.0 / n as f64;
    let mut base_times = Vec::new();
    for _ in 0..5 {
        let before = frames.load(Ordering::Relaxed);
        let start = Instant::now();
        let resp = http.post(format!("{}/broadcast", baseline.url)).body(vec![b'x'; frame_len]).send().await.unwrap();
        assert!(resp.status().is_success());
        wait_for(&frames, before + n, Duration::from_secs(60)).await;
        base_times.push(start.elapsed());
    }
    drop(clients);
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (u, b) = (median(&mut usher_times), median(&mut base_times));
    println!(
        "update reaches all {n}: Usher {u:.2?} | raw broadcast {b:.2?} | ratio {:.2} (median of 5; frame {frame_len} B)",
        u.as_secs_f64() / b.as_secs_f64()
    );
    println!(
        "resident memory per idle session: Usher {:.1} KB | raw WebSocket {:.1} KB",
        usher_per_session / 1000.0,
        base_per_session / 1000.0
    );
}

async fn scenario_storm() {
    println!("\n## storm: n participants join at once");
    for n in [250usize, 500, 1000] {
        let usher = Server::usher();
        let (joined, updates, bytes) = (Arc::new(AtomicUsize::new(0)), Arc::default(), Arc::new(AtomicU64::new(0)));
        let start = Instant::now();
        let cpu0 = usher.cpu_secs();
        let batch: Vec<_> = (0..n)
            .map(|i| {
                let t = join_token("storm", &format!("j{i:05}"), false);
                session(usher.ws_url(), t, Arc::clone(&joined), Arc::clone(&updates), Arc::clone(&bytes))
            })
            .collect();
        let sessions = futures_util::future::join_all(batch).await;
        let join_time = start.elapsed();
        // Presence settles within two batch intervals after the last join.
        tokio::time::sleep(Duration::from_secs(7)).await;
        let per_session = bytes.load(Ordering::Relaxed) as f64 / n as f64;
        println!(
            "n={n:5}: all joined in {join_time:.2?}; server CPU {:.2} s; signalling bytes per session {:.0} ({:.1} per peer)",
            usher.cpu_secs() - cpu0,
            per_session,
            per_session / n as f64
        );
        drop(sessions);
    }
}

/// The baseline server: bare axum, same JWT check, fixed answer; raw WebSocket broadcast.
async fn serve_baseline(answer: Option<String>) {
    use axum::{
        Router,
        extract::{Request, WebSocketUpgrade, ws::Message as WsMessage},
        routing::{get, post},
    };
    use http::StatusCode;
    let answer = bytes::Bytes::from(answer.map(|p| std::fs::read(p).unwrap()).unwrap_or_default());
    let verifier =
        Arc::new(usher::auth::TokenVerifier::new(usher::config::Keys::new([(KEY.to_string(), SECRET.to_string())])));
    type Peers = Arc<parking_lot::Mutex<Vec<tokio::sync::mpsc::Sender<bytes::Bytes>>>>;
    let peers: Peers = Arc::default();
    let rpc = {
        let verifier = Arc::clone(&verifier);
        move |req: Request| {
            let (verifier, answer) = (Arc::clone(&verifier), answer.clone());
            async move { support::baseline_rpc(&verifier, &req, answer) }
        }
    };
    let ws = {
        let peers = Arc::clone(&peers);
        move |up: WebSocketUpgrade| {
            let peers = Arc::clone(&peers);
            async move {
                up.read_buffer_size(4 * 1024).on_upgrade(move |mut socket| async move {
                    let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(1024);
                    peers.lock().push(tx);
                    loop {
                        tokio::select! {
                            frame = rx.recv() => match frame {
                                Some(f) => if socket.send(WsMessage::Binary(f)).await.is_err() { break },
                                None => break,
                            },
                            msg = socket.recv() => if !matches!(msg, Some(Ok(_))) { break },
                        }
                    }
                })
            }
        }
    };
    let broadcast = {
        let peers = Arc::clone(&peers);
        move |body: bytes::Bytes| {
            let peers = Arc::clone(&peers);
            async move {
                for p in peers.lock().iter() {
                    let _ = p.try_send(body.clone());
                }
                StatusCode::OK
            }
        }
    };
    let app = Router::new()
        .route("/twirp/livekit.RoomService/{m}", post(rpc))
        .route("/ws", get(ws))
        .route("/broadcast", post(broadcast));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    eprintln!("baseline listening on http://{}", listener.local_addr().unwrap());
    axum::serve(listener, app).await.unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    if args.first().map(String::as_str) == Some("serve-baseline") {
        rt.block_on(serve_baseline(args.get(1).cloned()));
        return;
    }
    let value = |flag: &str, default: u64| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let sessions = usize::try_from(value("--sessions", 5000)).unwrap();
    let secs = value("--secs", 5);
    let which = args.iter().find(|a| !a.starts_with("--") && a.parse::<u64>().is_err()).map_or("all", String::as_str);
    rt.block_on(async {
        if matches!(which, "all" | "rpc") {
            scenario_rpc(secs).await;
        }
        if matches!(which, "all" | "fanout") {
            scenario_fanout(sessions).await;
        }
        if matches!(which, "all" | "storm") {
            scenario_storm().await;
        }
    });
}
