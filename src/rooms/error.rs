//! What can go wrong in the domain, said without HTTP.

/// A registry operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomError {
    /// No live room with that name.
    #[error("requested room does not exist")]
    RoomNotFound,
    /// No participant with that identity in the room.
    #[error("participant does not exist")]
    ParticipantNotFound,
    /// Unmuting by API while `room.enable_remote_unmute` is off.
    #[error("remote unmute not enabled")]
    RemoteUnmuteDisabled,
    /// The identity was removed with `revoke_token_ts` and this token is older.
    #[error("access token was revoked")]
    TokenRevoked,
    /// `max_participants` reached.
    #[error("room is full")]
    RoomFull,
    /// The participant cannot be moved or forwarded as asked (its client cannot follow, or its
    /// socket is gone).
    #[error("{0}")]
    CannotMove(&'static str),
    /// The participant is a forwarded copy here; changes go to its own room.
    #[error("participant is forwarded from another room; change it there")]
    Forwarded,
    /// The identity is already in the destination room.
    #[error("participant already exists in the destination room")]
    AlreadyInRoom,
    /// The request asks for something this build does not serve (egress, presets, data).
    #[error("{0}")]
    Unsupported(&'static str),
}
