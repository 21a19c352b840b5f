//! Authorization: which grants each RoomService call needs. Pure functions of the claims.
//!
//! Every failure is the same to the caller (LiveKit answers 401 `permissions denied`, never
//! 403), but the variant says why for our logs.

use super::Claims;

/// A request lacked a grant it needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// No token was presented.
    #[error("no access token")]
    NoToken,
    /// The token lacks the named grant, or it is scoped to another room.
    #[error("token lacks {0}")]
    Missing(&'static str),
}

fn claims(c: Option<&Claims>) -> Result<&Claims, GrantError> {
    c.ok_or(GrantError::NoToken)
}

/// CreateRoom and DeleteRoom need `roomCreate`.
pub fn ensure_create(c: Option<&Claims>) -> Result<(), GrantError> {
    if claims(c)?.video().room_create { Ok(()) } else { Err(GrantError::Missing("roomCreate")) }
}

/// ListRooms needs `roomList`.
pub fn ensure_list(c: Option<&Claims>) -> Result<(), GrantError> {
    if claims(c)?.video().room_list { Ok(()) } else { Err(GrantError::Missing("roomList")) }
}

/// Per-room calls need `roomAdmin` for exactly that room (case-sensitive compare).
pub fn ensure_admin(c: Option<&Claims>, room: &str) -> Result<(), GrantError> {
    let v = claims(c)?.video();
    if !v.room_admin {
        return Err(GrantError::Missing("roomAdmin"));
    }
    if v.room != room {
        return Err(GrantError::Missing("roomAdmin for this room"));
    }
    Ok(())
}

/// Move/Forward also need `destinationRoom` equal to the request's destination.
pub fn ensure_destination(c: Option<&Claims>, room: &str, destination: &str) -> Result<(), GrantError> {
    ensure_admin(c, room)?;
    if claims(c)?.video().destination_room != destination {
        return Err(GrantError::Missing("destinationRoom for this room"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::VideoGrant;

    fn with(v: VideoGrant) -> Claims {
        Claims { video: Some(v), ..Default::default() }
    }

    #[test]
    fn create_and_list_are_separate_grants() {
        let create = with(VideoGrant { room_create: true, ..Default::default() });
        let list = with(VideoGrant { room_list: true, ..Default::default() });
        assert!(ensure_create(Some(&create)).is_ok());
        assert!(ensure_list(Some(&create)).is_err());
        assert!(ensure_list(Some(&list)).is_ok());
        assert!(ensure_create(Some(&list)).is_err());
        assert_eq!(ensure_create(None), Err(GrantError::NoToken));
        assert!(ensure_create(Some(&Claims::default())).is_err());
    }

    #[test]
    fn admin_is_scoped_to_one_room() {
        let admin = with(VideoGrant { room_admin: true, room: "a".into(), ..Default::default() });
        assert!(ensure_admin(Some(&admin), "a").is_ok());
        assert!(ensure_admin(Some(&admin), "A").is_err());
        assert!(ensure_admin(Some(&admin), "b").is_err());
        assert!(ensure_admin(Some(&admin), "").is_err());
        // An unscoped admin token passes only for the empty room name, as LiveKit.
        let unscoped = with(VideoGrant { room_admin: true, ..Default::default() });
        assert!(ensure_admin(Some(&unscoped), "").is_ok());
        assert!(ensure_admin(Some(&unscoped), "a").is_err());
        // roomCreate does not imply admin.
        let create = with(VideoGrant { room_create: true, room: "a".into(), ..Default::default() });
        assert!(ensure_admin(Some(&create), "a").is_err());
    }

    #[test]
    fn destination_must_match_too() {
        let t =
            with(VideoGrant { room_admin: true, room: "a".into(), destination_room: "b".into(), ..Default::default() });
        assert!(ensure_destination(Some(&t), "a", "b").is_ok());
        assert!(ensure_destination(Some(&t), "a", "c").is_err());
        assert!(ensure_destination(Some(&t), "x", "b").is_err());
    }
}
