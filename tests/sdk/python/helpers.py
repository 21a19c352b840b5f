"""Helpers shared by the SDK suites' test modules (test_sessions, test_resume, test_moves,
test_forwards, test_webhooks): constants, tokens, the per-test ``Session`` of clients, and
RoomService/assertion helpers. Not a test module itself (pytest collects ``test_*.py`` only).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Dict, List, Optional

import aiohttp
import pytest
from livekit import api
from livekit.protocol import models

from conftest import DEV_KEY, DEV_SECRET
from signal_client import Refused, SignalClient, kind, update_about

JOINED = models.ParticipantInfo.State.JOINED
DISCONNECTED = models.ParticipantInfo.State.DISCONNECTED
MIC = models.TrackSource.MICROPHONE
CAMERA = models.TrackSource.CAMERA
AUDIO = models.TrackType.AUDIO
VIDEO = models.TrackType.VIDEO
REMOVED = models.DisconnectReason.PARTICIPANT_REMOVED
NOT_FOUND_PARTICIPANT = "twirp error unknown: participant does not exist"
QUIET_S = 0.5  # how long "nothing more arrives" is watched for
SAME_ROOM = "destination room cannot be the same as source room "
PERMISSIONS_DENIED = "permissions denied"
FAST_S = 5.0  # for immediate (non-batched) messages


def join_token(
    room: str,
    identity: str,
    *,
    name: Optional[str] = None,
    metadata: str = "",
    attributes: Optional[Dict[str, str]] = None,
    **grants,
) -> str:
    at = (
        api.AccessToken(DEV_KEY, DEV_SECRET)
        .with_identity(identity)
        .with_name(name if name is not None else f"{identity} name")
        .with_grants(api.VideoGrants(room_join=True, room=room, **grants))
    )
    if metadata:
        at = at.with_metadata(metadata)
    if attributes:
        at = at.with_attributes(attributes)
    return at.to_jwt()


class Session:
    """One test's clients: an aiohttp session for the sockets, the official API client,
    and every SignalClient opened, all closed on exit."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def __aenter__(self) -> "Session":
        self.http = aiohttp.ClientSession()
        self.lk = api.LiveKitAPI(self.url, DEV_KEY, DEV_SECRET)
        self.rs = self.lk.room
        self.clients: List[SignalClient] = []
        return self

    async def __aexit__(self, *exc) -> None:
        for c in self.clients:
            await c.close()
        await self.lk.aclose()
        await self.http.close()

    async def join(self, room: str, identity: str, token: Optional[str] = None, **kw) -> SignalClient:
        c = await SignalClient.join(self.http, self.url, token or join_token(room, identity, **kw), label=identity)
        self.clients.append(c)
        return c

    async def refused(self, token: str) -> Refused:
        with pytest.raises(Refused) as ei:
            c = await SignalClient.connect(self.http, self.url, token)
            self.clients.append(c)
        return ei.value


def run(coro):
    return asyncio.run(coro)


def verify(token: str) -> api.access_token.Claims:
    return api.TokenVerifier(DEV_KEY, DEV_SECRET).verify(token)


def assert_versions_increase(*clients: SignalClient) -> None:
    """Per client and per participant SID, the versions in ``update`` messages strictly
    increase, and none is older than the snapshot in the client's JoinResponse.

    (The JoinResponse snapshot may be repeated once by the next update with the same
    version: a JOINED update batched before the client joined. LiveKit only drops updates
    older than the last version sent, and clients only ignore older ones.)"""
    for c in clients:
        at_join: Dict[str, int] = {}
        seen: Dict[str, List[int]] = defaultdict(list)
        for m in c.received:
            if kind(m) == "join":
                for p in [m.join.participant, *m.join.other_participants]:
                    at_join[f"{p.identity}/{p.sid}"] = p.version
            elif kind(m) == "update":
                for p in m.update.participants:
                    seen[f"{p.identity}/{p.sid}"].append(p.version)
        for who, versions in seen.items():
            assert all(a < b for a, b in zip(versions, versions[1:])), (
                f"{c.label}: versions of {who} in updates must strictly increase: {versions}"
            )
            if who in at_join:
                assert at_join[who] <= versions[0], (
                    f"{c.label}: {who} was v{at_join[who]} at join, then updates {versions}"
                )


def track_sids(info: models.ParticipantInfo) -> List[str]:
    return [t.sid for t in info.tracks]


def mover_token(room: str, destination: str, *, room_admin: bool = True) -> str:
    """A backend token as the SDK mints for MoveParticipant, with chosen grants."""
    return (
        api.AccessToken(DEV_KEY, DEV_SECRET)
        .with_grants(api.VideoGrants(room_admin=room_admin, room=room, destination_room=destination))
        .to_jwt()
    )


def assert_twirp(e: api.TwirpError, code: str, status: int, message: Optional[str] = None, label: str = "") -> None:
    got = (e.code, e.status) if message is None else (e.code, e.status, e.message)
    want = (code, status) if message is None else (code, status, message)
    assert got == want, f"{label}: {e}"


async def listed(s: Session, room: str) -> List[str]:
    resp = await s.rs.list_participants(api.ListParticipantsRequest(room=room))
    return sorted(p.identity for p in resp.participants)


async def get(s: Session, room: str, identity: str) -> models.ParticipantInfo:
    return await s.rs.get_participant(api.RoomParticipantIdentity(room=room, identity=identity))


async def assert_not_in(s: Session, room: str, identity: str) -> None:
    with pytest.raises(api.TwirpError) as ei:
        await get(s, room, identity)
    assert_twirp(ei.value, "not_found", 404, NOT_FOUND_PARTICIPANT, f"GetParticipant {identity} in {room}")


async def room_names(s: Session, *names: str) -> List[str]:
    resp = await s.rs.list_rooms(api.ListRoomsRequest(names=list(names)))
    return sorted(r.name for r in resp.rooms)


async def refused_rpc(s: Session, method: str, req, token: Optional[str] = None) -> api.TwirpError:
    """A RoomService call (``method`` of ``LiveKitAPI().room``) that must fail; with ``token``,
    sent verbatim instead of the SDK's own."""
    with pytest.raises(api.TwirpError) as ei:
        if token is None:
            await getattr(s.rs, method)(req)
        else:
            lk = api.LiveKitAPI.with_token(token, s.url)
            try:
                await getattr(lk.room, method)(req)
            finally:
                await lk.aclose()
    return ei.value


def departed(identity: str):
    return update_about(identity, lambda p: p.state == DISCONNECTED)
