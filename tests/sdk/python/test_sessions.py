"""Participant management on *connected* participants, driven by the official Python SDK.

The participants are played by ``signal_client.SignalClient`` (aiohttp + the official
``livekit.protocol`` messages) over ``/rtc``; the RoomService calls go through
``livekit.api.LiveKitAPI`` (protobuf). Each test checks the RPC answer *and* what every
connected client received (and, where it matters, did not receive), and that the
``version`` of the ParticipantInfo a client gets about a session strictly increases from
update to update (never below its JoinResponse snapshot).

Reference: shared/reference/signal.md §1-6, roomservice.md §3.4-3.8, §3.11, §3.3.
Presence updates (JOINED / DISCONNECTED of non-publishers) may be batched for up to 3 s,
so waits use ``signal_client.DEFAULT_WAIT_S`` (8 s); admin-caused updates are immediate.
"""

from __future__ import annotations

import asyncio
import time
from typing import List

import jwt as pyjwt
import pytest
from livekit import api
from livekit.protocol import models, rtc

from conftest import UsherServer, unique
from helpers import (
    AUDIO,
    CAMERA,
    DISCONNECTED,
    JOINED,
    MIC,
    NOT_FOUND_PARTICIPANT,
    QUIET_S,
    REMOVED,
    VIDEO,
    Session,
    assert_versions_increase,
    join_token,
    run,
    track_sids,
    verify,
)
from signal_client import SignalClient, infos_about, is_kind, update_about

ROOM_DELETED = models.DisconnectReason.ROOM_DELETED
CLIENT_INITIATED = models.DisconnectReason.CLIENT_INITIATED


# --- harness ----------------------------------------------------------------------------


def own_tokens_only(c: SignalClient) -> List[api.access_token.Claims]:
    """Every refresh_token a client got is valid and about itself."""
    claims = [verify(m.refresh_token) for m in c.all(is_kind("refresh_token"))]
    for cl in claims:
        assert cl.identity == c.label, f"{c.label} got a token for {cl.identity}"
    return claims


def permission(**kw) -> models.ParticipantPermission:
    return models.ParticipantPermission(**kw)


# --- ListParticipants / GetParticipant ----------------------------------------------------


def test_list_and_get_show_connected_participants(usher):
    async def main():
        room = unique("py-sess-list")
        async with Session(usher.url) as s:
            alice = await s.join(room, "alice", metadata="m-alice", attributes={"team": "blue"})
            bob = await s.join(room, "bob", can_publish=False)
            ja, jb = alice.join_response, bob.join_response
            assert ja.participant.sid.startswith("PA_") and jb.participant.sid.startswith("PA_")
            assert ja.participant.sid != jb.participant.sid
            assert [p.identity for p in ja.other_participants] == []
            assert [(p.identity, p.sid) for p in jb.other_participants] == [("alice", ja.participant.sid)]
            assert ja.room.name == room and ja.room.sid.startswith("RM_") and jb.room.sid == ja.room.sid
            assert ja.server_info.version != ""
            assert (ja.ping_interval, ja.ping_timeout) == (5, 15)

            # alice hears of bob (a batched presence update)
            m = await alice.wait_for(update_about("bob", lambda p: p.state == JOINED), what="bob JOINED")
            [b_info] = infos_about(m, "bob")
            assert b_info.sid == jb.participant.sid

            listed = await s.rs.list_participants(api.ListParticipantsRequest(room=room))
            by_id = {p.identity: p for p in listed.participants}
            assert sorted(by_id) == ["alice", "bob"]
            a, b = by_id["alice"], by_id["bob"]
            assert (a.sid, b.sid) == (ja.participant.sid, jb.participant.sid)
            assert a.state == JOINED and b.state == JOINED
            assert (a.name, a.metadata, dict(a.attributes)) == ("alice name", "m-alice", {"team": "blue"})
            assert a.permission.can_publish and a.permission.can_subscribe and a.permission.can_publish_data
            assert not b.permission.can_publish and b.permission.can_subscribe
            assert a.version >= 1 and b.version >= 1
            assert a.joined_at > 0 and a.joined_at_ms // 1000 == a.joined_at
            assert list(a.tracks) == [] and list(b.tracks) == []

            got = await s.rs.get_participant(api.RoomParticipantIdentity(room=room, identity="alice"))
            assert got.sid == a.sid and got.identity == "alice" and got.state == JOINED
            assert (got.name, got.metadata, dict(got.attributes)) == ("alice name", "m-alice", {"team": "blue"})
            assert got.permission == a.permission

            rooms = await s.rs.list_rooms(api.ListRoomsRequest(names=[room]))
            assert [r.num_participants for r in rooms.rooms] == [2]

            # alice leaves: bob sees her DISCONNECTED (client initiated); the API forgets her
            await alice.leave()
            await alice.wait_closed()
            m = await bob.wait_for(update_about("alice", lambda p: p.state == DISCONNECTED), what="alice left")
            [gone] = infos_about(m, "alice")
            assert gone.sid == a.sid and gone.disconnect_reason == CLIENT_INITIATED
            listed = await s.rs.list_participants(api.ListParticipantsRequest(room=room))
            assert [p.identity for p in listed.participants] == ["bob"]
            with pytest.raises(api.TwirpError) as ei:
                await s.rs.get_participant(api.RoomParticipantIdentity(room=room, identity="alice"))
            assert (ei.value.code, ei.value.status, ei.value.message) == ("not_found", 404, NOT_FOUND_PARTICIPANT)

            assert_versions_increase(alice, bob)
            own_tokens_only(alice)
            own_tokens_only(bob)
            assert not alice.errors and not bob.errors

    run(main())


# --- permissions: audience -> speaker -> audience -----------------------------------------


def test_promote_audience_to_speaker_and_back(usher):
    async def main():
        room = unique("py-sess-promote")
        async with Session(usher.url) as s:
            obs = await s.join(room, "observer")
            spk = await s.join(room, "speaker", can_publish=False)
            assert not spk.join_response.participant.permission.can_publish

            # as audience, publishing is refused and nothing is published
            await spk.send(
                rtc.SignalRequest(add_track=rtc.AddTrackRequest(cid="early", name="early", type=AUDIO, source=MIC))
            )
            m = await spk.wait_for(is_kind("request_response"), timeout=5, what="refusal")
            assert m.request_response.reason == rtc.RequestResponse.NOT_ALLOWED
            assert spk.all(is_kind("track_published")) == []

            # promote
            marks = obs.mark(), spk.mark()
            info = await s.rs.update_participant(
                api.UpdateParticipantRequest(
                    room=room,
                    identity="speaker",
                    permission=permission(can_publish=True, can_subscribe=True, can_publish_data=True),
                )
            )
            assert info.permission.can_publish and info.permission.can_subscribe and info.permission.can_publish_data
            for c, since in zip((obs, spk), marks):
                await c.wait_for(
                    update_about("speaker", lambda p: p.permission.can_publish),
                    since=since,
                    timeout=5,
                    what="promoted",
                )
            tok = await spk.wait_for(
                is_kind("refresh_token", lambda t: verify(t).video.can_publish),
                since=marks[1],
                timeout=5,
                what="publish token",
            )
            assert verify(tok.refresh_token).identity == "speaker"

            since = obs.mark()
            mic = await spk.add_track("mic", AUDIO, MIC)
            cam = await spk.add_track("cam", VIDEO, CAMERA)
            assert mic.sid.startswith("TR_") and cam.sid.startswith("TR_") and mic.sid != cam.sid
            assert (mic.type, mic.source, cam.type, cam.source) == (AUDIO, MIC, VIDEO, CAMERA)
            m = await obs.wait_for(
                update_about("speaker", lambda p: len(p.tracks) == 2), since=since, timeout=5, what="2 tracks"
            )
            [seen] = infos_about(m, "speaker")
            assert sorted(track_sids(seen)) == sorted([mic.sid, cam.sid])
            got = await s.rs.get_participant(api.RoomParticipantIdentity(room=room, identity="speaker"))
            assert sorted(track_sids(got)) == sorted([mic.sid, cam.sid])

            # narrow to the camera: only the microphone goes
            marks = obs.mark(), spk.mark()
            info = await s.rs.update_participant(
                api.UpdateParticipantRequest(
                    room=room,
                    identity="speaker",
                    permission=permission(can_publish=True, can_subscribe=True, can_publish_sources=[CAMERA]),
                )
            )
            assert track_sids(info) == [cam.sid]
            assert list(info.permission.can_publish_sources) == [CAMERA]
            m = await spk.wait_for(is_kind("track_unpublished"), since=marks[1], timeout=5, what="mic unpublished")
            assert m.track_unpublished.track_sid == mic.sid
            for c, since in zip((obs, spk), marks):
                m = await c.wait_for(
                    update_about("speaker", lambda p: track_sids(p) == [cam.sid]),
                    since=since,
                    timeout=5,
                    what="camera only",
                )
                assert list(infos_about(m, "speaker")[0].permission.can_publish_sources) == [CAMERA]

            # back to the audience: the permission is replaced as a whole, the camera goes too
            marks = obs.mark(), spk.mark()
            info = await s.rs.update_participant(
                api.UpdateParticipantRequest(room=room, identity="speaker", permission=permission(can_subscribe=True))
            )
            assert list(info.tracks) == []
            p = info.permission
            assert (p.can_publish, p.can_publish_data, p.can_subscribe, list(p.can_publish_sources)) == (
                False,
                False,
                True,
                [],
            )
            m = await spk.wait_for(is_kind("track_unpublished"), since=marks[1], timeout=5, what="cam unpublished")
            assert m.track_unpublished.track_sid == cam.sid
            for c, since in zip((obs, spk), marks):
                await c.wait_for(
                    update_about("speaker", lambda p: not p.tracks and not p.permission.can_publish),
                    since=since,
                    timeout=5,
                    what="demoted, no tracks",
                )
            await spk.wait_for(
                is_kind("refresh_token", lambda t: not verify(t).video.can_publish),
                since=marks[1],
                timeout=5,
                what="demoted token",
            )

            # publishing again is refused
            since = spk.mark()
            await spk.send(
                rtc.SignalRequest(add_track=rtc.AddTrackRequest(cid="again", name="again", type=AUDIO, source=MIC))
            )
            m = await spk.wait_for(is_kind("request_response"), since=since, timeout=5, what="refusal again")
            assert m.request_response.reason == rtc.RequestResponse.NOT_ALLOWED
            await asyncio.sleep(QUIET_S)
            assert [m.track_published.cid for m in spk.all(is_kind("track_published"))] == ["mic", "cam"]
            assert [m.track_unpublished.track_sid for m in spk.all(is_kind("track_unpublished"))] == [
                mic.sid,
                cam.sid,
            ]
            # the observer is told only through updates
            for k in ("track_published", "track_unpublished", "mute", "leave", "request_response"):
                assert obs.all(is_kind(k)) == [], f"observer got {k}"
            own_tokens_only(obs)
            own_tokens_only(spk)
            assert_versions_increase(obs, spk)

    run(main())


# --- name / metadata / attributes ---------------------------------------------------------


def test_name_metadata_and_attributes_reach_everyone(usher):
    async def main():
        room = unique("py-sess-meta")
        async with Session(usher.url) as s:
            obs = await s.join(room, "observer")
            tgt = await s.join(room, "target", metadata="m0", attributes={"keep": "1", "gone": "x"})
            v0 = tgt.join_response.participant.version

            marks = obs.mark(), tgt.mark()
            info = await s.rs.update_participant(
                api.UpdateParticipantRequest(
                    room=room,
                    identity="target",
                    name="New Name",
                    metadata='{"hand":true}',
                    attributes={"role": "speaker", "gone": ""},
                )
            )
            assert (info.name, info.metadata) == ("New Name", '{"hand":true}')
            assert dict(info.attributes) == {"keep": "1", "role": "speaker"}
            assert info.version > v0

            def changed(p):
                return (
                    p.name == "New Name"
                    and p.metadata == '{"hand":true}'
                    and dict(p.attributes) == {"keep": "1", "role": "speaker"}
                )

            for c, since in zip((obs, tgt), marks):
                await c.wait_for(
                    update_about("target", changed), since=since, timeout=5, what="new name/metadata/attributes"
                )
            m = await tgt.wait_for(
                is_kind("refresh_token", lambda t: verify(t).metadata == '{"hand":true}'),
                since=marks[1],
                timeout=5,
                what="token",
            )
            claims = verify(m.refresh_token)
            assert (claims.identity, claims.name) == ("target", "New Name")
            assert claims.attributes == {"keep": "1", "role": "speaker"}
            assert claims.video.room == room and claims.video.room_join

            # metadata alone: the name stays
            marks = obs.mark(), tgt.mark()
            info2 = await s.rs.update_participant(
                api.UpdateParticipantRequest(room=room, identity="target", metadata="second")
            )
            assert (info2.name, info2.metadata) == ("New Name", "second")
            assert info2.version > info.version
            for c, since in zip((obs, tgt), marks):
                await c.wait_for(
                    update_about("target", lambda p: p.metadata == "second" and p.name == "New Name"),
                    since=since,
                    timeout=5,
                    what="second metadata",
                )
            await tgt.wait_for(
                is_kind("refresh_token", lambda t: verify(t).metadata == "second"),
                since=marks[1],
                timeout=5,
                what="second token",
            )

            # nothing supplied: nothing changes and nothing is broadcast
            info3 = await s.rs.update_participant(api.UpdateParticipantRequest(room=room, identity="target"))
            assert (info3.name, info3.metadata, info3.version) == ("New Name", "second", info2.version)
            await asyncio.sleep(QUIET_S)
            for c in (obs, tgt):
                later = [p.version for p in c.infos("target") if p.version > info2.version]
                assert later == [], f"{c.label} saw updates after a no-op UpdateParticipant: {later}"

            got = await s.rs.get_participant(api.RoomParticipantIdentity(room=room, identity="target"))
            assert (got.name, got.metadata, dict(got.attributes)) == (
                "New Name",
                "second",
                {"keep": "1", "role": "speaker"},
            )
            # the observer never gets the target's tokens
            own_tokens_only(obs)
            assert len(own_tokens_only(tgt)) >= 3  # at start + two changes
            assert_versions_increase(obs, tgt)

    run(main())


# --- MutePublishedTrack, with and without room.enable_remote_unmute ----------------------


@pytest.fixture(scope="module")
def usher_unmute():
    server = UsherServer(
        [
            "--config-body",
            "room: {enable_remote_unmute: true}\nkeys: {devkey: secret}\n",
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
        ],
        "usher remote-unmute",
    ).start()
    yield server
    server.stop()


@pytest.mark.parametrize("unmute_enabled", [False, True], ids=["default", "enable_remote_unmute"])
def test_remote_mute_and_unmute(request, unmute_enabled):
    server = request.getfixturevalue("usher_unmute" if unmute_enabled else "usher")

    async def main():
        room = unique("py-sess-mute")
        async with Session(server.url) as s:
            obs = await s.join(room, "observer")
            spk = await s.join(room, "speaker")
            since = obs.mark()
            mic = await spk.add_track("mic", AUDIO, MIC)
            cam = await spk.add_track("cam", VIDEO, CAMERA)
            await obs.wait_for(
                update_about("speaker", lambda p: len(p.tracks) == 2), since=since, timeout=5, what="2 tracks"
            )

            def mute(sid, muted):
                return s.rs.mute_published_track(
                    api.MuteRoomTrackRequest(room=room, identity="speaker", track_sid=sid, muted=muted)
                )

            def mic_muted(want):
                return update_about(
                    "speaker",
                    lambda p: {t.sid: t.muted for t in p.tracks} == {mic.sid: want, cam.sid: False},
                )

            marks = obs.mark(), spk.mark()
            r = await mute(mic.sid, True)
            assert r.track.sid == mic.sid and r.track.muted
            # the owner is told first, then everyone sees the new state
            i_mute, m = await spk.wait_index(is_kind("mute"), since=marks[1], timeout=5, what="mute request")
            assert (m.mute.sid, m.mute.muted) == (mic.sid, True)
            for c, since in zip((obs, spk), marks):
                i, _ = await c.wait_index(mic_muted(True), since=since, timeout=5, what="mic muted")
                if c is spk:
                    assert i > i_mute, "the muted update must follow the mute request"

            marks = obs.mark(), spk.mark()
            if unmute_enabled:
                r = await mute(mic.sid, False)
                assert r.track.sid == mic.sid and not r.track.muted
                m = await spk.wait_for(is_kind("mute"), since=marks[1], timeout=5, what="unmute request")
                assert (m.mute.sid, m.mute.muted) == (mic.sid, False)
                for c, since in zip((obs, spk), marks):
                    await c.wait_for(mic_muted(False), since=since, timeout=5, what="mic unmuted")
                want = {mic.sid: False, cam.sid: False}
            else:
                with pytest.raises(api.TwirpError) as ei:
                    await mute(mic.sid, False)
                err = ei.value
                assert (err.code, err.status, err.message) == (
                    "failed_precondition",
                    412,
                    "twirp error unknown: remote unmute not enabled",
                )
                await asyncio.sleep(QUIET_S)
                assert spk.all(is_kind("mute"), since=marks[1]) == [], "a refused unmute sends nothing"
                for c, since in zip((obs, spk), marks):
                    assert c.all(mic_muted(False), since=since) == [], f"{c.label} saw the mic unmuted"
                want = {mic.sid: True, cam.sid: False}
            got = await s.rs.get_participant(api.RoomParticipantIdentity(room=room, identity="speaker"))
            assert {t.sid: t.muted for t in got.tracks} == want
            for c in (obs, spk):
                assert {t.sid: t.muted for t in c.infos("speaker")[-1].tracks} == want

            # an unknown track is not an error: an empty response
            r = await mute("TR_nope", True)
            assert not r.HasField("track")

            assert obs.all(is_kind("mute")) == [], "only the owner gets mute requests"
            own_tokens_only(obs)
            own_tokens_only(spk)
            assert_versions_increase(obs, spk)

    run(main())


# --- RemoveParticipant and rejoining ------------------------------------------------------


def test_remove_participant_then_rejoin_unless_revoked(usher):
    async def main():
        room = unique("py-sess-remove")
        async with Session(usher.url) as s:
            host = await s.join(room, "host")
            old_token = join_token(room, "troll")
            nbf = pyjwt.decode(old_token, options={"verify_signature": False})["nbf"]
            t1 = await s.join(room, "troll", old_token)
            sid1 = t1.join_response.participant.sid
            who = api.RoomParticipantIdentity(room=room, identity="troll")

            await s.rs.remove_participant(who)
            m = await t1.wait_for(is_kind("leave"), timeout=5, what="removal leave")
            assert m.leave.reason == REMOVED
            assert m.leave.action == rtc.LeaveRequest.DISCONNECT
            await t1.wait_closed()
            assert t1.received[-1] == m, "nothing follows the leave"
            m = await host.wait_for(
                update_about("troll", lambda p: p.sid == sid1 and p.state == DISCONNECTED), what="troll removed"
            )
            assert infos_about(m, "troll")[0].disconnect_reason == REMOVED
            with pytest.raises(api.TwirpError) as ei:
                await s.rs.remove_participant(who)
            assert (ei.value.code, ei.value.status, ei.value.message) == ("not_found", 404, NOT_FOUND_PARTICIPANT)

            # without revoke_token_ts the same token joins again, as a new session
            t2 = await s.join(room, "troll", old_token)
            sid2 = t2.join_response.participant.sid
            assert sid2.startswith("PA_") and sid2 != sid1
            assert [p.identity for p in t2.join_response.other_participants] == ["host"]
            listed = await s.rs.list_participants(api.ListParticipantsRequest(room=room))
            assert sorted((p.identity, p.sid) for p in listed.participants) == sorted(
                [("host", host.join_response.participant.sid), ("troll", sid2)]
            )

            # with revoke_token_ts after the token's nbf, that token is refused from now on
            cutoff = nbf + 1
            await s.rs.remove_participant(api.RoomParticipantIdentity(room=room, identity="troll", revoke_token_ts=cutoff))
            m = await t2.wait_for(is_kind("leave"), timeout=5, what="second removal")
            assert m.leave.reason == REMOVED
            await t2.wait_closed()
            refused = await s.refused(old_token)
            assert (refused.status, refused.body) == (401, "access token was revoked")
            # a token valid only from the cutoff on is accepted
            while time.time() < cutoff:
                await asyncio.sleep(0.05)
            fresh = join_token(room, "troll")
            assert pyjwt.decode(fresh, options={"verify_signature": False})["nbf"] >= cutoff
            t3 = await s.join(room, "troll", fresh)
            assert t3.join_response.participant.identity == "troll"
            # the revocation is about "troll" only
            other = await s.join(room, "bystander")
            assert other.join_response.participant.identity == "bystander"

            for m in host.all(is_kind("leave")):
                raise AssertionError(f"host got a leave: {m}")
            # The host hears of the third session. The second one's DISCONNECTED may be folded
            # into it: presence updates are batched per identity, and protocol >= 12 clients
            # reconcile sessions by identity (signal.md §5.1, "Identity switch").
            sid3 = t3.join_response.participant.sid
            await host.wait_for(
                update_about("troll", lambda p: p.sid == sid3 and p.state == JOINED), what="third session"
            )
            for p in host.infos("troll"):
                if p.sid == sid2 and p.state == DISCONNECTED:
                    assert p.disconnect_reason == REMOVED, p
            assert_versions_increase(host, t1, t2, t3)

    run(main())


# --- room metadata and deletion -----------------------------------------------------------


def test_room_metadata_and_delete_reach_every_session(usher):
    async def main():
        room = unique("py-sess-room")
        async with Session(usher.url) as s:
            a = await s.join(room, "a")
            b = await s.join(room, "b")
            rsid = a.join_response.room.sid

            updated = await s.rs.update_room_metadata(api.UpdateRoomMetadataRequest(room=room, metadata="m2 ✓"))
            assert updated.metadata == "m2 ✓" and updated.sid == rsid
            for c in (a, b):
                m = await c.wait_for(
                    is_kind("room_update", lambda u: u.room.metadata == "m2 ✓"), timeout=5, what="room metadata"
                )
                assert (m.room_update.room.name, m.room_update.room.sid) == (room, rsid)

            await s.rs.delete_room(api.DeleteRoomRequest(room=room))
            for c in (a, b):
                m = await c.wait_for(is_kind("leave"), timeout=5, what="room deleted")
                assert m.leave.reason == ROOM_DELETED
                assert m.leave.action == rtc.LeaveRequest.DISCONNECT
                await c.wait_closed()
            rooms = await s.rs.list_rooms(api.ListRoomsRequest(names=[room]))
            assert list(rooms.rooms) == []
            listed = await s.rs.list_participants(api.ListParticipantsRequest(room=room))
            assert list(listed.participants) == []
            assert_versions_increase(a, b)

    run(main())
