"""Signal loss, the departure window and resume; UpdateSubscriptions. Driven by the official
Python SDK (``livekit.api.LiveKitAPI``, protobuf) while ``signal_client.SignalClient``
participants are connected over ``/rtc``.

A socket closed without a ``leave`` keeps its participant in the room for the room's
``departure_timeout`` (default 20 s), unannounced; ``/rtc?…&reconnect=1&sid=…`` with a token
for the same identity takes it back and gets, in order: ``reconnect``, the departures it
missed (protocol ≥ 9), everyone's current info, the room. Without a resume it is removed with
``CONNECTION_TIMEOUT``, and a late resume is told to rejoin from scratch (``STATE_MISMATCH``
leave, action ``RECONNECT``). A ``sync_state`` naming a track the room does not know gets the
same leave and removes the participant.

UpdateSubscriptions (RPC) and a client's ``subscription`` request answer an unknown track
with ``subscription_response`` ``SE_TRACK_NOTFOUND`` on the subscriber's socket.

Presence updates about non-publishers may be batched for up to 3 s, so those waits use
``signal_client.DEFAULT_WAIT_S``; the rest are immediate. "Nothing arrives" is watched for
``QUIET_S``.
"""

from __future__ import annotations

import asyncio
import time
from typing import List

import pytest
from livekit import api
from livekit.protocol import models, rtc

from conftest import unique
from helpers import (
    AUDIO,
    CAMERA,
    DISCONNECTED,
    JOINED,
    MIC,
    NOT_FOUND_PARTICIPANT,
    QUIET_S,
    VIDEO,
    Session,
    assert_versions_increase,
    departed,
    join_token,
    listed,
    run,
    track_sids,
    verify,
)
from signal_client import SignalClient, infos_about, is_kind, kind, update_about

CONNECTION_TIMEOUT = models.DisconnectReason.CONNECTION_TIMEOUT
STATE_MISMATCH = models.DisconnectReason.STATE_MISMATCH
RECONNECT = rtc.LeaveRequest.Action.RECONNECT
SE_TRACK_NOTFOUND = models.SubscriptionError.SE_TRACK_NOTFOUND
NOT_FOUND_ROOM = "twirp error unknown: requested room does not exist"


# --- harness ----------------------------------------------------------------------------


async def resume(s: Session, room: str, identity: str, sid: str) -> SignalClient:
    """Resumes ``identity``'s session ``sid`` with a fresh token for the same identity/room."""
    c = await SignalClient.resume(s.http, s.url, join_token(room, identity), sid, label=f"{identity} (resumed)")
    s.clients.append(c)
    return c


async def assert_told_to_rejoin(c: SignalClient) -> None:
    """A refused resume: exactly one leave (STATE_MISMATCH, action RECONNECT), then the close."""
    await c.wait_closed()
    assert [kind(m) for m in c.received] == ["leave"], c.summary()
    leave = c.received[0].leave
    assert (leave.reason, leave.action) == (STATE_MISMATCH, RECONNECT), leave
    assert not c.errors, c.errors


# --- (a) lost, kept, resumed with what it missed ------------------------------------------


def test_lost_socket_keeps_the_participant_and_a_resume_gets_what_it_missed(usher):
    async def main():
        room = unique("py-resume")
        async with Session(usher.url) as s:
            obs = await s.join(room, "observer")
            alice = await s.join(room, "alice", metadata="m0")
            sid = alice.join_response.participant.sid
            rsid = alice.join_response.room.sid
            mic = await alice.add_track("mic", AUDIO, MIC)
            bob = await s.join(room, "bob")
            bob_sid = bob.join_response.participant.sid
            await obs.wait_for(update_about("bob", lambda p: p.state == JOINED), since=0, what="bob joined")
            await obs.wait_for(update_about("alice", lambda p: track_sids(p) == [mic.sid]), since=0, what="alice's mic")

            # alice's socket goes without a leave
            await alice.close()
            since_lost = obs.mark()

            # inside the window she is still listed, unchanged
            got = await s.rs.list_participants(api.ListParticipantsRequest(room=room))
            by_id = {p.identity: p for p in got.participants}
            assert sorted(by_id) == ["alice", "bob", "observer"]
            a = by_id["alice"]
            assert (a.sid, a.state, track_sids(a), a.metadata) == (sid, JOINED, [mic.sid], "m0")
            one = await s.rs.get_participant(api.RoomParticipantIdentity(room=room, identity="alice"))
            assert one.sid == sid and track_sids(one) == [mic.sid]

            # while she is away: bob leaves, and the room metadata changes
            await bob.leave()
            await bob.wait_closed()
            m = await obs.wait_for(departed("bob"), what="bob left")
            assert infos_about(m, "bob")[0].sid == bob_sid
            updated = await s.rs.update_room_metadata(api.UpdateRoomMetadataRequest(room=room, metadata="while away"))
            assert updated.metadata == "while away"
            await obs.wait_for(
                is_kind("room_update", lambda u: u.room.metadata == "while away"), timeout=5, what="room metadata"
            )
            assert await listed(s, room) == ["alice", "observer"]
            # the others were told nothing about alice
            assert obs.all(update_about("alice"), since=since_lost) == [], obs.summary()

            # she resumes with a new token for the same identity
            back = await resume(s, room, "alice", sid)
            await back.wait_for(is_kind("room_update"), since=0, timeout=5, what="the resumed state")
            frames = back.received[:4]
            assert [kind(m) for m in frames] == ["reconnect", "update", "update", "room_update"], back.summary()
            assert frames[0].reconnect.server_info.version != ""
            # the departures she missed
            gone = frames[1].update.participants
            assert [(p.identity, p.sid, p.state) for p in gone] == [("bob", bob_sid, DISCONNECTED)]
            # everyone's current info, her own included, same sid, tracks kept
            everyone = {p.identity: p for p in frames[2].update.participants}
            assert sorted(everyone) == ["alice", "observer"]
            me = everyone["alice"]
            assert (me.sid, me.state, me.metadata, track_sids(me)) == (sid, JOINED, "m0", [mic.sid])
            assert (me.tracks[0].type, me.tracks[0].source) == (AUDIO, MIC)
            assert everyone["observer"].sid == obs.join_response.participant.sid
            # the room as it is now
            r = frames[3].room_update.room
            assert (r.name, r.sid, r.metadata, r.num_participants) == (room, rsid, "while away", 2)

            # the resumed socket is live: pings are answered...
            await back.send(rtc.SignalRequest(ping_req=rtc.Ping(timestamp=424242)))
            await back.wait_for(
                is_kind("pong_resp", lambda p: p.last_ping_timestamp == 424242), timeout=5, what="pong"
            )
            # ...and API changes reach it
            marks = obs.mark(), back.mark()
            info = await s.rs.update_participant(
                api.UpdateParticipantRequest(room=room, identity="alice", metadata="back")
            )
            assert (info.sid, info.metadata, track_sids(info)) == (sid, "back", [mic.sid])
            for c, since in zip((obs, back), marks):
                await c.wait_for(
                    update_about("alice", lambda p: p.sid == sid and p.metadata == "back"),
                    since=since,
                    timeout=5,
                    what="alice's new metadata",
                )
            tok = await back.wait_for(
                is_kind("refresh_token", lambda t: verify(t).metadata == "back"),
                since=marks[1],
                timeout=5,
                what="refresh token",
            )
            assert verify(tok.refresh_token).identity == "alice"

            # the observer never saw alice go
            assert obs.all(departed("alice")) == [], obs.summary()
            assert obs.all(is_kind("leave")) == [] and back.all(is_kind("leave")) == []
            assert await listed(s, room) == ["alice", "observer"]
            assert_versions_increase(obs, back)
            assert not obs.errors and not back.errors

    run(main())


# --- (b) no resume within the window ------------------------------------------------------


def test_without_a_resume_the_participant_times_out_and_a_late_resume_must_rejoin(usher):
    async def main():
        room = unique("py-resume-timeout")
        async with Session(usher.url) as s:
            created = await s.rs.create_room(api.CreateRoomRequest(name=room, departure_timeout=1))
            assert created.departure_timeout == 1
            obs = await s.join(room, "observer")
            alice = await s.join(room, "alice")
            sid = alice.join_response.participant.sid
            await obs.wait_for(update_about("alice", lambda p: p.state == JOINED), what="alice joined")

            started = time.monotonic()
            await alice.close()
            m = await obs.wait_for(departed("alice"), what="alice timed out")
            waited = time.monotonic() - started
            [gone] = infos_about(m, "alice")
            assert (gone.sid, gone.disconnect_reason) == (sid, CONNECTION_TIMEOUT), gone
            assert waited >= 1.0, f"removed after {waited:.2f}s, inside the 1 s window"
            since_gone = obs.mark()
            assert await listed(s, room) == ["observer"]
            with pytest.raises(api.TwirpError) as ei:
                await s.rs.get_participant(api.RoomParticipantIdentity(room=room, identity="alice"))
            assert (ei.value.code, ei.value.status, ei.value.message) == ("not_found", 404, NOT_FOUND_PARTICIPANT)

            # too late: the resume is upgraded, told to rejoin from scratch, and closed
            late = await resume(s, room, "alice", sid)
            await assert_told_to_rejoin(late)
            # the same for an identity the room never held
            stranger = await resume(s, room, "stranger", "PA_neverexisted")
            await assert_told_to_rejoin(stranger)

            await asyncio.sleep(QUIET_S)
            assert await listed(s, room) == ["observer"]
            # the refused resumes were not announced
            for who in ("alice", "stranger"):
                assert obs.all(update_about(who), since_gone) == [], obs.summary()

            # a fresh join works, as a new session
            again = await s.join(room, "alice")
            assert again.join_response.participant.sid not in ("", sid)
            assert await listed(s, room) == ["alice", "observer"]
            assert not obs.errors

    run(main())


# --- SyncState after a resume ---------------------------------------------------------------


def test_sync_state_naming_an_unknown_track_asks_for_a_full_reconnect(usher):
    async def main():
        room = unique("py-resume-sync")
        async with Session(usher.url) as s:
            obs = await s.join(room, "observer")
            alice = await s.join(room, "alice")
            sid = alice.join_response.participant.sid
            mic = await alice.add_track("mic", AUDIO, MIC)
            await obs.wait_for(update_about("alice", lambda p: track_sids(p) == [mic.sid]), what="alice's mic")

            await alice.close()
            back = await resume(s, room, "alice", sid)
            await back.wait_for(is_kind("room_update"), since=0, timeout=5, what="the resumed state")
            assert kind(back.received[0]) == "reconnect", back.summary()

            # a state that matches the room's: kept; its subscription is handled like one
            since = back.mark()
            await back.send(
                rtc.SignalRequest(
                    sync_state=rtc.SyncState(
                        publish_tracks=[rtc.TrackPublishedResponse(cid="mic", track=mic)],
                        subscription=rtc.UpdateSubscription(track_sids=["TR_syncghost"], subscribe=True),
                    )
                )
            )
            m = await back.wait_for(is_kind("subscription_response"), since=since, timeout=5, what="not found")
            assert (m.subscription_response.track_sid, m.subscription_response.err) == (
                "TR_syncghost",
                SE_TRACK_NOTFOUND,
            )
            await asyncio.sleep(QUIET_S)
            assert back.all(is_kind("leave")) == [] and not back.closed.is_set()
            assert await listed(s, room) == ["alice", "observer"]

            # a state naming a track the room does not know: a leave asking for a full reconnect
            since = obs.mark()
            unknown = models.TrackInfo(sid="TR_notinthisroom", type=VIDEO, source=CAMERA, name="cam")
            await back.send(
                rtc.SignalRequest(
                    sync_state=rtc.SyncState(
                        publish_tracks=[
                            rtc.TrackPublishedResponse(cid="mic", track=mic),
                            rtc.TrackPublishedResponse(cid="cam", track=unknown),
                        ]
                    )
                )
            )
            m = await back.wait_for(is_kind("leave"), timeout=5, what="state mismatch leave")
            assert (m.leave.reason, m.leave.action) == (STATE_MISMATCH, RECONNECT), m.leave
            await back.wait_closed()
            assert back.received[-1] == m, "nothing follows the leave"
            # the others see it go (a publisher: at once), with the reason
            m = await obs.wait_for(departed("alice"), since=since, timeout=5, what="alice removed")
            [gone] = infos_about(m, "alice")
            assert (gone.sid, gone.disconnect_reason, list(gone.tracks)) == (sid, STATE_MISMATCH, [])
            assert await listed(s, room) == ["observer"]
            # and there is nothing left to resume
            late = await resume(s, room, "alice", sid)
            await assert_told_to_rejoin(late)
            assert_versions_increase(obs)

    run(main())


# --- (c) UpdateSubscriptions --------------------------------------------------------------


def test_update_subscriptions_answers_unknown_tracks_on_the_subscribers_socket(usher):
    async def main():
        room = unique("py-subs")
        async with Session(usher.url) as s:
            pub = await s.join(room, "pub")
            sub = await s.join(room, "sub")
            pub_sid = pub.join_response.participant.sid
            mic = await pub.add_track("mic", AUDIO, MIC)
            await sub.wait_for(update_about("pub", lambda p: track_sids(p) == [mic.sid]), timeout=5, what="mic")

            def not_found(c: SignalClient, since: int) -> List[str]:
                out = []
                for m in c.all(is_kind("subscription_response"), since):
                    assert m.subscription_response.err == SE_TRACK_NOTFOUND, m
                    out.append(m.subscription_response.track_sid)
                return sorted(out)

            async def answered(c: SignalClient, since: int, sids: List[str]) -> None:
                for t in sids:
                    await c.wait_for(
                        is_kind("subscription_response", lambda r, t=t: r.track_sid == t),
                        since=since,
                        timeout=5,
                        what=f"SE_TRACK_NOTFOUND for {t}",
                    )
                await asyncio.sleep(QUIET_S)
                assert not_found(c, since) == sorted(sids), c.summary()

            # subscribe: an existing track is fine; unknown ones are answered, from both lists
            marks = pub.mark(), sub.mark()
            resp = await s.rs.update_subscriptions(
                api.UpdateSubscriptionsRequest(
                    room=room,
                    identity="sub",
                    track_sids=[mic.sid, "TR_ghost1"],
                    subscribe=True,
                    participant_tracks=[api.ParticipantTracks(participant_sid=pub_sid, track_sids=["TR_ghost2"])],
                )
            )
            assert resp == api.UpdateSubscriptionsResponse()
            await answered(sub, marks[1], ["TR_ghost1", "TR_ghost2"])
            assert pub.all(is_kind("subscription_response"), marks[0]) == [], "only the subscriber is answered"

            # unsubscribing, even from unknown tracks: nothing to answer
            since = sub.mark()
            await s.rs.update_subscriptions(
                api.UpdateSubscriptionsRequest(
                    room=room, identity="sub", track_sids=[mic.sid, "TR_ghost3"], subscribe=False
                )
            )
            await asyncio.sleep(QUIET_S)
            assert sub.all(is_kind("subscription_response"), since) == [], sub.summary()

            # a client's own UpdateSubscription behaves the same
            since = sub.mark()
            await sub.send(
                rtc.SignalRequest(
                    subscription=rtc.UpdateSubscription(
                        track_sids=["TR_ghost4"],
                        subscribe=True,
                        participant_tracks=[
                            models.ParticipantTracks(participant_sid=pub_sid, track_sids=[mic.sid, "TR_ghost5"])
                        ],
                    )
                )
            )
            await answered(sub, since, ["TR_ghost4", "TR_ghost5"])

            # a track that ended is unknown from then on
            marks = pub.mark(), sub.mark()
            await pub.leave()
            await pub.wait_closed()
            await sub.wait_for(departed("pub"), since=marks[1], timeout=5, what="pub left")
            since = sub.mark()
            await s.rs.update_subscriptions(
                api.UpdateSubscriptionsRequest(room=room, identity="sub", track_sids=[mic.sid], subscribe=True)
            )
            await answered(sub, since, [mic.sid])

            # an unknown participant or room
            with pytest.raises(api.TwirpError) as ei:
                await s.rs.update_subscriptions(
                    api.UpdateSubscriptionsRequest(room=room, identity="nobody", track_sids=["TR_x"], subscribe=True)
                )
            assert (ei.value.code, ei.value.status, ei.value.message) == ("not_found", 404, NOT_FOUND_PARTICIPANT)
            with pytest.raises(api.TwirpError) as ei:
                await s.rs.update_subscriptions(
                    api.UpdateSubscriptionsRequest(
                        room=unique("py-nope"), identity="sub", track_sids=["TR_x"], subscribe=True
                    )
                )
            assert (ei.value.code, ei.value.status, ei.value.message) == ("not_found", 404, NOT_FOUND_ROOM)
            for k in ("leave", "track_unpublished"):
                assert sub.all(is_kind(k)) == [], f"sub got {k}"
            assert not sub.errors and not pub.errors

    run(main())
