//! Golden JSON: the exact shape LiveKit's Go Twirp server writes (protojson with proto field
//! names and every field emitted), which the SDKs parse. Each file under `tests/golden/` was
//! checked by hand against protojson's rules: int64/uint64 as strings, 32-bit integers as
//! numbers, enums by name, unset messages as `null`, empty lists `[]`, empty maps `{}`, bytes
//! as base64, proto3 `optional` fields omitted when unset.
//!
//! `UPDATE_GOLDEN=1 cargo test --test golden_json` rewrites the files (then review the diff).
#![allow(clippy::unwrap_used)] // tests fail loudly by design

use std::{collections::HashMap, path::PathBuf};

use serde::Serialize;
use usher::proto;

fn check<T: Serialize>(name: &str, msg: &T) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(format!("{name}.json"));
    let actual: serde_json::Value = serde_json::to_value(msg).unwrap();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(&actual).unwrap() + "\n").unwrap();
        return;
    }
    let golden: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
            .unwrap();
    assert_eq!(
        actual,
        golden,
        "{name}: JSON shape changed\nactual:\n{}",
        serde_json::to_string_pretty(&actual).unwrap()
    );
}

fn room() -> proto::Room {
    proto::Room {
        sid: "RM_abcdefghijkm".into(),
        name: "lobby".into(),
        empty_timeout: 300,
        departure_timeout: 20,
        max_participants: 0,
        creation_time: 1_800_000_000,
        creation_time_ms: 1_800_000_000_123,
        turn_password: String::new(),
        enabled_codecs: vec![proto::Codec { mime: "audio/opus".into(), fmtp_line: String::new() }],
        metadata: "{\"a\":1}".into(),
        num_participants: 2,
        num_publishers: 1,
        active_recording: false,
        version: None,
    }
}

fn participant() -> proto::ParticipantInfo {
    proto::ParticipantInfo {
        sid: "PA_abcdefghijkm".into(),
        identity: "alice".into(),
        state: proto::participant_info::State::Active as i32,
        tracks: vec![proto::TrackInfo {
            sid: "TR_AMabcdefghijkm".into(),
            r#type: proto::TrackType::Audio as i32,
            name: "mic".into(),
            muted: true,
            source: proto::TrackSource::Microphone as i32,
            mime_type: "audio/opus".into(),
            ..Default::default()
        }],
        metadata: "m".into(),
        joined_at: 1_800_000_000,
        joined_at_ms: 1_800_000_000_456,
        name: "Alice".into(),
        version: 7,
        permission: Some(proto::ParticipantPermission {
            can_subscribe: true,
            can_publish: true,
            can_publish_data: true,
            can_publish_sources: vec![proto::TrackSource::Camera as i32, proto::TrackSource::Microphone as i32],
            ..Default::default()
        }),
        is_publisher: true,
        attributes: HashMap::from([("role".to_string(), "host".to_string())]),
        ..Default::default()
    }
}

#[test]
fn room_shape() {
    check("room", &room());
    check("list_rooms_response", &proto::ListRoomsResponse { rooms: vec![room()] });
    check("list_rooms_response_empty", &proto::ListRoomsResponse::default());
}

#[test]
fn participant_shape() {
    check("participant_info", &participant());
    check("list_participants_response", &proto::ListParticipantsResponse { participants: vec![participant()] });
}

#[test]
fn empty_and_null_shapes() {
    check("delete_room_response", &proto::DeleteRoomResponse {});
    check("mute_room_track_response_no_track", &proto::MuteRoomTrackResponse { track: None });
    check(
        "send_data_request",
        &proto::SendDataRequest { room: "r".into(), data: b"hi!".to_vec(), nonce: vec![0; 16], ..Default::default() },
    );
}
