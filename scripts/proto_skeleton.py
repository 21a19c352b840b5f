#!/usr/bin/env python3
"""Print the skeleton (names, types, field numbers) of the LiveKit messages Usher serves.

The official `livekit-protocol` Python package embeds the compiled descriptors of LiveKit's
protobuf schema. This script walks those descriptors from the roots Usher needs (the
RoomService, the /rtc signal messages and the webhook event), follows every field type, and
prints each reached message and enum as proto3 text, grouped by the file it came from. The
output carries facts only: no comments and no options from the original sources. Usher's
`proto/` files were produced from it and then annotated by hand; run it again after a
protocol upgrade and diff against `proto/` to spot new fields.

Messages belonging to services Usher does not run (egress, ingress, agents, metrics) are
printed *opaque*: the name and the wire slot stay, the fields do not. Protobuf skips the
fields of an opaque message when decoding, so presence is still visible (CreateRoom can tell
that `egress` was requested) while their definitions stay out of our tree.

Usage: python3 scripts/proto_skeleton.py OUT_DIR   (needs `pip install livekit-protocol`)
"""
import os
import sys

from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FieldDescriptor as FD
from livekit.protocol import room, rtc, webhook  # noqa: F401  (registers descriptors)

# Files printed in full; messages from any other livekit file are printed opaque.
FULL_FILES = {
    "livekit_room.proto",
    "livekit_models.proto",
    "livekit_rtc.proto",
    "livekit_webhook.proto",
    "livekit_agent_dispatch.proto",
}
# Exceptions: kept in full although their file is not (they are small and Usher reads them).
FULL_MESSAGES = {"livekit.RoomEgress"}

SCALARS = {
    FD.TYPE_DOUBLE: "double", FD.TYPE_FLOAT: "float", FD.TYPE_INT64: "int64",
    FD.TYPE_UINT64: "uint64", FD.TYPE_INT32: "int32", FD.TYPE_FIXED64: "fixed64",
    FD.TYPE_FIXED32: "fixed32", FD.TYPE_BOOL: "bool", FD.TYPE_STRING: "string",
    FD.TYPE_BYTES: "bytes", FD.TYPE_UINT32: "uint32", FD.TYPE_SFIXED32: "sfixed32",
    FD.TYPE_SFIXED64: "sfixed64", FD.TYPE_SINT32: "sint32", FD.TYPE_SINT64: "sint64",
}

pool = descriptor_pool.Default()

# Usher's own notes, printed above each declaration. Written for Usher, in our words.
FILE_NOTES = {
    "livekit_models.proto": "Shared data model: rooms, participants, tracks, permissions and the\n"
    "data-channel packet envelope. Every other file builds on these.",
    "livekit_room.proto": "The RoomService: the HTTP (Twirp) API a backend uses to manage rooms and\n"
    "the participants in them. Served at POST /twirp/livekit.RoomService/<Method>.",
    "livekit_rtc.proto": "Signalling: the messages exchanged on the /rtc WebSocket. A client sends\n"
    "SignalRequest frames and receives SignalResponse frames, each one binary protobuf.",
    "livekit_webhook.proto": "The body of a webhook POST sent to the application's backend.",
    "livekit_agent_dispatch.proto": "Agent dispatch settings that CreateRoom can carry.",
    "livekit_egress.proto": "Egress (recording) is not run by Usher. These are opaque placeholders so\n"
    "requests that mention egress still decode; their fields are skipped.",
    "livekit_ingress.proto": "Ingress is not run by Usher; opaque placeholder for the webhook body.",
    "livekit_agent.proto": "Agent jobs are not run by Usher; opaque placeholder for the webhook body.",
    "livekit_metrics.proto": "Client metrics are not collected by Usher; opaque placeholder so data\n"
    "packets that carry them still decode.",
}
NOTES = {
    "livekit.Room": "A room as the API reports it. Counts are live; `version` is never set.",
    "livekit.Codec": "A codec a room allows, by MIME type and optional fmtp line.",
    "livekit.ParticipantPermission": "What a participant may do. Derived from its token's video grant\n"
    "and replaced as a whole by UpdateParticipant.",
    "livekit.ParticipantInfo": "A participant as others see it. `version` grows with every change so\n"
    "receivers can drop stale copies.",
    "livekit.TrackInfo": "One published track and its current state (mute, dimensions, codecs).",
    "livekit.TrackSource": "Where a track comes from; permissions can restrict publishing by source.",
    "livekit.TrackType": "Media kind of a track.",
    "livekit.DataPacket": "Envelope for everything sent over the data channel.",
    "livekit.DisconnectReason": "Why a participant left; set in ParticipantInfo and LeaveRequest.",
    "livekit.CreateRoomRequest": "Creates a room, or returns the live one of that name unchanged.\n"
    "Zero timeouts mean \"use the server's configured default\".",
    "livekit.ListRoomsRequest": "Lists every room, or only those named (unknown names are skipped).",
    "livekit.DeleteRoomRequest": "Closes a room and disconnects everyone in it.",
    "livekit.ListParticipantsRequest": "Lists the participants of a room (hidden ones included).",
    "livekit.RoomParticipantIdentity": "Addresses one participant of one room. `revoke_token_ts`\n"
    "lets RemoveParticipant refuse rejoins with older tokens.",
    "livekit.MuteRoomTrackRequest": "Mutes (or, when the server allows it, unmutes) a published track.",
    "livekit.UpdateParticipantRequest": "Changes a participant's name, metadata, attributes or\n"
    "permission. Empty name/metadata mean \"unchanged\"; an empty attribute value deletes the key.",
    "livekit.UpdateSubscriptionsRequest": "Subscribes or unsubscribes a participant to tracks.",
    "livekit.SendDataRequest": "Sends a data packet to a room's participants (all, or by identity).",
    "livekit.UpdateRoomMetadataRequest": "Replaces a room's metadata; an empty string clears it.",
    "livekit.ForwardParticipantRequest": "Makes a participant also appear, with its tracks, in another room.",
    "livekit.MoveParticipantRequest": "Moves a connected participant to another room on the same socket.",
    "livekit.PerformRpcRequest": "Calls a method that a participant registered, and waits for its answer.",
    "livekit.SignalRequest": "Everything a client may send on the signalling socket.",
    "livekit.SignalResponse": "Everything the server may send on the signalling socket.",
    "livekit.JoinResponse": "First frame of a session: the room, yourself, everyone else, and timing.",
    "livekit.LeaveRequest": "Tells the other side that the session ends, why, and what to do next.",
    "livekit.ParticipantUpdate": "Changed participant infos; receivers keep the highest version.",
    "livekit.RoomUpdate": "The room changed (metadata or counts).",
    "livekit.RoomMovedResponse": "The participant now belongs to another room; carries a new token.",
    "livekit.WebhookEvent": "One event about a room, participant or track, delivered to the backend.",
}


def top_level(desc):
    while desc.containing_type is not None:
        desc = desc.containing_type
    return desc


def is_full(msg):
    top = top_level(msg)
    return top.file.name in FULL_FILES or top.full_name in FULL_MESSAGES


def type_name(field, scope_pkg="livekit"):
    if field.type in (FD.TYPE_MESSAGE, FD.TYPE_GROUP):
        t = field.message_type
        if t.GetOptions().map_entry:
            k, v = t.fields_by_name["key"], t.fields_by_name["value"]
            return f"map<{type_name(k)}, {type_name(v)}>"
        full = t.full_name
    elif field.type == FD.TYPE_ENUM:
        full = field.enum_type.full_name
    else:
        return SCALARS[field.type]
    if full.startswith(scope_pkg + "."):
        return full[len(scope_pkg) + 1:]
    return "." + full


def collect(roots):
    """Top-level messages/enums reachable from the roots, following fields of full messages."""
    seen, order = set(), []
    stack = list(roots)
    while stack:
        d = top_level(stack.pop())
        if d.full_name in seen:
            continue
        seen.add(d.full_name)
        order.append(d)
        if not hasattr(d, "fields") or not is_full(d):
            continue
        todo = [d]
        while todo:
            m = todo.pop()
            todo.extend(m.nested_types)
            for f in m.fields:
                if f.message_type is not None:
                    stack.append(f.message_type)
                    if f.message_type.GetOptions().map_entry:
                        for sub in f.message_type.fields:
                            if sub.message_type is not None:
                                stack.append(sub.message_type)
                            if sub.enum_type is not None:
                                stack.append(sub.enum_type)
                if f.enum_type is not None:
                    stack.append(f.enum_type)
    return order


def note(d, ind):
    text = NOTES.get(d.full_name)
    return [f"{ind}// {line}" for line in text.split("\n")] if text else []


def emit_enum(e, ind):
    out = note(e, ind) + [f"{ind}enum {e.name} {{"]
    for v in e.values:
        dep = " [deprecated = true]" if v.GetOptions().deprecated else ""
        out.append(f"{ind}  {v.name} = {v.number}{dep};")
    out.append(f"{ind}}}")
    return out


def emit_field(f, ind):
    label = ""
    if f.is_repeated and not (f.message_type and f.message_type.GetOptions().map_entry):
        label = "repeated "
    elif f.containing_oneof is not None and f.containing_oneof.name.startswith("_"):
        label = "optional "
    dep = " [deprecated = true]" if f.GetOptions().deprecated else ""
    return f"{ind}{label}{type_name(f)} {f.name} = {f.number}{dep};"


def emit_message(m, ind, full):
    out = note(m, ind) + [f"{ind}message {m.name} {{"]
    if full:
        for e in m.enum_types:
            out += emit_enum(e, ind + "  ")
        for n in m.nested_types:
            if not n.GetOptions().map_entry:
                out += emit_message(n, ind + "  ", True)
        done_oneofs = set()
        for f in m.fields:
            o = f.containing_oneof
            if o is not None and not o.name.startswith("_"):
                if o.name in done_oneofs:
                    continue
                done_oneofs.add(o.name)
                out.append(f"{ind}  oneof {o.name} {{")
                for of in o.fields:
                    out.append(emit_field(of, ind + "    "))
                out.append(f"{ind}  }}")
            else:
                out.append(emit_field(f, ind + "  "))
    out.append(f"{ind}}}")
    return out


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    svc = pool.FindServiceByName("livekit.RoomService")
    roots = []
    for meth in svc.methods:
        roots += [meth.input_type, meth.output_type]
    roots += list(pool.FindFileByName("livekit_rtc.proto").message_types_by_name.values())
    roots.append(pool.FindMessageTypeByName("livekit.WebhookEvent"))
    decls = collect(roots)
    def file_position(d):
        f = d.file
        names = list(f.message_types_by_name) + list(f.enum_types_by_name)
        return names.index(d.name)

    decls.sort(key=lambda d: (d.file.name, file_position(d)))
    by_file = {}
    for d in decls:
        by_file.setdefault(d.file.name, []).append(d)
    for fname, ds in sorted(by_file.items()):
        imports = set()
        body = []
        for d in ds:
            if hasattr(d, "values"):
                body += emit_enum(d, "")
            else:
                body += emit_message(d, "", is_full(d))
            body.append("")
        text = "\n".join(body)
        for d in ds:
            if hasattr(d, "values") or not is_full(d):
                continue
            todo = [d]
            while todo:
                m = todo.pop()
                todo.extend(m.nested_types)
                for f in m.fields:
                    for t in (f.message_type, f.enum_type):
                        if t is not None and top_level(t).file.name != fname and not (
                            not hasattr(t, "values") and t.GetOptions().map_entry
                        ):
                            imports.add(top_level(t).file.name)
                    if f.message_type is not None and f.message_type.GetOptions().map_entry:
                        for sub in f.message_type.fields:
                            for t in (sub.message_type, sub.enum_type):
                                if t is not None and top_level(t).file.name != fname:
                                    imports.add(top_level(t).file.name)
        pkg = ds[0].file.package
        head = ["// Written for Usher from the skeleton printed by scripts/proto_skeleton.py."]
        head += [f"// {line}" for line in FILE_NOTES.get(fname, "").split("\n")]
        head += ['syntax = "proto3";', "", f"package {pkg};", ""]
        for i in sorted(imports):
            head.append(f'import "{i}";')
        open(os.path.join(out_dir, fname.replace("/", "_")), "w").write("\n".join(head) + "\n\n" + text)
        print(fname, len(ds))
    # The service itself goes at the end of the room file.
    lines = ["// The room-management API. Each method is a Twirp POST carrying protobuf or JSON."]
    lines.append("service RoomService {")
    for meth in svc.methods:
        lines.append(f"  rpc {meth.name}({meth.input_type.name}) returns ({meth.output_type.name});")
    lines.append("}")
    with open(os.path.join(out_dir, svc.file.name), "a") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
