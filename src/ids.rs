//! Identifier newtypes and server-assigned ids (`RM_…`, `PA_…`, `TR_…`).
//!
//! Maps are keyed by these types, never by bare `String`, so a room name cannot be passed where
//! an identity is expected.

use std::{borrow::Borrow, fmt};

use rand::Rng as _;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(String);

        impl $name {
            /// Wraps a string.
            pub fn new(s: impl Into<String>) -> Self {
                Self(s.into())
            }
            /// The underlying text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

string_id!(
    /// A room's name, chosen by the application.
    RoomName
);
string_id!(
    /// A room's server-assigned id, `RM_` + 12 characters.
    RoomSid
);
string_id!(
    /// A participant's identity, from its token.
    ParticipantIdentity
);
string_id!(
    /// One participant session's id, `PA_` + 12 characters.
    ParticipantSid
);
string_id!(
    /// A published track's id, `TR_` + kind letters + 12 characters.
    TrackSid
);

/// The alphabet LiveKit's ids draw from (no look-alike characters), 57 symbols.
const ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// `prefix` followed by 12 random characters from [`ALPHABET`].
pub fn random_id(prefix: &str) -> String {
    let mut rng = rand::rng();
    let mut s = String::with_capacity(prefix.len() + 12);
    s.push_str(prefix);
    for _ in 0..12 {
        s.push(char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]));
    }
    s
}

impl RoomSid {
    /// A fresh random room sid.
    pub fn generate() -> Self {
        Self(random_id("RM_"))
    }
}

impl ParticipantSid {
    /// A fresh random participant sid.
    pub fn generate() -> Self {
        Self(random_id("PA_"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids_have_livekit_shape() {
        let a = RoomSid::generate();
        let b = RoomSid::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 15);
        assert!(a.as_str().starts_with("RM_"));
        assert!(a.as_str()[3..].bytes().all(|c| ALPHABET.contains(&c)));
        assert!(ParticipantSid::generate().as_str().starts_with("PA_"));
    }
}
