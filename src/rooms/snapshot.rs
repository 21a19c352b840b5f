//! Shared, pre-encoded views of domain objects.
//!
//! A room or participant builds its API message once per change, together with that message's
//! protobuf bytes. Readers (List/Get RPCs, JoinResponses) take an `Arc` under the room lock and
//! encode nothing; protobuf replies concatenate the stored bytes.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message;

/// A message and its protobuf encoding, made together.
#[derive(Debug, PartialEq)]
pub struct Snapshot<M> {
    /// The message.
    pub proto: M,
    /// Its protobuf encoding.
    pub encoded: Bytes,
}

impl<M: Message> Snapshot<M> {
    /// Encodes `proto` once and shares both.
    pub fn new(proto: M) -> Arc<Self> {
        let encoded = Bytes::from(proto.encode_to_vec());
        Arc::new(Self { proto, encoded })
    }
}
