//! Access tokens: what they claim, how they are verified, minted and checked against RPCs.
//!
//! Authentication happens once per request in [`layer`] (token → [`Claims`] in the request
//! extensions). Authorization is a set of pure functions in [`grants`] that each RPC calls with
//! the claims and the room it touches.

pub mod claims;
pub mod grants;
pub mod layer;
pub mod mint;
pub mod verify;

pub use claims::{Claims, VideoGrant};
pub use grants::GrantError;
pub use verify::{AuthError, TokenVerifier};
