//! Compiles `proto/` into Rust types (prost) and their JSON forms (pbjson).
//!
//! protox is a pure-Rust protobuf compiler, so building Usher needs no `protoc`. The JSON
//! side is configured the way LiveKit's Go Twirp server answers: proto field names
//! (`num_participants`, not `numParticipants`) and every field emitted, defaults included.
//! Inputs are lenient: both spellings are accepted and unknown fields are ignored.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/livekit_models.proto",
        "proto/livekit_room.proto",
        "proto/livekit_rtc.proto",
        "proto/livekit_webhook.proto",
    ];
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(files, ["proto"])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    let descriptor_path = out.join("livekit_descriptor.bin");
    std::fs::write(&descriptor_path, prost::Message::encode_to_vec(&descriptors))?;

    prost_build::Config::new().compile_fds(descriptors)?;

    let descriptor_bytes = std::fs::read(&descriptor_path)?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptor_bytes)?
        .preserve_proto_field_names()
        .emit_fields()
        .ignore_unknown_fields()
        .build(&[".livekit"])?;
    Ok(())
}
