"""Webhooks, checked with the official Python receiver (``livekit.api.WebhookReceiver``).

Each test runs its own HTTP receiver (aiohttp, ``127.0.0.1:0``) and its own Usher, configured
with a ``webhook`` section pointing at it and signing with a dedicated webhook key (not the
key the API client uses). Every request the receiver gets goes through
``api.WebhookReceiver(api.TokenVerifier(key, secret)).receive(body, authorization)``: the JWT
(sent without ``Bearer``) must verify with the webhook key and carry the body's SHA-256.

Scenario: a join creates the room (signal client), a track is published,
``RoomService.UpdateParticipant`` changes the participant's metadata (``participant_updated``
is an Usher extra, sent only because ``include_events`` names it),
``RoomService.RemoveParticipant`` removes it, and the emptied room closes after its
``departure_timeout`` (1 s). The receiver must get exactly room_started, participant_joined,
track_published, participant_updated, track_unpublished, participant_left, room_finished, in
that order, each once with its own ``EV_`` id. A receiver that answers 503 to its first two
requests gets the same, after retries (about 1 s, then about 2 s).

Waits poll the receiver with deadlines; "nothing more arrives" is watched for ``QUIET_S``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import List, Optional

import aiohttp
import pytest
from aiohttp import web
from google.protobuf.json_format import Parse
from livekit import api
from livekit.protocol.webhook import WebhookEvent

from conftest import DEV_KEY, DEV_SECRET, UsherServer, unique
from helpers import AUDIO, MIC, REMOVED, join_token
from signal_client import SignalClient, is_kind

HOOK_KEY = "hookkey"
HOOK_SECRET = "hook-secret-for-the-webhook-receiver-0123456789"
CONTENT_TYPE = "application/webhook+json"
LIFE = [
    "room_started",
    "participant_joined",
    "track_published",
    "participant_updated",
    "track_unpublished",
    "participant_left",
    "room_finished",
]
# Every event Usher can send, so a stray one (an aborted connection, a room metadata change)
# would reach the receiver and fail "exactly these events, each once".
EVERY_EVENT = LIFE + ["participant_connection_aborted", "room_metadata_changed"]
QUIET_S = 1.0
ARRIVAL_TIMEOUT_S = 30.0


@dataclass
class Request:
    """One request the receiver got, verified by the SDK receiver."""

    at: float
    body: str
    authorization: str
    event: WebhookEvent
    status: int


class Receiver:
    """An aiohttp webhook endpoint at ``/hook`` that verifies every request with the SDK.

    A request the SDK rejects, or with the wrong Content-Type, is recorded in ``problems``
    and answered 400 (not retried by the sender); so is a body with fields unknown to
    ``livekit.protocol`` or not in lowerCamelCase (recorded only). The first ``fail_first``
    verified requests are answered 503; the rest 200 and count as ``delivered``."""

    def __init__(self, fail_first: int = 0) -> None:
        self.sdk = api.WebhookReceiver(api.TokenVerifier(HOOK_KEY, HOOK_SECRET))
        self.fail_first = fail_first
        self.requests: List[Request] = []
        self.problems: List[str] = []
        self.url = ""
        self._runner: Optional[web.AppRunner] = None

    @property
    def delivered(self) -> List[Request]:
        return [r for r in self.requests if r.status == 200]

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        auth = request.headers.get("Authorization", "")
        ctype = request.headers.get("Content-Type", "")
        try:
            body = raw.decode("utf-8")
            event = self.sdk.receive(body, auth)
        except Exception as e:  # noqa: BLE001 - recorded, the test fails on it
            self.problems.append(f"WebhookReceiver rejected a request: {e!r}; auth={auth!r} body={raw[:300]!r}")
            return web.Response(status=400)
        try:
            # Beyond the SDK (which ignores unknown fields): every field is one this
            # livekit-protocol knows, and names are protojson's lowerCamelCase.
            Parse(body, WebhookEvent())
        except Exception as e:  # noqa: BLE001
            self.problems.append(f"body is not strict WebhookEvent JSON: {e!r}; body={body[:300]!r}")
        if '"createdAt"' not in body or '"created_at"' in body:
            self.problems.append(f"body is not lowerCamelCase protojson: {body[:300]!r}")
        if ctype != CONTENT_TYPE:
            self.problems.append(f"Content-Type {ctype!r} on {event.event} {event.id}")
            return web.Response(status=400)
        if auth.lower().startswith("bearer "):
            self.problems.append(f"Authorization with a Bearer prefix on {event.event}: {auth!r}")
        status = 200
        if self.fail_first > 0:
            self.fail_first -= 1
            status = 503
        self.requests.append(Request(time.monotonic(), body, auth, event, status))
        return web.Response(status=status, text="ok" if status == 200 else "try again")

    async def start(self) -> "Receiver":
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_delivered(self, n: int, timeout: float = ARRIVAL_TIMEOUT_S) -> List[Request]:
        """Polls until ``n`` deliveries arrived (or a problem was seen); fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        while len(self.delivered) < n and not self.problems:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(self.delivered)} of {n} webhook deliveries within {timeout}s: {self.names()}"
                )
            await asyncio.sleep(0.05)
        assert self.problems == [], "\n".join(self.problems)
        return self.delivered

    def names(self, requests: Optional[List[Request]] = None) -> List[str]:
        return [r.event.event for r in (self.delivered if requests is None else requests)]


def config(receiver_url: str) -> str:
    events = ", ".join(EVERY_EVENT)
    return (
        f"keys:\n  {DEV_KEY}: {DEV_SECRET}\n  {HOOK_KEY}: {HOOK_SECRET}\n"
        f"webhook:\n  api_key: {HOOK_KEY}\n  urls: ['{receiver_url}']\n"
        f"  filter_params:\n    include_events: [{events}]\n"
        "room:\n  departure_timeout: 1\n"
    )


async def start_usher(receiver: Receiver, label: str) -> UsherServer:
    server = UsherServer(["--config-body", config(receiver.url), "--bind", "127.0.0.1", "--port", "0"], label)
    return await asyncio.to_thread(server.start)


@dataclass
class Life:
    room: str
    participant_sid: str
    track_sid: str


async def room_life(url: str, room: str) -> Life:
    """Join (creates the room), publish a mic, UpdateParticipant, RemoveParticipant."""
    async with aiohttp.ClientSession() as http:
        lk = api.LiveKitAPI(url, DEV_KEY, DEV_SECRET)
        alice = None
        try:
            alice = await SignalClient.join(http, url, join_token(room, "alice"), label="alice")
            psid = alice.join_response.participant.sid
            mic = await alice.add_track("mic", AUDIO, MIC)
            info = await lk.room.update_participant(
                api.UpdateParticipantRequest(room=room, identity="alice", metadata="hand raised")
            )
            assert info.metadata == "hand raised"
            await lk.room.remove_participant(api.RoomParticipantIdentity(room=room, identity="alice"))
            await alice.wait_for(is_kind("leave"), timeout=5, what="leave after RemoveParticipant")
            return Life(room, psid, mic.sid)
        finally:
            if alice is not None:
                await alice.close()
            await lk.aclose()


def check_life(receiver: Receiver, life: Life, delivered: List[Request]) -> None:
    events = [r.event for r in delivered]
    assert receiver.names(delivered) == LIFE
    ids = [e.id for e in events]
    assert len(set(ids)) == len(ids), f"each event once, with its own id: {ids}"
    assert all(i.startswith("EV_") for i in ids), ids
    assert {e.room.name for e in events} == {life.room}
    room_sids = {e.room.sid for e in events}
    assert len(room_sids) == 1 and next(iter(room_sids)).startswith("RM_"), room_sids
    now = time.time()
    created = [e.created_at for e in events]
    assert all(abs(now - c) < 120 for c in created), created
    assert created == sorted(created), f"created_at goes back: {created}"

    started, joined, published, updated, unpublished, left, finished = events
    for e in (joined, published, updated, unpublished, left):
        assert (e.participant.identity, e.participant.sid) == ("alice", life.participant_sid), e.event
    for e in (published, unpublished):
        assert e.track.sid == life.track_sid, e.event
        assert e.track.type == AUDIO and e.track.source == MIC, e.event
    assert updated.participant.metadata == "hand raised"
    assert left.participant.disconnect_reason == REMOVED
    for e in (started, finished):
        assert not e.HasField("participant") and not e.HasField("track"), e.event


def check_signature_binds_body(receiver: Receiver, req: Request) -> None:
    """The SDK receiver accepts the delivery as sent, and rejects it tampered or under another key."""
    assert receiver.sdk.receive(req.body, req.authorization).id == req.event.id
    tampered = req.body.replace(req.event.room.name, req.event.room.name + "x", 1)
    assert tampered != req.body
    with pytest.raises(Exception, match="hash mismatch"):
        receiver.sdk.receive(tampered, req.authorization)
    with pytest.raises(Exception):
        api.WebhookReceiver(api.TokenVerifier(DEV_KEY, DEV_SECRET)).receive(req.body, req.authorization)


def test_room_life_arrives_in_order_each_event_once_verified_by_sdk_receiver():
    async def main():
        receiver = await Receiver().start()
        server = None
        try:
            server = await start_usher(receiver, "usher webhooks")
            life = await room_life(server.url, unique("py-hook"))
            delivered = await receiver.wait_delivered(len(LIFE))
            check_life(receiver, life, delivered)
            check_signature_binds_body(receiver, delivered[0])
            await asyncio.sleep(QUIET_S)
            assert receiver.names(receiver.requests) == LIFE, "nothing more, nothing retried"
            await asyncio.to_thread(server.stop)
            await asyncio.sleep(0.2)
            assert receiver.names(receiver.requests) == LIFE, "nothing more at shutdown"
            assert receiver.problems == []
        finally:
            if server is not None:
                await asyncio.to_thread(server.stop)
            await receiver.stop()

    asyncio.run(main())


def test_receiver_failing_first_two_requests_gets_every_event_in_order():
    async def main():
        receiver = await Receiver(fail_first=2).start()
        server = None
        try:
            server = await start_usher(receiver, "usher webhooks 503")
            life = await room_life(server.url, unique("py-hook-retry"))
            delivered = await receiver.wait_delivered(len(LIFE))
            check_life(receiver, life, delivered)
            reqs = receiver.requests
            # room_started was refused twice, then sent again: the same body (same id) each time
            assert [r.status for r in reqs[:3]] == [503, 503, 200]
            assert reqs[0].body == reqs[1].body == reqs[2].body
            assert reqs[2].event.id == delivered[0].event.id and delivered[0].event.event == "room_started"
            # backoff: about 1 s, then about 2 s (±20 % jitter); lower bounds only, upper ones loose
            gap1, gap2 = reqs[1].at - reqs[0].at, reqs[2].at - reqs[1].at
            assert 0.7 <= gap1 <= 5.0, f"first retry after {gap1:.2f}s"
            assert 1.5 <= gap2 <= 8.0, f"second retry after {gap2:.2f}s"
            check_signature_binds_body(receiver, reqs[0])
            await asyncio.sleep(QUIET_S)
            assert [r.status for r in receiver.requests] == [503, 503] + [200] * len(LIFE)
            assert receiver.names(receiver.requests) == LIFE[:1] * 2 + LIFE, "nothing more, nothing twice"
            await asyncio.to_thread(server.stop)
            await asyncio.sleep(0.2)
            assert len(receiver.requests) == 2 + len(LIFE), "nothing more at shutdown"
            assert receiver.problems == []
        finally:
            if server is not None:
                await asyncio.to_thread(server.stop)
            await receiver.stop()

    asyncio.run(main())
