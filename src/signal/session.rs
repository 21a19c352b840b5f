//! One signalling session: the socket loop between a client and its room.
//!
//! The writer side drains the participant's bounded queue (frames the room produced, in the
//! room's order); the reader side answers pings itself and hands other requests to the
//! registry. The session ends when the client leaves (the participant leaves the room), the
//! socket is lost (closed without a leave, silent for the ping timeout, or too slow to write
//! to: the participant waits in the room for a resume), the room drops the participant or a
//! resume takes it over (the queue closes), or it is kicked for not reading. Cleanup runs
//! after the loop on every path.

use std::{sync::Arc, time::Duration};

use axum::extract::ws::{Message, WebSocket};
use bytes::Bytes;
use futures_util::SinkExt as _;
use prost::Message as _;
use tokio::time::Instant;

use crate::{
    app::AppState,
    ids::RoomName,
    proto::{self, DisconnectReason, signal_request::Message as Request, signal_response::Message as Signal},
    rooms::{Inbox, SessionKey, membership::PING_TIMEOUT_SECS},
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
    /// Socket error or the deadline passed.
    Broken,
    /// The room dropped the participant for not reading.
    Kicked,
}

/// Writes `first` and up to [`WRITE_BATCH`] more queued frames, then flushes once; bounded by
/// [`WRITE_DEADLINE`] and interrupted by a kick, so a client that stops reading can never
/// hold this task.
async fn write_batch(
    socket: &mut WebSocket,
    first: Message,
    frames: &mut tokio::sync::mpsc::Receiver<Bytes>,
    kick: &tokio::sync::Notify,
) -> Result<(), WriteFailed> {
    let write = async {
        socket.feed(first).await?;
        for _ in 0..WRITE_BATCH {
            let Ok(more) = frames.try_recv() else { break };
            socket.feed(Message::Binary(more)).await?;
        }
        socket.flush().await
    };
    tokio::select! {
        written = tokio::time::timeout(WRITE_DEADLINE, write) => match written {
            Ok(Ok(())) => Ok(()),
            _ => Err(WriteFailed::Broken),
        },
        () = kick.notified() => Err(WriteFailed::Kicked),
    }
}

/// Runs a joined session until it ends, then removes the participant (if still current).
///
/// One task owns the socket: `select!` drops the losing futures before a branch runs, so
/// reading and writing need no split (and no lock between halves). The silence timer is one
/// pinned `Sleep`, reset on each received message rather than re-created on every wake-up.
/// Every write goes through [`write_batch`] (deadline and kick), pongs included.
pub async fn run(mut socket: WebSocket, app: Arc<AppState>, room: RoomName, key: SessionKey, inbox: Inbox) {
    let _counted = SessionCount::enter(&app.sessions);
    let Inbox { mut frames, kick, .. } = inbox;
    let sid = &key.sid;
    let ping_timeout = Duration::from_secs(PING_TIMEOUT_SECS.unsigned_abs().into());
    let silence = tokio::time::sleep(ping_timeout);
    tokio::pin!(silence);
    let mut healthy = true;
    let ending = loop {
        tokio::select! {
            // No kick branch here: a kicked participant's queue is also closed, so this
            // branch wakes, and writes (the only place a stalled client can block us) watch
            // the kick.
            frame = frames.recv() => match frame {
                Some(frame) => {
                    if let Err(e) = write_batch(&mut socket, Message::Binary(frame), &mut frames, &kick).await {
                        healthy = false;
                        break failed(&e);
                    }
                }
                // The room let go of us (after queueing a leave, or for a resumed socket).
                None => break Ending::Released,
            },
            msg = socket.recv() => {
                silence.as_mut().reset(Instant::now() + ping_timeout);
                match msg {
                    Some(Ok(Message::Binary(data))) => match handle(&app, &room, &key, &data) {
                        Handled::Reply(frame) => {
                            if let Err(e) = write_batch(&mut socket, Message::Binary(frame), &mut frames, &kick).await {
                                healthy = false;
                                break failed(&e);
                            }
                        }
                        Handled::Leave(reason) => break Ending::Left(reason),
                        Handled::Nothing => {}
                    },
                    Some(Ok(Message::Text(_))) => {
                        tracing::debug!("JSON signal frames are not served yet; ignored");
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break Ending::Lost,
                }
            }
            () = &mut silence => {
                tracing::info!(%room, %sid, "no ping within the timeout; closing the session");
                break Ending::Lost;
            }
        }
    };
    match ending {
        Ending::Left(reason) => app.registry.leave(&room, &key, reason),
        Ending::Lost => app.registry.detach(&room, &key),
        Ending::Released => {}
    }
    // A stalled socket gets no close frame: writing it could block again.
    if healthy {
        let _ = tokio::time::timeout(WRITE_DEADLINE, socket.send(Message::Close(None))).await;
    }
    tracing::debug!(%room, %sid, ?ending, "session ended");
}

/// A failed write: a kicked client is already out of the room; anything else lost the socket.
fn failed(e: &WriteFailed) -> Ending {
    match e {
        WriteFailed::Kicked => Ending::Released,
        WriteFailed::Broken => Ending::Lost,
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
pub async fn refuse_resume(mut socket: WebSocket) {
    let leave = proto::SignalResponse {
        message: Some(Signal::Leave(proto::LeaveRequest {
            can_reconnect: true,
            reason: DisconnectReason::StateMismatch as i32,
            action: super::RESUME_ACTION as i32,
            regions: None,
        })),
    };
    let _ = socket.send(Message::Binary(Bytes::from(leave.encode_to_vec()))).await;
    let _ = socket.send(Message::Close(None)).await;
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

/// One client request. Undecodable frames are logged and ignored: the session goes on.
fn handle(app: &AppState, room: &RoomName, key: &SessionKey, data: &[u8]) -> Handled {
    let request = match proto::SignalRequest::decode(data) {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(error = %e, "undecodable signal frame ignored");
            return Handled::Nothing;
        }
    };
    let reply = |m: Signal| Handled::Reply(Bytes::from(proto::SignalResponse { message: Some(m) }.encode_to_vec()));
    match request.message {
        Some(Request::Ping(_)) => reply(Signal::Pong(app.clock.now_ms())),
        Some(Request::PingReq(ping)) => {
            reply(Signal::PongResp(proto::Pong { last_ping_timestamp: ping.timestamp, timestamp: app.clock.now_ms() }))
        }
        Some(Request::Leave(leave)) => Handled::Leave(leave_reason(leave.reason)),
        // These change the room: the room answers through the session's queue, in order.
        Some(Request::AddTrack(req)) => {
            app.registry.with_room(room, |r| r.add_track(key, req));
            Handled::Nothing
        }
        Some(Request::Mute(req)) => {
            app.registry.with_room(room, |r| r.client_mute(key, &req.sid, req.muted));
            Handled::Nothing
        }
        Some(Request::UpdateMetadata(req)) => {
            app.registry.with_room(room, |r| r.update_own_metadata(key, req, &app.config.limit));
            Handled::Nothing
        }
        Some(Request::Subscription(req)) => {
            app.registry.with_room(room, |r| r.client_subscription(key, &req));
            Handled::Nothing
        }
        Some(Request::SyncState(state)) => {
            app.registry.with_room(room, |r| r.sync_state(key, &state));
            Handled::Nothing
        }
        Some(other) => {
            tracing::debug!(request = ?std::mem::discriminant(&other), "signal request not served yet; ignored");
            Handled::Nothing
        }
        None => Handled::Nothing,
    }
}
