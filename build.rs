//! Compiles `proto/` into Rust types (prost) and their JSON forms (pbjson).
//!
//! protox is a pure-Rust protobuf compiler, so building Usher needs no `protoc`. The JSON
//! side is configured the way LiveKit's Go Twirp server answers: proto field names
//! (`num_participants`, not `numParticipants`) and every field emitted, defaults included.
//! Inputs are lenient: both spellings are accepted and unknown fields are ignored.

use std::{collections::HashMap, env, path::PathBuf};

use prost_types::{
    FileDescriptorSet,
    field_descriptor_proto::{Label, Type},
};

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
    let descriptor_bytes = prost::Message::encode_to_vec(&descriptors);
    std::fs::write(out.join("livekit_descriptor.bin"), &descriptor_bytes)?;
    let null_fields = singular_message_fields(&descriptors);

    prost_build::Config::new().compile_fds(descriptors)?;

    pbjson_build::Builder::new()
        .register_descriptors(&descriptor_bytes)?
        .preserve_proto_field_names()
        .emit_fields()
        .ignore_unknown_fields()
        .build(&[".livekit"])?;

    emit_null_for_unset_messages(&out.join("livekit.serde.rs"), &null_fields)?;
    Ok(())
}

/// For each message (full proto name), the JSON names of its singular message-typed fields
/// outside any oneof: the fields Go's protojson writes as `null` when unset.
fn singular_message_fields(set: &FileDescriptorSet) -> HashMap<String, Vec<String>> {
    fn walk(prefix: &str, msgs: &[prost_types::DescriptorProto], out: &mut HashMap<String, Vec<String>>) {
        // Map entries are not generated as structs (they become Rust maps), so skip them.
        for m in msgs.iter().filter(|m| !m.options.as_ref().is_some_and(|o| o.map_entry())) {
            let full = format!("{prefix}.{}", m.name());
            let fields = m
                .field
                .iter()
                .filter(|f| f.r#type() == Type::Message && f.label() != Label::Repeated && f.oneof_index.is_none())
                .map(|f| f.name().to_string())
                .collect();
            out.insert(full.clone(), fields);
            walk(&full, &m.nested_type, out);
        }
    }
    let mut out = HashMap::new();
    for file in &set.file {
        walk(file.package(), &file.message_type, &mut out);
    }
    out
}

/// pbjson omits unset message fields even with `emit_fields`; LiveKit's Go server writes them
/// as `null` (e.g. `"version": null` in every Room). Patch each such field's serializer to
/// write `null` when it is `None`. Proto3 `optional` scalars keep being omitted, as in Go.
fn emit_null_for_unset_messages(
    path: &std::path::Path,
    fields: &HashMap<String, Vec<String>>,
) -> Result<(), Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(path)?;
    let marker = "impl serde::Serialize for ";
    let mut out = String::with_capacity(text.len() + 4096);
    let mut patched_fields = 0;
    let mut missed = Vec::new();
    let mut pieces = text.split(marker);
    out.push_str(pieces.next().unwrap_or_default());
    for piece in pieces {
        out.push_str(marker);
        let name =
            piece.split("serialize_struct(\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap_or_default();
        // The Serialize impl is the part of the piece before the next impl of anything else.
        let (impl_part, rest) = piece.split_at(piece.find("\nimpl<'de>").unwrap_or(piece.len()));
        let mut patched = impl_part.to_string();
        for field in fields.get(name).map(Vec::as_slice).unwrap_or_default() {
            let from = format!("struct_ser.serialize_field(\"{field}\", v)?;\n        }}\n");
            let to = format!(
                "struct_ser.serialize_field(\"{field}\", v)?;\n        }} else {{\n            struct_ser.serialize_field(\"{field}\", &None::<()>)?;\n        }}\n"
            );
            if patched.contains(&from) {
                patched = patched.replacen(&from, &to, 1);
                patched_fields += 1;
            } else {
                missed.push(format!("{name}.{field}"));
            }
        }
        out.push_str(&patched);
        out.push_str(rest);
    }
    // If pbjson's output shape changes, fail loudly rather than silently stop writing `null`.
    let expected: usize = fields.values().map(Vec::len).sum();
    if patched_fields != expected {
        return Err(
            format!("null-emission patch matched {patched_fields} of {expected} fields; missed {missed:?}").into()
        );
    }
    std::fs::write(path, out)?;
    Ok(())
}
