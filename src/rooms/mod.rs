//! The domain: rooms and (next) the participants in them. Knows nothing of HTTP or Twirp.
//!
//! [`Registry`] is the cheap-clone handle every protocol layer holds. Each room sits behind its
//! own short synchronous lock; nothing awaits while a room is held. Methods on [`room::Room`]
//! take `now` and change state; the registry decides which room to lock.

mod changes;
pub mod error;
pub mod events;
mod forwards;
pub mod limits;
pub mod membership;
mod moves;
pub mod participant;
pub mod registry;
mod resume;
pub mod room;
pub mod snapshot;
mod subscriptions;
#[cfg(test)]
mod testkit;

pub use changes::ParticipantChange;
pub use error::RoomError;
pub use limits::LimitError;
pub use participant::{ConnectionId, Home, Inbox, JoinSpec, Outbox, SessionEnd, SessionKey};
pub use registry::{CreateOutcome, CreateRequest, Registry, RoomDefaults};
pub use room::{Room, RoomSnapshot, RoomSpec};
pub use snapshot::{Snapshot, SnapshotList};

/// A participant as the API reports it, built once per change.
pub type ParticipantSnapshot = Snapshot<crate::proto::ParticipantInfo>;
