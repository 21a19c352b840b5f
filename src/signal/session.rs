//! One signalling session: the socket loop between a client and its room.
//!
//! The writer side drains the participant's bounded queue (frames the room produced, in the
//! room's order); the reader side answers pings itself and hands other requests to the
//! registry. The session ends when the client leaves (the participant leaves the room), the
//! socket is lost (closed without a leave, broken, or silent for the ping timeout: the
//! participant waits in the room for a resume), the client stops reading (a write outlives its
//! deadline, or the room kicks it: it is removed), or the room drops the participant or a
//! resume takes it over (the queue closes). Cleanup runs after the loop on every path.

use std::{sync::Arc, time::Duration};

use axum::extract::ws::{Message, WebSocket};
use bytes::Bytes;
use futures_util::SinkExt as _;
use prost::Message as _;
use tokio::time::Instant;

use crate::{
    app::AppState,
    proto::{self, DisconnectReason, signal_request::Message as Request, signal_response::Message as Signal},
    rooms::{Home, Inbox, SessionEnd, SessionKey, membership::PING_TIMEOUT_SECS},
};

/// How long one write to a client may take before the client counts as stalled.
const WRITE_DEADLINE: Duration = Duration::from_secs(5);
/// Frames written per turn before the reader gets a chance (no starving client requests).
const WRITE_BATCH: usize = 64;

/// How a session ended, and so what the room must hear.
#[derive(Debug, Clone, Copy)]
enum Ending {
    /// The client said goodbye: it leaves the room now, for this reason.
    Left(DisconnectReason),
    /// The socket is gone without a goodbye: the participant waits for a resume.
    Lost,
    /// The room already let go of this socket (removed, replaced, resumed elsewhere, kicked).
    Released,
}

/// Why a write did not complete.
enum WriteFailed {
    /// The socket failed.
    Broken,
    /// The write did not finish within [`WRITE_DEADLINE`]: the client stopped reading.
    Stalled,
    /// The room gave up on the participant for not reading (its queue overflowed).
    Kicked,
}

/// The first byte of an encoded `SignalResponse` carrying a leave (field 8, length-delimited).
const LEAVE_TAG: u8 = (8 << 3) | 2;

/// What a completed write leaves the session with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    /// Go on.
    More,
    /// A leave went out: the session's last frame. The room drops the participant right
    /// after queueing one, so nothing after it (not even a pong) is for this socket.
    Leave,
}

/// Writes `first` and up to [`WRITE_BATCH`] more queued frames (stopping after a leave), then
/// flushes once; bounded by [`WRITE_DEADLINE`] and interrupted by a kick, so a client that
/// stops reading can never hold this task.
async fn write_batch(
    socket: &mut WebSocket,
    first: Bytes,
    frames: &mut tokio::sync::mpsc::Receiver<Bytes>,
    kick: &tokio::sync::Notify,
    json: bool,
) -> Result<Written, WriteFailed> {
    let write = async {
        let mut last = first.first() == Some(&LEAVE_TAG);
        socket.feed(wire(first, json)).await?;
        for _ in 0..WRITE_BATCH {
            if last {
                break;
            }
            let Ok(more) = frames.try_recv() else { break };
            last = more.first() == Some(&LEAVE_TAG);
            socket.feed(wire(more, json)).await?;
        }
        socket.flush().await.map(|()| if last { Written::Leave } else { Written::More })
    };
    tokio::select! {
        written = tokio::time::timeout(WRITE_DEADLINE, write) => match written {
            Ok(Ok(w)) => Ok(w),
            Ok(Err(_)) => Err(WriteFailed::Broken),
            Err(_) => Err(WriteFailed::Stalled),
        },
        () = kick.notified() => Err(WriteFailed::Kicked),
    }
}

/// One queued frame as the client wants it: the protobuf bytes the room made, or, for a client
/// that spoke JSON last, the same message as protobuf JSON in a text frame (LiveKit answers in
/// the encoding of the client's latest message). Rooms encode once for every session; only
/// JSON sessions pay for the conversion.
fn wire(frame: Bytes, json: bool) -> Message {
    if !json {
        return Message::Binary(frame);
    }
    let text = proto::SignalResponse::decode(frame.clone())
        .map_err(|e| e.to_string())
        .and_then(|m| serde_json::to_string(&m).map_err(|e| e.to_string()));
    match text {
        Ok(text) => Message::Text(text.into()),
        Err(e) => {
            // Not expected: the room encoded it. Binary is still a valid signal frame.
            tracing::warn!(error = %e, "could not convert a frame to JSON; sent as protobuf");
            Message::Binary(frame)
        }
    }
}

/// A request from the client: protobuf in binary frames, protobuf JSON in text frames.
fn decode_request(msg: &Message) -> Option<Result<proto::SignalRequest, String>> {
    match msg {
        Message::Binary(data) => Some(proto::SignalRequest::decode(data.clone()).map_err(|e| e.to_string())),
        Message::Text(text) => Some(
            crate::twirp::codec::decode::<proto::SignalRequest>(crate::twirp::codec::Encoding::Json, text.as_bytes())
                .map_err(|e| e.msg.to_string()),
        ),
        _ => None,
    }
}

/// Runs a joined session until it ends, then removes the participant (if still current).
///
/// One task owns the socket: `select!` drops the losing futures before a branch runs, so
/// reading and writing need no split (and no lock between halves). The silence timer is one
/// pinned `Sleep`, reset on each received message rather than re-created on every wake-up.
/// Every write goes through [`write_batch`] (deadline and kick), pongs included.
pub async fn run(mut socket: WebSocket, app: Arc<AppState>, home: Arc<Home>, key: SessionKey, inbox: Inbox) {
    let _counted = SessionCount::enter(&app.sessions);
    // Until the loop says otherwise (a panic included), the socket counts as lost.
    let mut farewell =
        Farewell { app: Arc::clone(&app), home: Arc::clone(&home), key: key.clone(), ending: Ending::Lost };
    let Inbox { mut frames, kick, .. } = inbox;
    // Before the first frame (the JoinResponse) goes out, so a client that waits for it sees
    // its `participant_joined` ahead of anything it causes.
    app.registry.with_session(&home, &key, |r| r.session_started(&key)).await;
    let sid = &key.sid;
    let ping_timeout = Duration::from_secs(PING_TIMEOUT_SECS.unsigned_abs().into());
    let silence = tokio::time::sleep(ping_timeout);
    tokio::pin!(silence);
    let mut healthy = true;
    // Whether the client's latest message was JSON (text); LiveKit starts in binary.
    let mut json = false;
    let ending = loop {
        tokio::select! {
            // No kick branch here: a kicked participant's queue is also closed, so this
            // branch wakes, and writes (the only place a stalled client can block us) watch
            // the kick.
            frame = frames.recv() => match frame {
                Some(frame) => {
                    match write_batch(&mut socket, frame, &mut frames, &kick, json).await {
                        Ok(Written::More) => {}
                        // The room let go of us after these last words (were it ever not
                        // to, the participant would wait for a resume, not linger).
                        Ok(Written::Leave) => break Ending::Lost,
                        Err(e) => {
                            healthy = false;
                            break failed(&e);
                        }
                    }
                }
                // The room let go of us (after queueing a leave, or for a resumed socket).
                None => break Ending::Released,
            },
            msg = socket.recv() => {
                silence.as_mut().reset(Instant::now() + ping_timeout);
                match msg {
                    Some(Ok(m @ (Message::Binary(_) | Message::Text(_)))) => {
                        // Replies follow the encoding of the client's latest message.
                        json = matches!(m, Message::Text(_));
                        // Undecodable frames are logged and ignored: the session goes on.
                        let request = match decode_request(&m) {
                            Some(Ok(r)) => r,
                            Some(Err(e)) => {
                                tracing::debug!(error = %e, "undecodable signal frame ignored");
                                continue;
                            }
                            None => continue,
                        };
                        match handle(&app, &home, &key, request).await {
                            Handled::Reply(frame) => {
                                match write_batch(&mut socket, frame, &mut frames, &kick, json).await {
                                    Ok(Written::More) => {}
                                    // Last words, as above.
                                    Ok(Written::Leave) => break Ending::Lost,
                                    Err(e) => {
                                        healthy = false;
                                        break failed(&e);
                                    }
                                }
                            }
                            Handled::Leave(reason) => break Ending::Left(reason),
                            Handled::Nothing => {}
                        }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break Ending::Lost,
                }
            }
            () = &mut silence => {
                tracing::info!(%sid, "no ping within the timeout; closing the session");
                break Ending::Lost;
            }
        }
    };
    // The room hears how it ended before the close frame goes out.
    farewell.ending = ending;
    drop(farewell);
    // A stalled socket gets no close frame: writing it could block again.
    if healthy {
        close_gracefully(&mut socket).await;
    }
    tracing::debug!(%sid, ?ending, "session ended");
}

/// How a failed write ends the session. A broken socket is a lost connection: the
/// participant waits for a resume. A client that stopped reading (the write deadline passed,
/// or its queue overflowed) is removed with `SIGNAL_CLOSE`, as the room does when a broadcast
/// finds it full; if the room removed it already, the leave finds nothing to do.
///
/// This is the one place a stalled client's disconnect is logged (the session's span names
/// the room and participant), whichever of the room's queues found it full.
fn failed(e: &WriteFailed) -> Ending {
    match e {
        WriteFailed::Broken => Ending::Lost,
        WriteFailed::Stalled | WriteFailed::Kicked => {
            let found_by =
                if matches!(e, WriteFailed::Stalled) { "the write deadline passed" } else { "its queue is full" };
            tracing::info!(found_by, "client stopped reading; disconnecting with SIGNAL_CLOSE");
            Ending::Left(DisconnectReason::SignalClose)
        }
    }
}

/// Sends the close frame, then reads (and drops) what the client still sends until its own
/// close frame arrives, for at most [`CLOSE_GRACE`]. Dropping a socket with unread input makes
/// the kernel reset the connection, and a reset can destroy the last frames (the leave) before
/// the client reads them.
async fn close_gracefully(socket: &mut WebSocket) {
    let handshake = async {
        socket.send(normal_close()).await?;
        while let Some(msg) = socket.recv().await {
            if matches!(msg?, Message::Close(_)) {
                break;
            }
        }
        Ok::<(), axum::Error>(())
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, handshake).await;
}

/// How long a closing session waits for the client's close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// A close frame with code 1000, as LiveKit closes: JS takes any other code (or none) as a
/// lost connection and starts reconnecting at once.
fn normal_close() -> Message {
    Message::Close(Some(axum::extract::ws::CloseFrame { code: 1000, reason: "".into() }))
}

/// Tells the room how a session ended, on every exit path: a leave, a lost socket (the
/// participant waits for a resume), or nothing when the room already let go. Being a `Drop`,
/// it also runs if the session task panics, so no participant is left attached to a socket
/// nobody serves.
struct Farewell {
    app: Arc<AppState>,
    home: Arc<Home>,
    key: SessionKey,
    ending: Ending,
}

impl Drop for Farewell {
    fn drop(&mut self) {
        match self.ending {
            Ending::Left(reason) => self.app.registry.end_session(&self.home, &self.key, SessionEnd::Left(reason)),
            Ending::Lost => self.app.registry.end_session(&self.home, &self.key, SessionEnd::Lost),
            Ending::Released => {}
        }
    }
}

/// Counts a running session for the server's shutdown; the count drops on every exit path.
struct SessionCount(Arc<std::sync::atomic::AtomicUsize>);

impl SessionCount {
    fn enter(count: &Arc<std::sync::atomic::AtomicUsize>) -> Self {
        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(Arc::clone(count))
    }
}

impl Drop for SessionCount {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Answers a resume we cannot honour: a leave asking for a full rejoin, then close.
pub async fn refuse_resume(mut socket: WebSocket, protocol: i32) {
    let leave = crate::rooms::membership::reconnect_leave(protocol, DisconnectReason::StateMismatch);
    if socket.send(Message::Binary(leave)).await.is_ok() {
        close_gracefully(&mut socket).await;
    }
}

/// What others are told of a client's own leave: the reasons a client may give (a callee
/// that was unavailable or declined, a failed agent) pass through, as LiveKit's; anything
/// else is CLIENT_INITIATED.
fn leave_reason(given: i32) -> DisconnectReason {
    match DisconnectReason::try_from(given) {
        Ok(r @ (DisconnectReason::UserUnavailable | DisconnectReason::UserRejected | DisconnectReason::AgentError)) => {
            r
        }
        _ => DisconnectReason::ClientInitiated,
    }
}

enum Handled {
    Reply(Bytes),
    Leave(DisconnectReason),
    Nothing,
}

/// One client request.
async fn handle(app: &AppState, home: &Home, key: &SessionKey, request: proto::SignalRequest) -> Handled {
    let reply = |m: Signal| Handled::Reply(Bytes::from(proto::SignalResponse { message: Some(m) }.encode_to_vec()));
    match request.message {
        Some(Request::Ping(_)) => reply(Signal::Pong(app.clock.now_ms())),
        Some(Request::PingReq(ping)) => {
            reply(Signal::PongResp(proto::Pong { last_ping_timestamp: ping.timestamp, timestamp: app.clock.now_ms() }))
        }
        Some(Request::Leave(leave)) => Handled::Leave(leave_reason(leave.reason)),
        // These change the room: the room answers through the session's queue, in order.
        Some(Request::AddTrack(req)) => {
            app.registry.with_session(home, key, |r| r.add_track(key, req)).await;
            Handled::Nothing
        }
        Some(Request::Mute(req)) => {
            app.registry.with_session(home, key, |r| r.client_mute(key, &req.sid, req.muted)).await;
            Handled::Nothing
        }
        Some(Request::UpdateMetadata(req)) => {
            app.registry.with_session(home, key, |r| r.update_own_metadata(key, req, &app.config.limit)).await;
            Handled::Nothing
        }
        Some(Request::Subscription(req)) => {
            app.registry.with_session(home, key, |r| r.client_subscription(key, &req)).await;
            Handled::Nothing
        }
        Some(Request::SyncState(state)) => {
            app.registry.with_session(home, key, |r| r.sync_state(key, &state)).await;
            Handled::Nothing
        }
        Some(other) => {
            tracing::debug!(request = ?std::mem::discriminant(&other), "signal request not served yet; ignored");
            Handled::Nothing
        }
        None => Handled::Nothing,
    }
}
