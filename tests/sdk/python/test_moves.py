"""MoveParticipant on connected sessions, driven by the official Python SDK
(``LiveKitAPI().room.move_participant``, protobuf) while ``signal_client.SignalClient``
participants are connected over ``/rtc``. LiveKit's open-source server does not implement
moves; Usher does.

A move needs a token with ``roomAdmin`` for the request's room and ``destinationRoom`` equal
to the request's destination (the SDK mints exactly that), else 401 ``permissions denied``.
The moved participant keeps its socket, sid and tracks and gets ``room_moved`` (the
destination room, a token for it, itself, the others there); observers in the source see it
DISCONNECTED with ``MIGRATION`` (at once for a publisher, else in the next presence batch,
≤ 3 s), observers in the destination see it arrive; the API then lists it in the destination
only, and RPCs and its own socket requests act there. The destination is created if missing.

Refusals (same room, unknown room/identity, a client below protocol 16, the identity already
in the destination, a wrong grant) change nothing.

"Nothing arrives" is watched for ``QUIET_S``; presence batches are waited for with
``signal_client.DEFAULT_WAIT_S``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Optional
from urllib.parse import quote

import jwt as pyjwt
import pytest
from livekit import api
from livekit.protocol import models, rtc

from conftest import DEV_KEY, DEV_SECRET, unique
from helpers import (
    AUDIO,
    DISCONNECTED,
    FAST_S,
    JOINED,
    MIC,
    NOT_FOUND_PARTICIPANT,
    PERMISSIONS_DENIED,
    QUIET_S,
    SAME_ROOM,
    Session,
    assert_not_in,
    assert_twirp,
    assert_versions_increase,
    departed,
    get,
    join_token,
    listed,
    mover_token,
    refused_rpc,
    room_names,
    run,
    track_sids,
    verify,
)
from signal_client import SignalClient, infos_about, is_kind, kind, update_about

MIGRATION = models.DisconnectReason.MIGRATION
TOO_OLD = "twirp error unknown: participant client version does not support moving"

# What a participant must never get from a refused move.
MOVE_EFFECTS = ("room_moved", "leave", "track_unpublished", "refresh_token")


# --- harness ----------------------------------------------------------------------------


def move_req(room: str, identity: str, destination: str) -> api.MoveParticipantRequest:
    return api.MoveParticipantRequest(room=room, identity=identity, destination_room=destination)


async def move(s: Session, room: str, identity: str, destination: str) -> None:
    resp = await s.rs.move_participant(move_req(room, identity, destination))
    assert resp is None, resp  # the SDK returns nothing for the empty MoveParticipantResponse


async def refused_move(s: Session, req: api.MoveParticipantRequest, token: Optional[str] = None) -> api.TwirpError:
    """A move that must fail; with ``token``, sent verbatim instead of the SDK's own."""
    return await refused_rpc(s, "move_participant", req, token)


async def old_client(s: Session, room: str, identity: str, protocol: int = 15) -> SignalClient:
    """A participant whose client announces ``protocol`` (the only ``protocol`` parameter)."""
    base = s.url.replace("http://", "ws://", 1)
    url = f"{base}/rtc?access_token={quote(join_token(room, identity))}&protocol={protocol}&sdk=python-suite"
    ws = await s.http.ws_connect(url)
    c = SignalClient(s.http, ws, identity)
    s.clients.append(c)
    first = await c.wait_for(lambda m: True, timeout=FAST_S, what="first frame")
    assert kind(first) == "join", c.summary()
    c.join_response = first.join
    c._pinger = asyncio.create_task(c._ping_loop(5))
    return c


def decode_token(token: str) -> dict:
    """The claims of a token Usher minted, checked with pyjwt against the test secret."""
    claims = pyjwt.decode(token, DEV_SECRET, algorithms=["HS256"], options={"verify_aud": False})
    with pytest.raises(pyjwt.InvalidSignatureError):
        pyjwt.decode(token, DEV_SECRET + "-not", algorithms=["HS256"], options={"verify_aud": False})
    return claims


# --- (a) a publisher moves while observers sit in both rooms -------------------------------


def test_a_moved_publisher_keeps_its_socket_and_both_rooms_see_it_change_rooms(usher):
    async def main():
        room_a, room_b = unique("py-move-a"), unique("py-move-b")
        async with Session(usher.url) as s:
            obs_a = await s.join(room_a, "watcher-a")
            obs_b = await s.join(room_b, "watcher-b")
            alice = await s.join(room_a, "alice", metadata="m0")
            sid = alice.join_response.participant.sid
            rsid_a, rsid_b = obs_a.join_response.room.sid, obs_b.join_response.room.sid
            assert rsid_a != rsid_b
            mic = await alice.add_track("mic", AUDIO, MIC)
            await obs_a.wait_for(
                update_about("alice", lambda p: track_sids(p) == [mic.sid]), timeout=FAST_S, what="alice's mic"
            )
            assert await listed(s, room_a) == ["alice", "watcher-a"]
            assert await listed(s, room_b) == ["watcher-b"]

            t0 = time.time()
            marks = alice.mark(), obs_a.mark(), obs_b.mark()
            await move(s, room_a, "alice", room_b)

            # the mover: room_moved on the same socket
            m = await alice.wait_for(is_kind("room_moved"), since=marks[0], timeout=FAST_S, what="room_moved")
            moved = m.room_moved
            assert (moved.room.name, moved.room.sid) == (room_b, rsid_b)
            me = moved.participant
            assert (me.identity, me.sid, me.metadata, track_sids(me)) == ("alice", sid, "m0", [mic.sid]), me
            assert me.state != DISCONNECTED, me
            assert (me.tracks[0].type, me.tracks[0].source) == (AUDIO, MIC)
            others = [(p.identity, p.sid) for p in moved.other_participants]
            assert others == [("watcher-b", obs_b.join_response.participant.sid)], others

            # its token: signed with the test secret, same identity, for the destination
            claims = decode_token(moved.token)
            assert (claims["iss"], claims["sub"]) == (DEV_KEY, "alice"), claims
            assert claims["video"]["room"] == room_b and claims["video"]["roomJoin"] is True, claims
            assert claims["exp"] > t0, claims
            assert verify(moved.token).identity == "alice"  # the SDK's verifier agrees

            # observers: the source sees it leave (a publisher: at once) ...
            i_gone, m = await obs_a.wait_index(departed("alice"), since=marks[1], timeout=FAST_S, what="alice left a")
            [gone] = infos_about(m, "alice")
            assert (gone.sid, gone.disconnect_reason) == (sid, MIGRATION), gone
            # ... the destination sees it arrive, with its track
            m = await obs_b.wait_for(update_about("alice"), since=marks[2], timeout=FAST_S, what="alice in b")
            [came] = infos_about(m, "alice")
            assert (came.sid, came.metadata, track_sids(came)) == (sid, "m0", [mic.sid]), came
            assert came.state != DISCONNECTED, came

            # the API agrees
            assert await listed(s, room_a) == ["watcher-a"]
            assert await listed(s, room_b) == ["alice", "watcher-b"]
            await assert_not_in(s, room_a, "alice")
            there = await get(s, room_b, "alice")
            assert (there.sid, track_sids(there), there.metadata) == (sid, [mic.sid], "m0")
            with pytest.raises(api.TwirpError) as ei:
                await s.rs.update_participant(
                    api.UpdateParticipantRequest(room=room_a, identity="alice", metadata="in a?")
                )
            assert_twirp(ei.value, "not_found", 404, NOT_FOUND_PARTICIPANT, "UpdateParticipant in the source")

            # UpdateParticipant in the destination reaches the moved socket
            marks = alice.mark(), obs_b.mark()
            info = await s.rs.update_participant(
                api.UpdateParticipantRequest(room=room_b, identity="alice", metadata="in b")
            )
            assert (info.sid, info.metadata, track_sids(info)) == (sid, "in b", [mic.sid])
            for c, since in zip((alice, obs_b), marks):
                await c.wait_for(
                    update_about("alice", lambda p: p.sid == sid and p.metadata == "in b"),
                    since=since,
                    timeout=FAST_S,
                    what="alice's metadata in b",
                )
            tok = await alice.wait_for(
                is_kind("refresh_token", lambda t: verify(t).metadata == "in b"),
                since=marks[0],
                timeout=FAST_S,
                what="refresh token after the update",
            )
            refreshed = decode_token(tok.refresh_token)
            assert (refreshed["sub"], refreshed["video"]["room"]) == ("alice", room_b), refreshed

            # its own socket requests act in the destination
            marks = alice.mark(), obs_b.mark()
            await alice.send(rtc.SignalRequest(mute=rtc.MuteTrackRequest(sid=mic.sid, muted=True)))
            await obs_b.wait_for(
                update_about("alice", lambda p: [(t.sid, t.muted) for t in p.tracks] == [(mic.sid, True)]),
                since=marks[1],
                timeout=FAST_S,
                what="alice's mic muted",
            )
            assert [t.muted for t in (await get(s, room_b, "alice")).tracks] == [True]

            # the source hears nothing more of alice, and alice nothing more of the source
            marks = alice.mark(), obs_a.mark()
            info = await s.rs.update_participant(
                api.UpdateParticipantRequest(room=room_a, identity="watcher-a", metadata="still in a")
            )
            await obs_a.wait_for(
                update_about("watcher-a", lambda p: p.metadata == "still in a"),
                since=marks[1],
                timeout=FAST_S,
                what="own update in a",
            )
            await asyncio.sleep(QUIET_S)
            assert alice.all(update_about("watcher-a"), since=marks[0]) == [], alice.summary()
            assert obs_a.all(update_about("alice"), since=i_gone + 1) == [], obs_a.summary()
            assert obs_b.all(update_about("watcher-a")) == [], obs_b.summary()

            # the socket was never ended nor told to leave; tracks were never unpublished
            assert not alice.closed.is_set()
            assert alice.all(is_kind("leave")) == [] and alice.all(is_kind("track_unpublished")) == []
            assert len(alice.all(is_kind("room_moved"))) == 1
            for c in (obs_a, obs_b):
                assert c.all(is_kind("leave")) == [] and c.all(is_kind("room_moved")) == [], c.summary()

            # the token from room_moved resumes the session in the destination
            await alice.close()
            back = await SignalClient.resume(s.http, s.url, moved.token, sid, label="alice (resumed)")
            s.clients.append(back)
            assert kind(back.received[0]) == "reconnect", back.summary()
            m = await back.wait_for(is_kind("room_update"), since=0, timeout=FAST_S, what="the resumed room")
            assert (m.room_update.room.name, m.room_update.room.sid) == (room_b, rsid_b)
            assert (await get(s, room_b, "alice")).sid == sid
            assert await listed(s, room_a) == ["watcher-a"]

            assert_versions_increase(obs_a, obs_b, alice)
            for c in (alice, obs_a, obs_b, back):
                assert not c.errors, c.errors

    run(main())


# --- a non-publisher into a room that does not exist yet, and back -------------------------


def test_a_move_creates_a_missing_destination_and_can_be_moved_back(usher):
    async def main():
        room_a, room_new = unique("py-move-src"), unique("py-move-new")
        async with Session(usher.url) as s:
            obs = await s.join(room_a, "watcher")
            bob = await s.join(room_a, "bob")
            sid = bob.join_response.participant.sid
            rsid_a = bob.join_response.room.sid
            await obs.wait_for(update_about("bob", lambda p: p.state == JOINED), what="bob joined")
            assert await room_names(s, room_new) == []

            marks = bob.mark(), obs.mark()
            started = time.monotonic()
            await move(s, room_a, "bob", room_new)
            m = await bob.wait_for(is_kind("room_moved"), since=marks[0], timeout=FAST_S, what="room_moved")
            moved = m.room_moved
            assert moved.room.name == room_new and moved.room.sid.startswith("RM_"), moved.room
            assert moved.room.sid != rsid_a
            assert list(moved.other_participants) == []
            assert (moved.participant.sid, list(moved.participant.tracks)) == (sid, [])
            assert decode_token(moved.token)["video"]["room"] == room_new

            # the destination was created; the room_moved room is that room
            rooms = await s.rs.list_rooms(api.ListRoomsRequest(names=[room_new]))
            assert [(r.name, r.sid) for r in rooms.rooms] == [(room_new, moved.room.sid)]

            # a non-publisher's departure comes with the next presence batch (≤ 3 s)
            m = await obs.wait_for(departed("bob"), since=marks[1], what="bob left")
            waited = time.monotonic() - started
            [gone] = infos_about(m, "bob")
            assert (gone.sid, gone.disconnect_reason) == (sid, MIGRATION), gone
            assert waited < 3.0 + 1.5, f"departure announced after {waited:.2f}s"
            assert await listed(s, room_a) == ["watcher"]
            assert await listed(s, room_new) == ["bob"]
            await assert_not_in(s, room_a, "bob")

            # moved back: the same session arrives in the source again
            marks = bob.mark(), obs.mark()
            await move(s, room_new, "bob", room_a)
            m = await bob.wait_for(is_kind("room_moved"), since=marks[0], timeout=FAST_S, what="room_moved back")
            back = m.room_moved
            assert (back.room.name, back.room.sid, back.participant.sid) == (room_a, rsid_a, sid)
            others = [(p.identity, p.sid) for p in back.other_participants]
            assert others == [("watcher", obs.join_response.participant.sid)], others
            assert decode_token(back.token)["video"]["room"] == room_a
            m = await obs.wait_for(
                update_about("bob", lambda p: p.sid == sid and p.state != DISCONNECTED),
                since=marks[1],
                what="bob back in a",
            )
            assert await listed(s, room_a) == ["bob", "watcher"]
            assert await listed(s, room_new) == []

            # bob's own leave ends him where he is now
            await bob.leave()
            await bob.wait_closed()
            assert await listed(s, room_a) == ["watcher"]
            assert await listed(s, room_new) == []
            assert len(bob.all(is_kind("room_moved"))) == 2
            assert_versions_increase(obs, bob)
            assert not obs.errors and not bob.errors

    run(main())


# --- (b) refusals change nothing -----------------------------------------------------------


def test_refused_moves_change_nothing(usher):
    async def main():
        room_a, room_b, room_d = unique("py-move-ra"), unique("py-move-rb"), unique("py-move-rd")
        async with Session(usher.url) as s:
            obs = await s.join(room_a, "observer")
            alice = await s.join(room_a, "alice")
            sid = alice.join_response.participant.sid
            mic = await alice.add_track("mic", AUDIO, MIC)  # a publisher: its departure would be immediate
            old = await old_client(s, room_a, "old", protocol=15)
            old_sid = old.join_response.participant.sid
            twin = await s.join(room_d, "alice")  # the same identity, already in room_d
            twin_sid = twin.join_response.participant.sid
            await obs.wait_for(update_about("alice", lambda p: track_sids(p) == [mic.sid]), what="alice's mic")
            await obs.wait_for(update_about("old", lambda p: p.state == JOINED), what="old joined")
            assert await listed(s, room_a) == ["alice", "observer", "old"]
            before = {who: await get(s, room_a, who) for who in ("alice", "old")}
            before["twin"] = await get(s, room_d, "alice")
            clients = {"observer": obs, "alice": alice, "old": old, "twin": twin}
            marks = {name: c.mark() for name, c in clients.items()}

            # same room
            e = await refused_move(s, move_req(room_a, "alice", room_a))
            assert_twirp(e, "invalid_argument", 400, SAME_ROOM, "same room")
            # unknown identity; unknown room
            e = await refused_move(s, move_req(room_a, "nobody", room_b))
            assert_twirp(e, "not_found", 404, NOT_FOUND_PARTICIPANT, "unknown identity")
            e = await refused_move(s, move_req(unique("py-move-none"), "alice", room_b))
            assert_twirp(e, "not_found", 404, NOT_FOUND_PARTICIPANT, "unknown room")
            # a client too old to follow a move
            e = await refused_move(s, move_req(room_a, "old", room_b))
            assert_twirp(e, "failed_precondition", 412, TOO_OLD, "protocol 15")
            # the identity is already in the destination
            e = await refused_move(s, move_req(room_a, "alice", room_d))
            assert_twirp(e, "already_exists", 409, label="already in the destination")
            # grants: the destinationRoom must be the request's, roomAdmin for the request's room
            req = move_req(room_a, "alice", room_b)
            for label, token in [
                ("another destinationRoom", mover_token(room_a, room_d)),
                ("no destinationRoom", mover_token(room_a, "")),
                ("roomAdmin of another room", mover_token(room_d, room_b)),
                ("no roomAdmin", mover_token(room_a, room_b, room_admin=False)),
            ]:
                e = await refused_move(s, req, token)
                assert_twirp(e, "unauthenticated", 401, PERMISSIONS_DENIED, label)

            # nothing changed: no one was told anything, everyone is where they were
            await asyncio.sleep(QUIET_S)
            for name, c in clients.items():
                for k in MOVE_EFFECTS:
                    assert c.all(is_kind(k), since=marks[name]) == [], f"{name} got {k}; {c.summary()}"
                assert not c.closed.is_set(), f"{name}: {c.summary()}"
                # no one hears of a change to alice, old or the twin (a batch may repeat news)
                for who, was in before.items():
                    changed = update_about(
                        "alice" if who == "twin" else who,
                        lambda p, was=was: p.sid == was.sid and (p.state == DISCONNECTED or p.version > was.version),
                    )
                    assert c.all(changed, since=marks[name]) == [], f"{name} heard of {who}: {c.summary()}"
            # the API shows the same versions: nothing about them changed
            after = {who: await get(s, room_a, who) for who in ("alice", "old")}
            after["twin"] = await get(s, room_d, "alice")
            assert {k: (v.sid, v.version, v.state) for k, v in after.items()} == {
                k: (v.sid, v.version, v.state) for k, v in before.items()
            }
            assert await listed(s, room_a) == ["alice", "observer", "old"]
            here = await get(s, room_a, "alice")
            assert (here.sid, here.state, track_sids(here)) == (sid, JOINED, [mic.sid])
            assert (await get(s, room_a, "old")).sid == old_sid
            in_d = await s.rs.list_participants(api.ListParticipantsRequest(room=room_d))
            assert [(p.identity, p.sid) for p in in_d.participants] == [("alice", twin_sid)]
            assert await room_names(s, room_b) == [], "a refused move created its destination"

            # the refusals were about the request: with the twin gone, the same move succeeds
            await twin.leave()
            await twin.wait_closed()
            assert await listed(s, room_d) == []
            since = alice.mark()
            await move(s, room_a, "alice", room_d)
            m = await alice.wait_for(is_kind("room_moved"), since=since, timeout=FAST_S, what="room_moved to d")
            assert (m.room_moved.room.name, m.room_moved.participant.sid) == (room_d, sid)
            await obs.wait_for(
                update_about("alice", lambda p: p.state == DISCONNECTED and p.disconnect_reason == MIGRATION),
                timeout=FAST_S,
                what="alice moved out",
            )
            assert await listed(s, room_a) == ["observer", "old"]
            for c in (obs, alice, old, twin):
                assert not c.errors, c.errors

    run(main())
