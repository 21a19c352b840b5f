//! The body LiveKit sends: a `WebhookEvent` as protobuf JSON with protojson's default
//! options, which differ from Twirp's: lowerCamelCase names and default values left out —
//! except enums at their zero value (written by name) and 64-bit zeros (written as "0"),
//! which look like data without the schema. Every protobuf JSON parser reads both forms.

use serde_json::{Map, Value};

use crate::proto;

/// The JSON body for `event`.
pub fn body(event: &proto::WebhookEvent) -> serde_json::Result<Vec<u8>> {
    let mut value = serde_json::to_value(event)?;
    tidy(&mut value, true);
    serde_json::to_vec(&value)
}

/// lowerCamelCase keys (except inside map fields such as `attributes`, whose keys are data)
/// and no default values.
fn tidy(value: &mut Value, rename: bool) {
    match value {
        Value::Object(map) => {
            let old = std::mem::take(map);
            let mut out = Map::new();
            for (key, mut v) in old {
                // Inside a map field the keys and values are data: kept as they are.
                if rename {
                    let data_map = key == "attributes";
                    tidy(&mut v, !data_map);
                    if is_default(&v) {
                        continue;
                    }
                    out.insert(camel(&key), v);
                } else {
                    out.insert(key, v);
                }
            }
            *map = out;
        }
        Value::Array(items) => items.iter_mut().for_each(|v| tidy(v, true)),
        _ => {}
    }
}

fn is_default(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        // 64-bit zeros come as "0" but so could a name: strings are kept unless empty.
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

fn camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn camel_case_without_defaults_and_attribute_keys_kept() {
        let event = proto::WebhookEvent {
            event: "participant_joined".into(),
            id: "EV_x".into(),
            created_at: 1_700_000_000,
            room: Some(proto::Room { name: "r".into(), num_participants: 2, ..Default::default() }),
            participant: Some(proto::ParticipantInfo {
                identity: "a".into(),
                joined_at_ms: 5,
                name: "0".into(),
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
        assert!(v.get("numDropped").is_none() && v["room"].get("metadata").is_none());
        assert!(v.get("track").is_none(), "unset messages are left out");
    }
}
