//! Usher: a self-hosted room and participant server that speaks LiveKit's wire protocols.
//!
//! # Map of the crate
//!
//! ```text
//!               main.rs (CLI: serve, token)   cli.rs (flags → config::Overrides)
//!                  │
//!              server.rs ── binds listeners, runs http::service until shutdown
//!              http.rs   ── the axum service: one front middleware (span, CORS, panic guard,
//!                           body limit, auth), then the routes
//!                  │
//!     twirp/ ── RoomService over Twirp        signal/ ── the /rtc WebSocket: validation,
//!               (routing, codec, errors,                 join, the per-session socket loop
//!                the 14 handlers)
//!                  │
//!               rooms/   ── the domain: registry of rooms, room state, membership
//!                           (who is in a room, who is told what), resume, moves,
//!                           forwards, limits; events for the backend go out through a port
//!                  │                                       │
//!                  │                         webhooks/ ── signs and delivers them, per room
//!                  │                                      in order, retried
//!     auth/ (tokens, grants)   config/ (LiveKit YAML)   ids.rs   clock.rs   proto (generated)
//! ```
//!
//! # The rule between layers
//!
//! Arrows point down only. `rooms` knows nothing of HTTP, Twirp or sockets: its methods are
//! synchronous (one exception, `Registry::with_session`, yields to the runtime while the
//! participant's move is between its two phases), take `now`, and return plain values or a
//! [`rooms::RoomError`]. Protocol layers
//! (`twirp`, `signal`) decode, check grants with [`auth::grants`], call the registry once, and
//! encode. The room pushes encoded frames into each session's bounded queue while it holds its
//! lock, so every session sees changes in the room's order; socket I/O happens outside it.
//! Errors become Twirp responses in exactly one place, [`twirp::error`].
//!
//! # Concurrency
//!
//! The registry maps room names to rooms behind short `parking_lot` locks. Never hold a lock
//! across `.await`, never hold two room locks; clippy's `await_holding_lock` is denied.

pub mod app;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod http;
pub mod ids;
pub mod proto;
pub mod rooms;
pub mod server;
pub mod signal;
pub mod twirp;
pub mod webhooks;
