"""Authentication and grant checks through the official Python SDK.

Reference: shared/reference/roomservice.md §1.8 (plain-text 401s), §2.1-2.4.

* Missing/insufficient grants -> Twirp ``unauthenticated`` 401 ``permissions denied``.
* Bad signature / unknown key / expired -> plain-text 401 before Twirp runs; the
  Python SDK then cannot parse JSON and reports code ``unknown`` with status 401.
"""

from __future__ import annotations

import datetime
import json
import time

import pytest
from livekit import api

from conftest import (
    DEV_KEY,
    DEV_SECRET,
    UsherServer,
    make_jwt,
    raw_post,
    room_call,
    unique,
)

PERMISSIONS_DENIED = "permissions denied"

CUSTOM_KEY = "k1"
CUSTOM_SECRET = "usher-sdk-suite-secret-0123456789abcdef"  # 39 chars


def token(grants: api.VideoGrants, *, key=DEV_KEY, secret=DEV_SECRET, ttl=None, identity="") -> str:
    at = api.AccessToken(key, secret).with_grants(grants)
    if identity:
        at = at.with_identity(identity)
    if ttl is not None:
        at = at.with_ttl(ttl)
    return at.to_jwt()


def expect_error(url, fn, **kw) -> api.TwirpError:
    with pytest.raises(api.TwirpError) as ei:
        room_call(url, fn, **kw)
    return ei.value


def assert_permission_denied(err: api.TwirpError):
    assert (err.code, err.status, err.message) == ("unauthenticated", 401, PERMISSIONS_DENIED)


def assert_plain_401(err: api.TwirpError):
    # plain-text body: the SDK finds no JSON error and falls back to code "unknown"
    assert err.status == 401
    assert err.code == "unknown"
    assert err.message == ""


def create(url, name, **kw) -> api.Room:
    return room_call(url, lambda rs: rs.create_room(api.CreateRoomRequest(name=name, **kw)))


# --- insufficient grants -------------------------------------------------------


def test_join_only_token_is_denied_everywhere(usher):
    room = create(usher.url, unique("py-auth-join"))
    tok = token(api.VideoGrants(room_join=True, room=room.name), identity="alice")

    calls = {
        "CreateRoom": lambda rs: rs.create_room(api.CreateRoomRequest(name=unique("py-never"))),
        "ListRooms": lambda rs: rs.list_rooms(api.ListRoomsRequest()),
        "DeleteRoom": lambda rs: rs.delete_room(api.DeleteRoomRequest(room=room.name)),
        "UpdateRoomMetadata": lambda rs: rs.update_room_metadata(
            api.UpdateRoomMetadataRequest(room=room.name, metadata="hacked")
        ),
        "ListParticipants": lambda rs: rs.list_participants(api.ListParticipantsRequest(room=room.name)),
        "GetParticipant": lambda rs: rs.get_participant(
            api.RoomParticipantIdentity(room=room.name, identity="alice")
        ),
    }
    for method, fn in calls.items():
        err = expect_error(usher.url, fn, token=tok)
        assert (method, err.code, err.status, err.message) == (
            method,
            "unauthenticated",
            401,
            PERMISSIONS_DENIED,
        )

    # nothing changed
    [listed] = room_call(
        usher.url, lambda rs: rs.list_rooms(api.ListRoomsRequest(names=[room.name]))
    ).rooms
    assert listed.sid == room.sid
    assert listed.metadata == ""


def test_grants_are_not_cumulative(usher):
    room = create(usher.url, unique("py-auth-kinds"))

    create_only = token(api.VideoGrants(room_create=True))
    err = expect_error(usher.url, lambda rs: rs.list_rooms(api.ListRoomsRequest()), token=create_only)
    assert_permission_denied(err)

    list_only = token(api.VideoGrants(room_list=True))
    err = expect_error(
        usher.url,
        lambda rs: rs.create_room(api.CreateRoomRequest(name=unique("py-never"))),
        token=list_only,
    )
    assert_permission_denied(err)

    # DeleteRoom needs roomCreate, not roomAdmin
    admin = token(api.VideoGrants(room_admin=True, room=room.name))
    err = expect_error(
        usher.url, lambda rs: rs.delete_room(api.DeleteRoomRequest(room=room.name)), token=admin
    )
    assert_permission_denied(err)

    # the list-only token does list, including the room
    listed = room_call(usher.url, lambda rs: rs.list_rooms(api.ListRoomsRequest()), token=list_only)
    assert room.name in {r.name for r in listed.rooms}


def test_room_admin_is_scoped_to_its_room(usher):
    a = create(usher.url, unique("py-auth-a"), metadata="a0")
    b = create(usher.url, unique("py-auth-b"), metadata="b0")
    admin_a = token(api.VideoGrants(room_admin=True, room=a.name))

    err = expect_error(
        usher.url,
        lambda rs: rs.update_room_metadata(api.UpdateRoomMetadataRequest(room=b.name, metadata="b1")),
        token=admin_a,
    )
    assert_permission_denied(err)

    err = expect_error(
        usher.url,
        lambda rs: rs.list_participants(api.ListParticipantsRequest(room=b.name)),
        token=admin_a,
    )
    assert_permission_denied(err)

    # the same token works on its own room
    updated = room_call(
        usher.url,
        lambda rs: rs.update_room_metadata(api.UpdateRoomMetadataRequest(room=a.name, metadata="a1")),
        token=admin_a,
    )
    assert updated.sid == a.sid
    assert updated.metadata == "a1"

    # room b untouched
    [listed_b] = room_call(
        usher.url, lambda rs: rs.list_rooms(api.ListRoomsRequest(names=[b.name]))
    ).rooms
    assert listed_b.metadata == "b0"


def test_room_admin_room_compare_is_case_sensitive(usher):
    room = create(usher.url, unique("py-auth-case"))
    admin_upper = token(api.VideoGrants(room_admin=True, room=room.name.upper()))
    err = expect_error(
        usher.url,
        lambda rs: rs.update_room_metadata(api.UpdateRoomMetadataRequest(room=room.name, metadata="x")),
        token=admin_upper,
    )
    assert_permission_denied(err)


def test_no_authorization_header_is_permission_denied(usher):
    # reference §2.1: no token -> request continues without grants -> Twirp 401
    status, ctype, body = raw_post(usher.url, "ListRooms", b"{}")
    assert status == 401
    assert ctype.split(";")[0].strip() == "application/json"
    err = json.loads(body)
    assert err["code"] == "unauthenticated"
    assert err["msg"] == PERMISSIONS_DENIED


# --- bad tokens: plain-text 401 --------------------------------------------------


def test_wrong_secret_is_rejected(usher):
    err = expect_error(
        usher.url,
        lambda rs: rs.list_rooms(api.ListRoomsRequest()),
        key=DEV_KEY,
        secret="not-the-right-secret",
    )
    assert_plain_401(err)


def test_unknown_api_key_is_rejected(usher):
    err = expect_error(
        usher.url,
        lambda rs: rs.list_rooms(api.ListRoomsRequest()),
        key="nokey",
        secret=DEV_SECRET,
    )
    assert_plain_401(err)


def test_expired_token_is_rejected(usher):
    tok = token(api.VideoGrants(room_list=True), ttl=datetime.timedelta(minutes=-5))
    err = expect_error(usher.url, lambda rs: rs.list_rooms(api.ListRoomsRequest()), token=tok)
    assert_plain_401(err)


def test_recently_expired_token_is_within_leeway(usher):
    # reference §2.2: 60 s leeway on exp
    now = int(time.time())
    tok = make_jwt(
        {"iss": DEV_KEY, "nbf": now - 120, "exp": now - 20, "video": {"roomList": True}}, DEV_SECRET
    )
    resp = room_call(usher.url, lambda rs: rs.list_rooms(api.ListRoomsRequest()), token=tok)
    assert isinstance(resp, api.ListRoomsResponse)


def test_token_without_exp_is_rejected(usher):
    now = int(time.time())
    tok = make_jwt({"iss": DEV_KEY, "nbf": now, "video": {"roomList": True}}, DEV_SECRET)
    err = expect_error(usher.url, lambda rs: rs.list_rooms(api.ListRoomsRequest()), token=tok)
    assert_plain_401(err)


def test_hand_made_token_with_valid_claims_is_accepted(usher):
    # proves the rejections above are about the specific defect, not hand-made JWTs
    now = int(time.time())
    name = unique("py-handmade")
    tok = make_jwt(
        {"iss": DEV_KEY, "nbf": now, "exp": now + 600, "video": {"roomCreate": True}}, DEV_SECRET
    )
    room = room_call(
        usher.url, lambda rs: rs.create_room(api.CreateRoomRequest(name=name)), token=tok
    )
    assert room.name == name
    assert room.sid.startswith("RM_")


def test_bad_tokens_get_plain_text_not_twirp_json(usher):
    cases = {
        "wrong secret": token(api.VideoGrants(room_list=True), secret="wrong"),
        "unknown key": token(api.VideoGrants(room_list=True), key="nokey"),
        "expired": token(api.VideoGrants(room_list=True), ttl=datetime.timedelta(minutes=-5)),
        "garbage": "not-a-jwt",
    }
    for label, tok in cases.items():
        status, ctype, body = raw_post(usher.url, "ListRooms", b"{}", token=tok)
        assert (label, status) == (label, 401)
        assert "json" not in ctype.lower(), (label, ctype, body)
        assert not body.lstrip().startswith(b"{"), (label, body)


def test_bad_token_body_text_matches_livekit(usher):
    # reference §1.8 exact texts
    cases = [
        ("unknown key", token(api.VideoGrants(room_list=True), key="nokey"), "invalid API key"),
        (
            "wrong secret",
            token(api.VideoGrants(room_list=True), secret="wrong"),
            "invalid authorization token",
        ),
        (
            "expired",
            token(api.VideoGrants(room_list=True), ttl=datetime.timedelta(minutes=-5)),
            "invalid authorization token",
        ),
    ]
    for label, tok, prefix in cases:
        status, _, body = raw_post(usher.url, "ListRooms", b"{}", token=tok)
        assert (label, status) == (label, 401)
        assert body.decode().strip().startswith(prefix), (label, body)

    status, _, body = raw_post(usher.url, "ListRooms", b"{}", authorization="Basic abc")
    assert status == 401
    assert body.decode().startswith("invalid authorization header. Must start with Bearer")


# --- custom keys from --config-body -------------------------------------------------


@pytest.fixture(scope="module")
def keyed_usher():
    yaml = f"keys:\n  {CUSTOM_KEY}: {CUSTOM_SECRET}\nroom:\n  auto_create: true\n"
    server = UsherServer(
        ["--config-body", yaml, "--bind", "127.0.0.1", "--port", "0"], "usher --config-body"
    ).start()
    yield server
    server.stop()


def test_custom_keys_work(keyed_usher):
    name = unique("py-keyed")
    room = room_call(
        keyed_usher.url,
        lambda rs: rs.create_room(api.CreateRoomRequest(name=name, metadata="k1")),
        key=CUSTOM_KEY,
        secret=CUSTOM_SECRET,
    )
    assert room.name == name
    assert room.metadata == "k1"
    assert room.sid.startswith("RM_")
    assert room.empty_timeout == 300

    listed = room_call(
        keyed_usher.url,
        lambda rs: rs.list_rooms(api.ListRoomsRequest(names=[name])),
        key=CUSTOM_KEY,
        secret=CUSTOM_SECRET,
    )
    assert [(r.name, r.sid) for r in listed.rooms] == [(name, room.sid)]


def test_dev_key_rejected_when_custom_keys_configured(keyed_usher):
    err = expect_error(
        keyed_usher.url,
        lambda rs: rs.list_rooms(api.ListRoomsRequest()),
        key=DEV_KEY,
        secret=DEV_SECRET,
    )
    assert_plain_401(err)


def test_custom_key_with_wrong_secret_rejected(keyed_usher):
    err = expect_error(
        keyed_usher.url,
        lambda rs: rs.list_rooms(api.ListRoomsRequest()),
        key=CUSTOM_KEY,
        secret=CUSTOM_SECRET + "x",
    )
    assert_plain_401(err)
