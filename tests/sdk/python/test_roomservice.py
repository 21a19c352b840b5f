"""RoomService behaviour through the official Python SDK (protobuf encoding).

Reference: shared/reference/roomservice.md §1, §3.1-3.5, §3.11, §3.15.
Every test uses its own room names, so tests are independent of order.
"""

from __future__ import annotations

import re
import time
import urllib.request

import pytest
from livekit import api

from conftest import raw_post, room_call, unique

NOT_FOUND_ROOM = "twirp error unknown: requested room does not exist"
NOT_FOUND_PARTICIPANT = "twirp error unknown: participant does not exist"
MAX_METADATA = 524288
SID_RE = re.compile(r"RM_[A-Za-z0-9]{12}")


def create(url, name, **kw) -> api.Room:
    return room_call(url, lambda rs: rs.create_room(api.CreateRoomRequest(name=name, **kw)))


def list_rooms(url, names=None) -> list:
    req = api.ListRoomsRequest(names=names or [])
    return list(room_call(url, lambda rs: rs.list_rooms(req)).rooms)


def expect_error(url, fn, **kw) -> api.TwirpError:
    with pytest.raises(api.TwirpError) as ei:
        room_call(url, fn, **kw)
    return ei.value


def test_health_check(usher):
    with urllib.request.urlopen(usher.url + "/", timeout=5) as resp:
        assert resp.status == 200
        assert resp.read().decode().strip() == "OK"


def test_create_room_defaults(usher):
    name = unique("py-defaults")
    before = time.time()
    room = create(usher.url, name)
    after = time.time()

    assert SID_RE.fullmatch(room.sid), room.sid
    assert room.name == name
    assert room.empty_timeout == 300
    assert room.departure_timeout == 20
    assert room.max_participants == 0
    assert room.metadata == ""
    assert room.num_participants == 0
    assert room.num_publishers == 0
    assert room.active_recording is False
    assert int(before) - 1 <= room.creation_time <= int(after) + 1
    assert int(before * 1000) - 1000 <= room.creation_time_ms <= int(after * 1000) + 1000
    # seconds and milliseconds describe the same instant
    assert abs(room.creation_time_ms // 1000 - room.creation_time) <= 1


def test_create_room_with_parameters(usher):
    name = unique("py-params")
    room = create(
        usher.url,
        name,
        empty_timeout=42,
        departure_timeout=7,
        max_participants=5,
        metadata='{"topic":"standup"}',
    )
    assert room.sid.startswith("RM_")
    assert room.name == name
    assert room.empty_timeout == 42
    assert room.departure_timeout == 7
    assert room.max_participants == 5
    assert room.metadata == '{"topic":"standup"}'
    assert room.creation_time > 0
    assert room.creation_time_ms > 0


def test_create_room_twice_returns_existing_room_unchanged(usher):
    name = unique("py-idem")
    first = create(usher.url, name, metadata="first", empty_timeout=60, max_participants=3)
    second = create(usher.url, name, metadata="second", empty_timeout=99, max_participants=9)

    assert second.sid == first.sid
    assert second.name == name
    assert second.metadata == "first"
    assert second.empty_timeout == 60
    assert second.max_participants == 3
    assert second.creation_time == first.creation_time
    assert second.creation_time_ms == first.creation_time_ms

    # and only one room with that name exists
    rooms = list_rooms(usher.url, [name])
    assert [r.sid for r in rooms] == [first.sid]


def test_list_rooms_all_contains_created_rooms(usher):
    a = create(usher.url, unique("py-list-a"), metadata="A")
    b = create(usher.url, unique("py-list-b"), metadata="B")

    rooms = {r.name: r for r in list_rooms(usher.url)}
    assert a.name in rooms and b.name in rooms
    assert rooms[a.name].sid == a.sid
    assert rooms[a.name].metadata == "A"
    assert rooms[b.name].sid == b.sid
    assert rooms[b.name].metadata == "B"
    assert rooms[a.name].empty_timeout == 300
    assert rooms[a.name].creation_time == a.creation_time


def test_list_rooms_filtered_by_names(usher):
    a = create(usher.url, unique("py-filter-a"))
    b = create(usher.url, unique("py-filter-b"))
    create(usher.url, unique("py-filter-c"))
    missing = unique("py-filter-missing")

    only_a = list_rooms(usher.url, [a.name, missing])
    assert [(r.name, r.sid) for r in only_a] == [(a.name, a.sid)]

    both = list_rooms(usher.url, [b.name, a.name])
    assert sorted((r.name, r.sid) for r in both) == sorted([(a.name, a.sid), (b.name, b.sid)])

    assert list_rooms(usher.url, [missing]) == []


def test_update_room_metadata(usher):
    room = create(usher.url, unique("py-meta"), metadata="old")

    updated = room_call(
        usher.url,
        lambda rs: rs.update_room_metadata(
            api.UpdateRoomMetadataRequest(room=room.name, metadata="new ✓")
        ),
    )
    assert updated.sid == room.sid
    assert updated.name == room.name
    assert updated.metadata == "new ✓"
    assert updated.creation_time == room.creation_time
    assert updated.empty_timeout == room.empty_timeout

    [listed] = list_rooms(usher.url, [room.name])
    assert listed.metadata == "new ✓"


def test_update_room_metadata_to_empty_clears_it(usher):
    # reference §3.11: the value is applied even if empty
    room = create(usher.url, unique("py-meta-clear"), metadata="something")
    updated = room_call(
        usher.url,
        lambda rs: rs.update_room_metadata(api.UpdateRoomMetadataRequest(room=room.name, metadata="")),
    )
    assert updated.sid == room.sid
    assert updated.metadata == ""
    [listed] = list_rooms(usher.url, [room.name])
    assert listed.metadata == ""


def test_list_participants_of_new_room_is_empty(usher):
    room = create(usher.url, unique("py-parts"))
    resp = room_call(
        usher.url, lambda rs: rs.list_participants(api.ListParticipantsRequest(room=room.name))
    )
    assert list(resp.participants) == []


def test_list_participants_of_unknown_room_is_empty(usher):
    name = unique("py-parts-none")
    resp = room_call(usher.url, lambda rs: rs.list_participants(api.ListParticipantsRequest(room=name)))
    assert list(resp.participants) == []


def test_get_participant_not_found(usher):
    room = create(usher.url, unique("py-getp"))
    err = expect_error(
        usher.url,
        lambda rs: rs.get_participant(api.RoomParticipantIdentity(room=room.name, identity="nobody")),
    )
    assert err.code == "not_found"
    assert err.status == 404
    assert err.message == NOT_FOUND_PARTICIPANT


def test_remove_participant_not_found(usher):
    room = create(usher.url, unique("py-rmp"))
    err = expect_error(
        usher.url,
        lambda rs: rs.remove_participant(api.RoomParticipantIdentity(room=room.name, identity="nobody")),
    )
    assert err.code == "not_found"
    assert err.status == 404
    assert err.message == NOT_FOUND_PARTICIPANT


def test_delete_room_lifecycle(usher):
    room = create(usher.url, unique("py-del"), metadata="bye")
    keep = create(usher.url, unique("py-keep"))

    resp = room_call(usher.url, lambda rs: rs.delete_room(api.DeleteRoomRequest(room=room.name)))
    assert isinstance(resp, api.DeleteRoomResponse)
    assert resp.ByteSize() == 0

    assert list_rooms(usher.url, [room.name]) == []
    all_names = {r.name for r in list_rooms(usher.url)}
    assert room.name not in all_names
    assert keep.name in all_names

    err = expect_error(usher.url, lambda rs: rs.delete_room(api.DeleteRoomRequest(room=room.name)))
    assert (err.code, err.status, err.message) == ("not_found", 404, NOT_FOUND_ROOM)

    err = expect_error(
        usher.url,
        lambda rs: rs.update_room_metadata(api.UpdateRoomMetadataRequest(room=room.name, metadata="x")),
    )
    assert (err.code, err.status, err.message) == ("not_found", 404, NOT_FOUND_ROOM)

    # re-creating the name gives a fresh room with a new sid and defaults
    again = create(usher.url, room.name)
    assert again.sid.startswith("RM_")
    assert again.sid != room.sid
    assert again.metadata == ""


def test_delete_unknown_room_not_found(usher):
    err = expect_error(
        usher.url, lambda rs: rs.delete_room(api.DeleteRoomRequest(room=unique("py-never")))
    )
    assert err.code == "not_found"
    assert err.status == 404
    assert err.message == NOT_FOUND_ROOM


def test_update_metadata_unknown_room_not_found(usher):
    name = unique("py-never-meta")
    err = expect_error(
        usher.url,
        lambda rs: rs.update_room_metadata(api.UpdateRoomMetadataRequest(room=name, metadata="m")),
    )
    assert (err.code, err.status, err.message) == ("not_found", 404, NOT_FOUND_ROOM)


def test_metadata_size_limit_on_create(usher):
    name = unique("py-bigmeta")
    err = expect_error(
        usher.url,
        lambda rs: rs.create_room(api.CreateRoomRequest(name=name, metadata="x" * (MAX_METADATA + 1))),
    )
    assert err.code == "invalid_argument"
    assert err.status == 400
    assert "metadata size exceeds limits" in err.message
    assert list_rooms(usher.url, [name]) == []

    # exactly at the limit is accepted
    ok = create(usher.url, name, metadata="y" * MAX_METADATA)
    assert len(ok.metadata) == MAX_METADATA


def test_metadata_size_limit_on_update(usher):
    room = create(usher.url, unique("py-bigmeta-up"), metadata="small")
    err = expect_error(
        usher.url,
        lambda rs: rs.update_room_metadata(
            api.UpdateRoomMetadataRequest(room=room.name, metadata="x" * (MAX_METADATA + 1))
        ),
    )
    assert err.code == "invalid_argument"
    assert err.status == 400
    assert "metadata size exceeds limits" in err.message
    [listed] = list_rooms(usher.url, [room.name])
    assert listed.metadata == "small"


def test_metadata_size_error_text_matches_livekit(usher):
    # reference §3.15: exact message and meta.argument
    err = expect_error(
        usher.url,
        lambda rs: rs.create_room(
            api.CreateRoomRequest(name=unique("py-bigmeta-msg"), metadata="x" * (MAX_METADATA + 1))
        ),
    )
    assert err.message == f"metadata size exceeds limits {MAX_METADATA}"
    assert err.metadata.get("argument") == "metadata size exceeds limits"


def test_room_name_length_limit(usher):
    too_long = "n" * 257
    err = expect_error(usher.url, lambda rs: rs.create_room(api.CreateRoomRequest(name=too_long)))
    assert err.code == "invalid_argument"
    assert err.status == 400
    assert "room name length exceeds limits" in err.message

    ok_name = "m" * 250 + unique("")[-6:]  # 256 chars
    assert len(ok_name) == 256
    room = create(usher.url, ok_name)
    assert room.name == ok_name


def test_room_name_length_error_text_matches_livekit(usher):
    err = expect_error(usher.url, lambda rs: rs.create_room(api.CreateRoomRequest(name="q" * 300)))
    assert err.message == "twirp error unknown: room name length exceeds limits: max length 256"


def test_protobuf_response_content_type(usher):
    # The Python SDK sends protobuf; the reply must be protobuf too.
    from conftest import DEV_KEY, DEV_SECRET

    token = (
        api.AccessToken(DEV_KEY, DEV_SECRET)
        .with_grants(api.VideoGrants(room_create=True))
        .to_jwt()
    )
    name = unique("py-pb")
    body = api.CreateRoomRequest(name=name, metadata="pb").SerializeToString()
    status, ctype, payload = raw_post(
        usher.url, "CreateRoom", body, content_type="application/protobuf", token=token
    )
    assert status == 200
    assert ctype.split(";")[0].strip() == "application/protobuf"
    room = api.Room.FromString(payload)
    assert room.name == name
    assert room.metadata == "pb"
    assert room.sid.startswith("RM_")
