//! Twirp request decoding and response encoding, protobuf or JSON by `Content-Type`.

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::{Serialize, de::DeserializeOwned};

use super::error::TwirpError;
use crate::rooms::{Snapshot, SnapshotList};

/// Wire encoding of one call; the response uses the request's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/protobuf`.
    Protobuf,
    /// `application/json`: proto field names in, proto field names with defaults out.
    Json,
}

/// Picks the encoding from `Content-Type`: lower-cased, parameters after `;` dropped.
pub fn encoding_of(headers: &HeaderMap, method: &str, path: &str) -> Result<Encoding, TwirpError> {
    // Compared in place: no copies on the way to a handler.
    let raw = headers.get(header::CONTENT_TYPE).map_or(&[][..], |v| v.as_bytes());
    let essence = raw.split(|b| *b == b';').next().unwrap_or_default().trim_ascii();
    if essence.eq_ignore_ascii_case(b"application/protobuf") {
        Ok(Encoding::Protobuf)
    } else if essence.eq_ignore_ascii_case(b"application/json") {
        Ok(Encoding::Json)
    } else {
        let raw = String::from_utf8_lossy(raw);
        Err(TwirpError::bad_route(format!("unexpected Content-Type: {raw:?}"), method, path))
    }
}

/// Decodes a request body. An empty protobuf body is a valid empty message; an empty JSON body
/// is not. For JSON only the first value counts (trailing bytes are ignored, as Go's decoder).
pub fn decode<T>(encoding: Encoding, body: &[u8]) -> Result<T, TwirpError>
where
    T: prost::Message + Default + DeserializeOwned,
{
    match encoding {
        Encoding::Protobuf => T::decode(body).map_err(|e| {
            tracing::debug!(error = %e, "undecodable protobuf request");
            TwirpError::malformed("the protobuf request could not be decoded")
        }),
        Encoding::Json => {
            let malformed = |e: &dyn std::fmt::Display| {
                tracing::debug!(error = %e, "undecodable JSON request");
                TwirpError::malformed("the json request could not be decoded")
            };
            let mut value = match serde_json::Deserializer::from_slice(body).into_iter::<serde_json::Value>().next() {
                Some(Ok(v)) => v,
                Some(Err(e)) => return Err(malformed(&e)),
                None => return Err(malformed(&"empty body")),
            };
            // Go's protojson reads `null` as "field not set"; pbjson refuses it. Dropping null
            // members first makes `{"name": null}` mean what LiveKit's server takes it to mean.
            drop_null_members(&mut value);
            T::deserialize(value).map_err(|e| malformed(&e))
        }
    }
}

/// A response body that can be written in either encoding.
///
/// Every generated message is one. Replies built from snapshots implement it themselves so
/// that protobuf answers reuse bytes encoded once per change instead of per request.
pub trait Reply {
    /// Protobuf bytes.
    fn to_protobuf(&self) -> Bytes;
    /// JSON the way LiveKit's Go server writes it (proto names, defaults emitted).
    fn to_json(&self) -> serde_json::Result<Vec<u8>>;
}

impl<T: prost::Message + Serialize> Reply for T {
    fn to_protobuf(&self) -> Bytes {
        Bytes::from(self.encode_to_vec())
    }
    fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(self)
    }
}

/// One message, answered from its snapshot.
pub struct OneReply<M>(pub Arc<Snapshot<M>>);

impl<M: Serialize> Reply for OneReply<M> {
    fn to_protobuf(&self) -> Bytes {
        self.0.encoded.clone()
    }
    fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(&self.0.proto)
    }
}

/// A list response (`ListRoomsResponse`, `ListParticipantsResponse`: field 1, repeated,
/// JSON key `key`) answered from a [`SnapshotList`]: protobuf replies are its stored bytes.
pub struct ListReply<M> {
    /// JSON name of the repeated field.
    pub key: &'static str,
    /// The entries and their encoding.
    pub list: Arc<SnapshotList<M>>,
}

impl<M: Serialize> Reply for ListReply<M> {
    fn to_protobuf(&self) -> Bytes {
        self.list.encoded.clone()
    }
    fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        // `{"<key>": [...]}`, each entry serialized in place (field order kept, no detour
        // through `serde_json::Value`).
        struct Body<'a, M>(&'static str, &'a [Arc<Snapshot<M>>]);
        impl<M: Serialize> Serialize for Body<'_, M> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap as _;
                let items: Vec<&M> = self.1.iter().map(|r| &r.proto).collect();
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry(self.0, &items)?;
                map.end()
            }
        }
        serde_json::to_vec(&Body(self.key, &self.list.items))
    }
}

/// Removes object members whose value is `null`, at every depth.
fn drop_null_members(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_null_members);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(drop_null_members),
        _ => {}
    }
}

/// Encodes a successful response in the request's encoding.
pub fn encode<T: Reply>(encoding: Encoding, msg: &T) -> Response {
    let (body, content_type) = match encoding {
        Encoding::Protobuf => (msg.to_protobuf(), "application/protobuf"),
        Encoding::Json => match msg.to_json() {
            Ok(v) => (Bytes::from(v), "application/json"),
            Err(e) => {
                tracing::error!(error = %e, "response JSON encoding failed");
                return TwirpError::new(super::error::Code::Internal, "response encoding failed").into_response();
            }
        },
    };
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto;

    fn headers(ct: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(ct) = ct {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        }
        h
    }

    #[test]
    fn snapshot_replies_encode_like_the_generated_messages() {
        let rooms: Vec<_> = ["a", "b"]
            .iter()
            .map(|n| Snapshot::new(proto::Room { name: (*n).into(), metadata: "m".repeat(200), ..Default::default() }))
            .collect();
        let plain = proto::ListRoomsResponse { rooms: rooms.iter().map(|r| r.proto.clone()).collect() };
        let reply = ListReply { key: "rooms", list: Arc::new(SnapshotList::new(rooms.clone())) };
        assert_eq!(reply.to_protobuf(), plain.to_protobuf());
        assert_eq!(reply.to_json().unwrap(), plain.to_json().unwrap());
        assert_eq!(
            ListReply::<proto::Room> { key: "rooms", list: Arc::new(SnapshotList::new(Vec::new())) }.to_protobuf(),
            proto::ListRoomsResponse::default().to_protobuf()
        );
        let people = vec![Snapshot::new(proto::ParticipantInfo { identity: "p".into(), ..Default::default() })];
        let plain = proto::ListParticipantsResponse { participants: vec![people[0].proto.clone()] };
        let reply = ListReply { key: "participants", list: Arc::new(SnapshotList::new(people)) };
        assert_eq!(reply.to_protobuf(), plain.to_protobuf());
        assert_eq!(reply.to_json().unwrap(), plain.to_json().unwrap());
        let one = OneReply(Arc::clone(&rooms[0]));
        assert_eq!(one.to_protobuf(), rooms[0].proto.to_protobuf());
        assert_eq!(one.to_json().unwrap(), rooms[0].proto.to_json().unwrap());
    }

    #[test]
    fn content_type_rules() {
        let ok = |ct| encoding_of(&headers(Some(ct)), "POST", "/p");
        assert_eq!(ok("application/protobuf"), Ok(Encoding::Protobuf));
        assert_eq!(ok("Application/JSON; charset=UTF-8"), Ok(Encoding::Json));
        assert_eq!(ok(" application/json ;x"), Ok(Encoding::Json));
        let err = ok("text/plain").unwrap_err();
        assert_eq!(err.msg, "unexpected Content-Type: \"text/plain\"");
        let err = encoding_of(&headers(None), "POST", "/p").unwrap_err();
        assert_eq!(err.msg, "unexpected Content-Type: \"\"");
    }

    #[test]
    fn json_accepts_both_spellings_and_ignores_unknown_fields() {
        let a: proto::CreateRoomRequest =
            decode(Encoding::Json, br#"{"name":"r","empty_timeout":5,"maxParticipants":7,"bogus":{"x":1}}"#).unwrap();
        assert_eq!((a.name.as_str(), a.empty_timeout, a.max_participants), ("r", 5, 7));
        // Trailing bytes after the first value are ignored.
        let b: proto::DeleteRoomRequest = decode(Encoding::Json, br#"{"room":"x"} garbage"#).unwrap();
        assert_eq!(b.room, "x");
    }

    #[test]
    fn json_null_means_unset_as_in_go() {
        let r: proto::CreateRoomRequest = decode(
            Encoding::Json,
            br#"{"name":"r","metadata":null,"agents":null,"tags":null,"egress":null,"empty_timeout":null}"#,
        )
        .unwrap();
        assert_eq!(r, proto::CreateRoomRequest { name: "r".into(), ..Default::default() });
        let l: proto::ListRoomsRequest = decode(Encoding::Json, br#"{"names":null}"#).unwrap();
        assert!(l.names.is_empty());
        let u: proto::UpdateParticipantRequest =
            decode(Encoding::Json, br#"{"permission":{"can_publish":null,"hidden":true}}"#).unwrap();
        assert_eq!(u.permission.map(|p| (p.can_publish, p.hidden)), Some((false, true)));
    }

    #[test]
    fn bad_bodies_are_malformed() {
        for body in [&b""[..], b"{", b"[1,2]", b"{\"name\":5}", b"\xff\xfe"] {
            let e = decode::<proto::CreateRoomRequest>(Encoding::Json, body).unwrap_err();
            assert_eq!(e.code, super::super::error::Code::Malformed, "{body:?}");
        }
        // Field 1 (string) with a length running past the end.
        let e = decode::<proto::CreateRoomRequest>(Encoding::Protobuf, b"\x0a\x10ab").unwrap_err();
        assert_eq!(e.msg, "the protobuf request could not be decoded");
        assert!(decode::<proto::CreateRoomRequest>(Encoding::Protobuf, b"").is_ok());
    }

    #[test]
    fn json_responses_use_proto_names_and_emit_defaults() {
        let room = proto::Room { name: "r".into(), creation_time: 17, ..Default::default() };
        let v: serde_json::Value = serde_json::to_value(&room).unwrap();
        assert_eq!(v["name"], "r");
        assert_eq!(v["num_participants"], 0);
        assert_eq!(v["creation_time"], "17", "int64 travels as a JSON string");
        assert_eq!(v["metadata"], "");
        assert_eq!(v["enabled_codecs"], serde_json::json!([]));
        assert!(v.get("numParticipants").is_none());
        // Unset message fields are `null`, as Go's protojson writes them; proto3 `optional`
        // scalars stay omitted.
        assert_eq!(v.get("version"), Some(&serde_json::Value::Null));
        let data = serde_json::to_value(proto::SendDataRequest::default()).unwrap();
        assert!(data.get("topic").is_none());
        let back: proto::Room = serde_json::from_value(v).unwrap();
        assert_eq!(back, room);
    }
}
