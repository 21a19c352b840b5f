//! Our `proto/` against the official `livekit-protocol` crate: every RoomService message, filled
//! in every field (one run per oneof member), must survive protobuf and JSON trips through the
//! other side's types unchanged. A slipped field number, a wrong type, or a misspelt JSON name
//! makes the other side drop or change the value, and the comparison fails.
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, Value};

fn pool() -> DescriptorPool {
    DescriptorPool::decode(usher::proto::DESCRIPTOR_SET).expect("our descriptor set decodes")
}

/// A distinct non-default value for a field, derived from its number (so values differ).
fn sample(field: &FieldDescriptor, variant: usize, depth: usize) -> Option<Value> {
    let n = field.number();
    Some(match field.kind() {
        Kind::Double => Value::F64(f64::from(n) + 0.5),
        Kind::Float => Value::F32(n as f32 + 0.25),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(-(n as i32) - 1),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(-(i64::from(n)) - 1_000_000_000_000),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(n + 7),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(u64::from(n) + 9_000_000_000_000),
        Kind::Bool => Value::Bool(true),
        Kind::String => Value::String(format!("{}-{n}", field.name())),
        Kind::Bytes => Value::Bytes(vec![n as u8, 0xff, 0x00, 0x10].into()),
        Kind::Enum(e) => Value::EnumNumber(e.values().map(|v| v.number()).filter(|v| *v != 0).last().unwrap_or(0)),
        Kind::Message(m) => {
            if depth >= 3 {
                return None;
            }
            Value::Message(filled(&m, variant, depth + 1))
        }
    })
}

/// `desc` with every field set; for each oneof, member number `variant` (wrapping).
fn filled(desc: &MessageDescriptor, variant: usize, depth: usize) -> DynamicMessage {
    let mut msg = DynamicMessage::new(desc.clone());
    for field in desc.fields() {
        if let Some(oneof) = field.containing_oneof().filter(|o| !o.is_synthetic()) {
            let members: Vec<_> = oneof.fields().collect();
            if members[variant % members.len()].number() != field.number() {
                continue;
            }
        }
        if field.is_map() {
            let Kind::Message(entry) = field.kind() else { continue };
            let (k, v) = (entry.map_entry_key_field(), entry.map_entry_value_field());
            let Some(value) = sample(&v, variant, depth) else {
                continue;
            };
            let key = match sample(&k, variant, depth) {
                Some(Value::String(s)) => MapKey::String(s),
                Some(Value::I32(i)) => MapKey::I32(i),
                Some(Value::U32(i)) => MapKey::U32(i),
                Some(Value::I64(i)) => MapKey::I64(i),
                Some(Value::U64(i)) => MapKey::U64(i),
                Some(Value::Bool(b)) => MapKey::Bool(b),
                _ => continue,
            };
            msg.set_field(&field, Value::Map([(key, value)].into()));
        } else if field.is_list() {
            let Some(one) = sample(&field, variant, depth) else {
                continue;
            };
            msg.set_field(&field, Value::List(vec![one.clone(), one]));
        } else if let Some(v) = sample(&field, variant, depth) {
            msg.set_field(&field, v);
        }
    }
    msg
}

/// `path = value` lines for every set field, for short failure reports.
fn flat(msg: &DynamicMessage) -> Vec<String> {
    fn walk(msg: &DynamicMessage, prefix: &str, out: &mut Vec<String>) {
        for (field, value) in msg.fields() {
            let path = format!("{prefix}{}", field.name());
            match value {
                Value::Message(m) => walk(m, &format!("{path}."), out),
                Value::List(items) => {
                    for (i, item) in items.iter().enumerate() {
                        match item {
                            Value::Message(m) => walk(m, &format!("{path}[{i}]."), out),
                            other => out.push(format!("{path}[{i}] = {other:?}")),
                        }
                    }
                }
                other => out.push(format!("{path} = {other:?}")),
            }
        }
    }
    let mut out = Vec::new();
    walk(msg, "", &mut out);
    out
}

fn max_oneof_members(desc: &MessageDescriptor) -> usize {
    desc.oneofs().filter(|o| !o.is_synthetic()).map(|o| o.fields().len()).max().unwrap_or(1)
}

/// Runs the trips for one message type pair.
fn check<Ours, Theirs>(name: &str)
where
    Ours: prost::Message + Default + PartialEq + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned,
    Theirs: prost::Message + Default + serde::Serialize + serde::de::DeserializeOwned,
{
    let pool = pool();
    let desc = pool.get_message_by_name(&format!("livekit.{name}")).unwrap_or_else(|| panic!("{name} in our protos"));
    for variant in 0..max_oneof_members(&desc) {
        let expected = filled(&desc, variant, 0);
        let bytes = expected.encode_to_vec();
        let back = |bytes: &[u8], via: &str| {
            let got = DynamicMessage::decode(desc.clone(), bytes).unwrap_or_else(|e| panic!("{name} via {via}: {e}"));
            if got != expected {
                let (want, have) = (flat(&expected), flat(&got));
                let lost: Vec<_> = want.iter().filter(|l| !have.contains(l)).collect();
                let new: Vec<_> = have.iter().filter(|l| !want.contains(l)).collect();
                panic!(
                    "{name} (variant {variant}) changed on the trip via {via}:\n lost: {lost:#?}\n gained: {new:#?}"
                );
            }
        };

        // Protobuf: theirs decodes our bytes and re-encodes the same values.
        let theirs =
            Theirs::decode(bytes.as_slice()).unwrap_or_else(|e| panic!("{name}: theirs rejects our bytes: {e}"));
        back(&theirs.encode_to_vec(), "livekit-protocol protobuf");
        let ours = Ours::decode(bytes.as_slice()).expect("ours decodes");
        back(&ours.encode_to_vec(), "usher protobuf");

        // Our JSON (proto names, defaults emitted) read by theirs.
        let json = serde_json::to_string(&ours).expect("ours to JSON");
        let theirs: Theirs =
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("{name}: theirs rejects our JSON: {e}\n{json}"));
        back(&theirs.encode_to_vec(), "usher JSON → livekit-protocol");

        // Their JSON (camelCase, defaults omitted) read by ours.
        let json = serde_json::to_string(&theirs).expect("theirs to JSON");
        let ours2: Ours =
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("{name}: we reject their JSON: {e}\n{json}"));
        assert_eq!(ours2, ours, "{name}: their JSON read differently");
    }
}

macro_rules! roundtrip {
    ($($name:ident),* $(,)?) => {
        $( check::<usher::proto::$name, livekit_protocol::$name>(stringify!($name)); )*
    };
}

#[test]
fn room_service_messages_match_livekit_protocol() {
    roundtrip!(
        CreateRoomRequest,
        Room,
        ListRoomsRequest,
        ListRoomsResponse,
        DeleteRoomRequest,
        DeleteRoomResponse,
        ListParticipantsRequest,
        ListParticipantsResponse,
        RoomParticipantIdentity,
        ParticipantInfo,
        RemoveParticipantResponse,
        MuteRoomTrackRequest,
        MuteRoomTrackResponse,
        UpdateParticipantRequest,
        UpdateSubscriptionsRequest,
        UpdateSubscriptionsResponse,
        SendDataRequest,
        SendDataResponse,
        UpdateRoomMetadataRequest,
        ForwardParticipantRequest,
        ForwardParticipantResponse,
        MoveParticipantRequest,
        MoveParticipantResponse,
        PerformRpcRequest,
        PerformRpcResponse,
    );
}

#[test]
fn signal_and_webhook_messages_match_livekit_protocol() {
    roundtrip!(SignalRequest, SignalResponse, WebhookEvent, DataPacket, TrackInfo, ParticipantPermission);
}

#[test]
fn every_room_service_method_is_covered() {
    let pool = pool();
    let svc = pool.get_service_by_name("livekit.RoomService").expect("service");
    let methods: Vec<_> = svc.methods().map(|m| m.name().to_string()).collect();
    assert_eq!(methods, usher::twirp::room_service::METHODS);
}
