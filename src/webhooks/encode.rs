//! The body LiveKit sends: a `WebhookEvent` as protobuf JSON with protojson's default
//! options, which differ from Twirp's: lowerCamelCase names, default values left out, enums
//! by name, 64-bit integers as strings. Written through the message's descriptor (the one
//! `build.rs` embeds), so "default" means what the schema says, not what a value looks like.

use std::sync::OnceLock;

use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions};

use crate::proto;

fn descriptor() -> Option<&'static MessageDescriptor> {
    static DESCRIPTOR: OnceLock<Option<MessageDescriptor>> = OnceLock::new();
    DESCRIPTOR
        .get_or_init(|| DescriptorPool::decode(proto::DESCRIPTOR_SET).ok()?.get_message_by_name("livekit.WebhookEvent"))
        .as_ref()
}

/// The JSON body for `event`.
pub fn body(event: &proto::WebhookEvent) -> Result<Vec<u8>, String> {
    let desc = descriptor().ok_or("the WebhookEvent descriptor is missing")?.clone();
    let message = DynamicMessage::decode(desc, event.encode_to_vec().as_slice()).map_err(|e| e.to_string())?;
    let mut out = serde_json::Serializer::new(Vec::new());
    message.serialize_with_options(&mut out, &SerializeOptions::new()).map_err(|e| e.to_string())?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::Value;

    use super::*;

    #[test]
    fn protojson_defaults_camel_case_and_data_kept() {
        let event = proto::WebhookEvent {
            event: "participant_joined".into(),
            id: "EV_x".into(),
            created_at: 1_700_000_000,
            room: Some(proto::Room { name: "r".into(), num_participants: 2, ..Default::default() }),
            participant: Some(proto::ParticipantInfo {
                identity: "a".into(),
                name: "0".into(),
                joined_at_ms: 5,
                attributes: [("snake_key".to_string(), "v".to_string()), ("zero".to_string(), "0".to_string())].into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let v: Value = serde_json::from_slice(&body(&event).unwrap()).unwrap();
        assert_eq!(v["createdAt"], "1700000000");
        assert_eq!(v["room"]["numParticipants"], 2);
        assert_eq!(v["participant"]["joinedAtMs"], "5");
        assert_eq!(v["participant"]["attributes"]["snake_key"], "v");
        assert_eq!(v["participant"]["attributes"]["zero"], "0", "map values are data");
        assert_eq!(v["participant"]["name"], "0", "a name of \"0\" is a name");
        assert!(v["participant"].get("state").is_none(), "enums at zero are left out");
        assert!(v["participant"].get("joinedAt").is_none(), "64-bit zeros are left out");
        assert!(v.get("numDropped").is_none() && v["room"].get("metadata").is_none());
        assert!(v.get("track").is_none(), "unset messages are left out");
    }
}
