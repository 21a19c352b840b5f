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

/// Snapshots in order, with the protobuf encoding of the list message that carries them as
/// its field 1 (`ListRoomsResponse.rooms`, `ListParticipantsResponse.participants`).
#[derive(Debug)]
pub struct SnapshotList<M> {
    /// The entries.
    pub items: Vec<Arc<Snapshot<M>>>,
    /// `items` as a list message's field 1, from their stored bytes.
    pub encoded: Bytes,
}

impl<M> SnapshotList<M> {
    /// Frames each entry's stored bytes as field 1 of a message.
    pub fn new(items: Vec<Arc<Snapshot<M>>>) -> Self {
        use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};
        let len: usize =
            items.iter().map(|r| key_len(1) + encoded_len_varint(r.encoded.len() as u64) + r.encoded.len()).sum();
        let mut buf = bytes::BytesMut::with_capacity(len);
        for item in &items {
            encode_key(1, WireType::LengthDelimited, &mut buf);
            encode_varint(item.encoded.len() as u64, &mut buf);
            buf.extend_from_slice(&item.encoded);
        }
        Self { items, encoded: buf.freeze() }
    }

    /// Whether this list holds exactly `current`, entry by entry. Snapshots are immutable and
    /// replaced on every change, and the list keeps its entries alive (so no new snapshot can
    /// reuse an address), so pointer equality means equal content: no atomics, no compare.
    pub fn is_current<'a>(&self, current: impl ExactSizeIterator<Item = &'a Arc<Snapshot<M>>>) -> bool
    where
        M: 'a,
    {
        current.len() == self.items.len() && current.zip(&self.items).all(|(a, b)| Arc::ptr_eq(a, b))
    }
}
