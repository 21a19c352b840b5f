"""ForwardParticipant on connected sessions, driven by the official Python SDK
(``LiveKitAPI().room.forward_participant``, protobuf) while ``signal_client.SignalClient``
participants are connected over ``/rtc``. LiveKit's open-source server does not implement
forwarding; Usher does.

Grants are those of a move (``roomAdmin`` for the request's room, ``destinationRoom`` equal to
the request's destination; the SDK mints them). The participant stays in its room; each
destination (created if missing) gets a read-only forwarded copy: the same sid and track sids,
``kind_details`` containing FORWARDED, shown to observers there at once and listed by the API.
Its metadata, name, attributes, mutes and new tracks follow it there; UpdateParticipant or
MutePublishedTrack on a copy answers ``failed_precondition``. RemoveParticipant in a destination
removes that copy only (the participant stays and is told nothing); the participant leaving its
room removes every copy. The source room's observers and the participant's own socket get
nothing from forwarding.

Refusals (same room, unknown room/identity, the identity already in the destination in person
or as a copy, a wrong grant) change nothing.

"Nothing arrives" is watched for ``QUIET_S``; presence batches are waited for with
``signal_client.DEFAULT_WAIT_S``.
"""

from __future__ import annotations

import asyncio
from typing import Dict, List, Optional

import pytest
from livekit import api
from livekit.protocol import models, rtc

from conftest import unique
from helpers import (
    AUDIO,
    CAMERA,
    DISCONNECTED,
    FAST_S,
    JOINED,
    MIC,
    NOT_FOUND_PARTICIPANT,
    PERMISSIONS_DENIED,
    QUIET_S,
    REMOVED,
    SAME_ROOM,
    VIDEO,
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
)
from signal_client import SignalClient, infos_about, is_kind, update_about

FORWARDED = models.ParticipantInfo.KindDetail.FORWARDED
ALREADY_THERE = "twirp error unknown: participant already exists in the destination room"
READ_ONLY = "twirp error unknown: participant is forwarded from another room; change it there"

# What a participant must not get when it is forwarded or its copy removed (it stays where it
# is, as it is).
FORWARD_EFFECTS = ("room_moved", "leave", "track_unpublished", "refresh_token", "mute")


# --- harness ----------------------------------------------------------------------------


def forward_req(room: str, identity: str, destination: str) -> api.ForwardParticipantRequest:
    return api.ForwardParticipantRequest(room=room, identity=identity, destination_room=destination)


async def forward(s: Session, room: str, identity: str, destination: str) -> None:
    resp = await s.rs.forward_participant(forward_req(room, identity, destination))
    assert resp is None, resp  # the SDK returns nothing for the empty ForwardParticipantResponse


async def refused_forward(
    s: Session, req: api.ForwardParticipantRequest, token: Optional[str] = None
) -> api.TwirpError:
    """A forward that must fail; with ``token``, sent verbatim instead of the SDK's own."""
    return await refused_rpc(s, "forward_participant", req, token)


def is_copy(p: models.ParticipantInfo) -> bool:
    return FORWARDED in p.kind_details


def copy_of(identity: str, sid: str, cond=lambda p: True):
    """Predicate: an update showing the forwarded copy of session ``sid``, present, with ``cond``."""
    return update_about(identity, lambda p: p.sid == sid and is_copy(p) and p.state != DISCONNECTED and cond(p))


def mutes(p: models.ParticipantInfo) -> Dict[str, bool]:
    return {t.sid: t.muted for t in p.tracks}


def news_about(identity: str, was: models.ParticipantInfo):
    """Predicate: an update telling of a change to session ``was`` (a presence batch may repeat
    what a client already knows, with the same version)."""
    return update_about(
        identity, lambda p: p.sid == was.sid and (p.state == DISCONNECTED or p.version > was.version)
    )


def assert_nothing_special(c: SignalClient, was: models.ParticipantInfo, since: int) -> None:
    """Forwarding ``c``'s participant (``was``) told it nothing: no move, leave, unpublish, token
    or mute, and no news about itself."""
    for k in FORWARD_EFFECTS:
        assert c.all(is_kind(k), since=since) == [], f"{c.label} got {k}: {c.summary()}"
    assert c.all(news_about(was.identity, was), since=since) == [], f"{c.label}: {c.summary()}"


async def update_by_api(s: Session, room: str, identity: str, **fields) -> models.ParticipantInfo:
    return await s.rs.update_participant(api.UpdateParticipantRequest(room=room, identity=identity, **fields))


def copy_lives(c: SignalClient, identity: str) -> List[List[models.ParticipantInfo]]:
    """The infos about ``identity`` in ``c``'s updates, split after each DISCONNECTED."""
    lives: List[List[models.ParticipantInfo]] = [[]]
    for m in c.all(update_about(identity)):
        for p in infos_about(m, identity):
            lives[-1].append(p)
            if p.state == DISCONNECTED:
                lives.append([])
    return [life for life in lives if life]


def assert_quiet_about(c: SignalClient, identity: str, since: int) -> None:
    assert c.all(update_about(identity), since=since) == [], f"{c.label} heard of {identity}: {c.summary()}"


# --- (a) a publisher forwarded into two rooms ----------------------------------------------


def test_a_publisher_forwarded_to_two_rooms_is_shown_kept_in_sync_and_removed(usher):
    async def main():
        room_a, room_b, room_c = unique("py-fwd-a"), unique("py-fwd-b"), unique("py-fwd-c")
        async with Session(usher.url) as s:
            obs_a = await s.join(room_a, "watcher-a")
            obs_b = await s.join(room_b, "watcher-b")
            obs_c = await s.join(room_c, "watcher-c")
            host = await s.join(room_a, "host", metadata="m0", attributes={"lang": "en"})
            sid = host.join_response.participant.sid
            mic = await host.add_track("mic", AUDIO, MIC)
            await obs_a.wait_for(
                update_about("host", lambda p: track_sids(p) == [mic.sid]), timeout=FAST_S, what="host's mic"
            )
            assert await listed(s, room_b) == ["watcher-b"]
            assert await listed(s, room_c) == ["watcher-c"]
            home = await get(s, room_a, "host")
            assert (home.sid, home.state, track_sids(home), list(home.kind_details)) == (sid, JOINED, [mic.sid], [])

            marks = host.mark(), obs_a.mark(), obs_b.mark(), obs_c.mark()
            await forward(s, room_a, "host", room_b)
            await forward(s, room_a, "host", room_c)

            # observers in each destination see the copy arrive at once, with its track
            for obs, since in zip((obs_b, obs_c), marks[2:]):
                m = await obs.wait_for(copy_of("host", sid), since=since, timeout=FAST_S, what="host's copy")
                [came] = infos_about(m, "host")
                assert (came.metadata, dict(came.attributes), track_sids(came)) == ("m0", {"lang": "en"}, [mic.sid])
                assert (came.tracks[0].type, came.tracks[0].source) == (AUDIO, MIC), came
                assert list(came.kind_details) == [FORWARDED], came

            # the API lists it in both destinations (and still in its own room)
            for room, watcher in ((room_b, "watcher-b"), (room_c, "watcher-c")):
                assert await listed(s, room) == ["host", watcher]
                resp = await s.rs.list_participants(api.ListParticipantsRequest(room=room))
                [there] = [p for p in resp.participants if p.identity == "host"]
                assert (there.sid, track_sids(there), there.metadata) == (sid, [mic.sid], "m0"), there
                assert is_copy(there), there
                got = await get(s, room, "host")
                assert (got.sid, track_sids(got), is_copy(got)) == (sid, [mic.sid], True), got
            assert await listed(s, room_a) == ["host", "watcher-a"]
            still = await get(s, room_a, "host")
            assert (still.version, list(still.kind_details)) == (home.version, []), still

            # the source room and the participant itself see nothing new; destinations see
            # only the participant, not the others of its room
            await asyncio.sleep(QUIET_S)
            assert obs_a.all(news_about("host", home), since=marks[1]) == [], obs_a.summary()
            assert_nothing_special(host, home, marks[0])
            for obs in (obs_b, obs_c):
                assert_quiet_about(obs, "watcher-a", 0)

            # metadata, name and attributes changed in the source reach every copy
            marks = host.mark(), obs_b.mark(), obs_c.mark()
            info = await update_by_api(s, room_a, "host", metadata="live", name="Host", attributes={"lang": "fr"})
            assert (info.metadata, info.name, dict(info.attributes)) == ("live", "Host", {"lang": "fr"})

            def renamed(p):
                return (p.metadata, p.name, dict(p.attributes)) == ("live", "Host", {"lang": "fr"})

            for obs, since in zip((obs_b, obs_c), marks[1:]):
                await obs.wait_for(copy_of("host", sid, renamed), since=since, timeout=FAST_S, what="new metadata")
            for room in (room_b, room_c):
                got = await get(s, room, "host")
                assert renamed(got) and is_copy(got), got

            # the participant's own mute and a new track reach every copy
            marks = obs_b.mark(), obs_c.mark()
            await host.send(rtc.SignalRequest(mute=rtc.MuteTrackRequest(sid=mic.sid, muted=True)))
            for obs, since in zip((obs_b, obs_c), marks):
                await obs.wait_for(
                    copy_of("host", sid, lambda p: mutes(p) == {mic.sid: True}),
                    since=since,
                    timeout=FAST_S,
                    what="host's mic muted",
                )
            assert mutes(await get(s, room_c, "host")) == {mic.sid: True}
            marks = obs_b.mark(), obs_c.mark()
            cam = await host.add_track("cam", VIDEO, CAMERA)
            for obs, since in zip((obs_b, obs_c), marks):
                m = await obs.wait_for(
                    copy_of("host", sid, lambda p: mutes(p) == {mic.sid: True, cam.sid: False}),
                    since=since,
                    timeout=FAST_S,
                    what="host's camera",
                )
                [p] = infos_about(m, "host")
                assert {t.sid: (t.type, t.source) for t in p.tracks}[cam.sid] == (VIDEO, CAMERA), p
            for room in (room_b, room_c):
                assert mutes(await get(s, room, "host")) == {mic.sid: True, cam.sid: False}

            # a copy is read-only: changes must be made in the participant's own room
            before = await get(s, room_b, "host")
            marks = host.mark(), obs_a.mark(), obs_b.mark(), obs_c.mark()
            with pytest.raises(api.TwirpError) as ei:
                await update_by_api(s, room_b, "host", metadata="from b")
            assert_twirp(ei.value, "failed_precondition", 412, READ_ONLY, "UpdateParticipant on a copy")
            with pytest.raises(api.TwirpError) as ei:
                await s.rs.mute_published_track(
                    api.MuteRoomTrackRequest(room=room_b, identity="host", track_sid=cam.sid, muted=True)
                )
            assert_twirp(ei.value, "failed_precondition", 412, READ_ONLY, "MutePublishedTrack on a copy")
            await asyncio.sleep(QUIET_S)
            for c, since in zip((host, obs_a, obs_b, obs_c), marks):
                assert c.all(news_about("host", before), since=since) == [], f"{c.label}: {c.summary()}"
            assert host.all(is_kind("mute"), since=marks[0]) == [], host.summary()
            after = await get(s, room_b, "host")
            assert (after.version, after.metadata, mutes(after)) == (before.version, "live", mutes(before))
            assert (await get(s, room_a, "host")).metadata == "live"

            # RemoveParticipant in c removes only c's copy
            marks = host.mark(), obs_a.mark(), obs_b.mark(), obs_c.mark()
            await s.rs.remove_participant(api.RoomParticipantIdentity(room=room_c, identity="host"))
            m = await obs_c.wait_for(departed("host"), since=marks[3], what="c's copy removed")
            [gone] = infos_about(m, "host")
            assert (gone.sid, gone.disconnect_reason) == (sid, REMOVED), gone
            assert await listed(s, room_c) == ["watcher-c"]
            await assert_not_in(s, room_c, "host")
            assert await listed(s, room_b) == ["host", "watcher-b"]
            assert is_copy(await get(s, room_b, "host"))
            assert await listed(s, room_a) == ["host", "watcher-a"]
            # ... the participant stays at home and is told nothing; b and a hear nothing
            await asyncio.sleep(QUIET_S)
            assert_nothing_special(host, after, marks[0])
            assert not host.closed.is_set()
            for c, since in ((obs_a, marks[1]), (obs_b, marks[2])):
                assert c.all(news_about("host", after), since=since) == [], f"{c.label}: {c.summary()}"

            # changes now reach b only
            marks = obs_b.mark(), obs_c.mark()
            await update_by_api(s, room_a, "host", metadata="b only")
            await obs_b.wait_for(
                copy_of("host", sid, lambda p: p.metadata == "b only"), since=marks[0], timeout=FAST_S, what="b only"
            )
            await asyncio.sleep(QUIET_S)
            assert_quiet_about(obs_c, "host", marks[1])
            assert await listed(s, room_c) == ["watcher-c"]

            # forwarding into c can start again; the new copy shows the current info
            since = obs_c.mark()
            await forward(s, room_a, "host", room_c)
            m = await obs_c.wait_for(copy_of("host", sid), since=since, timeout=FAST_S, what="host's copy again")
            [back] = infos_about(m, "host")
            assert (back.metadata, mutes(back)) == ("b only", {mic.sid: True, cam.sid: False}), back
            assert await listed(s, room_c) == ["host", "watcher-c"]

            # the participant leaving its room removes every copy
            marks = obs_a.mark(), obs_b.mark(), obs_c.mark()
            await host.leave()
            await host.wait_closed()
            await obs_a.wait_for(departed("host"), since=marks[0], what="host left a")
            for obs, since in zip((obs_b, obs_c), marks[1:]):
                m = await obs.wait_for(departed("host"), since=since, what="copy gone with the host")
                assert [p.sid for p in infos_about(m, "host")] == [sid]
            assert await listed(s, room_a) == ["watcher-a"]
            assert await listed(s, room_b) == ["watcher-b"]
            assert await listed(s, room_c) == ["watcher-c"]
            for room in (room_a, room_b, room_c):
                await assert_not_in(s, room, "host")

            # the participant was never moved nor told of its copies
            assert host.all(is_kind("room_moved")) == [] and host.all(is_kind("track_unpublished")) == []
            for who in ("watcher-b", "watcher-c"):
                assert_quiet_about(host, who, 0)
            for c in (obs_a, obs_b, obs_c):
                assert c.all(is_kind("leave")) == [] and not c.closed.is_set(), c.summary()
            assert_versions_increase(obs_a, obs_b, host)
            # c saw two copies of the same session; each one's versions increase
            lives = copy_lives(obs_c, "host")
            assert [[p.state == DISCONNECTED for p in life][-1] for life in lives] == [True, True], obs_c.summary()
            for life in lives:
                versions = [p.version for p in life]
                assert all(a < b for a, b in zip(versions, versions[1:])), f"watcher-c: {versions}"
            for c in (host, obs_a, obs_b, obs_c):
                assert not c.errors, c.errors

    run(main())


# --- (b) refusals change nothing -----------------------------------------------------------


def test_refused_forwards_change_nothing(usher):
    async def main():
        room_a, room_b, room_d = unique("py-fwd-ra"), unique("py-fwd-rb"), unique("py-fwd-rd")
        room_none = unique("py-fwd-rnone")
        async with Session(usher.url) as s:
            obs = await s.join(room_a, "observer")
            host = await s.join(room_a, "host")
            sid = host.join_response.participant.sid
            mic = await host.add_track("mic", AUDIO, MIC)
            # the same identity, in person in room_b
            twin = await SignalClient.join(s.http, s.url, join_token(room_b, "host"), label="twin")
            s.clients.append(twin)
            twin_sid = twin.join_response.participant.sid
            obs_d = await s.join(room_d, "watcher-d")
            await forward(s, room_a, "host", room_d)  # and a copy of host in room_d
            await obs_d.wait_for(copy_of("host", sid), timeout=FAST_S, what="host's copy in d")
            await obs.wait_for(update_about("host", lambda p: track_sids(p) == [mic.sid]), what="host's mic")
            # a room with room for one, taken
            room_full = unique("py-fwd-rfull")
            await s.rs.create_room(api.CreateRoomRequest(name=room_full, max_participants=1))
            obs_full = await s.join(room_full, "watcher-full")

            async def snapshot():
                return {
                    "host": await get(s, room_a, "host"),
                    "twin": await get(s, room_b, "host"),
                    "copy": await get(s, room_d, "host"),
                }

            def brief(snap):
                return {k: (v.sid, v.version, v.state, list(v.kind_details)) for k, v in snap.items()}

            before = await snapshot()
            assert {k: (v.sid, list(v.kind_details)) for k, v in before.items()} == {
                "host": (sid, []),
                "twin": (twin_sid, []),
                "copy": (sid, [FORWARDED]),
            }
            clients = {"observer": obs, "host": host, "twin": twin, "watcher-d": obs_d, "watcher-full": obs_full}
            marks = {name: c.mark() for name, c in clients.items()}

            # same room
            e = await refused_forward(s, forward_req(room_a, "host", room_a))
            assert_twirp(e, "invalid_argument", 400, SAME_ROOM, "same room")
            # unknown identity; unknown room
            e = await refused_forward(s, forward_req(room_a, "nobody", room_none))
            assert_twirp(e, "not_found", 404, NOT_FOUND_PARTICIPANT, "unknown identity")
            e = await refused_forward(s, forward_req(unique("py-fwd-rgone"), "host", room_none))
            assert_twirp(e, "not_found", 404, NOT_FOUND_PARTICIPANT, "unknown room")
            # the identity is already in the destination: in person, or as a copy
            e = await refused_forward(s, forward_req(room_a, "host", room_b))
            assert_twirp(e, "already_exists", 409, ALREADY_THERE, "in person in the destination")
            e = await refused_forward(s, forward_req(room_a, "host", room_d))
            assert_twirp(e, "already_exists", 409, ALREADY_THERE, "a copy in the destination")
            # the twin cannot be forwarded into the room where host is either
            e = await refused_forward(s, forward_req(room_b, "host", room_a))
            assert_twirp(e, "already_exists", 409, ALREADY_THERE, "twin into host's room")
            # the destination is full
            e = await refused_forward(s, forward_req(room_a, "host", room_full))
            assert_twirp(e, "resource_exhausted", 429, label="full destination")
            # grants, as for a move
            req = forward_req(room_a, "host", room_none)
            for label, token in [
                ("another destinationRoom", mover_token(room_a, room_d)),
                ("no roomAdmin", mover_token(room_a, room_none, room_admin=False)),
            ]:
                e = await refused_forward(s, req, token)
                assert_twirp(e, "unauthenticated", 401, PERMISSIONS_DENIED, label)

            # nothing changed: no one was told anything, everyone is where they were
            await asyncio.sleep(QUIET_S)
            for name, c in clients.items():
                for k in FORWARD_EFFECTS:
                    assert c.all(is_kind(k), since=marks[name]) == [], f"{name} got {k}; {c.summary()}"
                assert not c.closed.is_set(), f"{name}: {c.summary()}"
                # no one hears of a change to host, its twin or its copy (a batch may repeat news)
                for was in before.values():
                    assert c.all(news_about("host", was), since=marks[name]) == [], f"{name}: {c.summary()}"
            assert brief(await snapshot()) == brief(before)
            assert await listed(s, room_a) == ["host", "observer"]
            assert await listed(s, room_b) == ["host"]
            assert await listed(s, room_d) == ["host", "watcher-d"]
            assert await listed(s, room_full) == ["watcher-full"]
            assert await room_names(s, room_none) == [], "a refused forward created its destination"

            # the refusals were about the request: with the twin gone, the same forward succeeds
            await twin.leave()
            await twin.wait_closed()
            assert await listed(s, room_b) == []
            await forward(s, room_a, "host", room_b)
            copy = await get(s, room_b, "host")
            assert (copy.sid, track_sids(copy), is_copy(copy)) == (sid, [mic.sid], True), copy
            assert await listed(s, room_a) == ["host", "observer"]
            # ... and a destination that does not exist yet is created
            room_new = unique("py-fwd-rnew")
            await forward(s, room_a, "host", room_new)
            assert await room_names(s, room_new) == [room_new]
            assert await listed(s, room_new) == ["host"]
            assert is_copy(await get(s, room_new, "host"))
            for c in clients.values():
                assert not c.errors, c.errors

    run(main())
