"""A small `/rtc` signalling client for the SDK suite, built on aiohttp and the official
``livekit.protocol`` message classes (``rtc.SignalRequest`` / ``rtc.SignalResponse``).

It plays a participant that never sets up media: it opens the WebSocket
(``/rtc?access_token=…&protocol=16``), records every ``SignalResponse`` in order, keeps the
session alive with ``ping_req`` every ``ping_interval`` seconds, and lets a test send
requests and wait for messages.

Usage (inside a coroutine)::

    async with aiohttp.ClientSession() as http:
        alice = await SignalClient.join(http, url, token)
        m = await alice.wait_for(lambda m: m.WhichOneof("message") == "leave", what="leave")
        await alice.close()

``wait_for`` scans the recorded messages from a cursor (so messages that arrived before the
call are found) and moves the cursor past the match, like reading a stream in order; pass
``since=client.mark()`` taken before an action to look at everything that followed it in
any order.

``close()`` drops the socket without a leave; the room keeps the participant for its
departure window, and ``SignalClient.resume(http, url, token, sid)`` takes it back on a new
socket (``reconnect=1``), as an official client does after a signal loss.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from typing import Callable, List, Optional, Tuple
from urllib.parse import quote

import aiohttp
from livekit.protocol import models, rtc

# SignalResponse predicates take the whole message; Info is a ParticipantInfo.
Predicate = Callable[[rtc.SignalResponse], bool]

PROTOCOL_VERSION = 16
DEFAULT_WAIT_S = 8.0  # presence updates about non-publishers may be batched (≤ 3 s)


class Refused(Exception):
    """The server refused the WebSocket upgrade with a plain HTTP answer."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"refused: {status} {body!r}")
        self.status = status
        self.body = body


def ws_url(http_url: str, token: str, extra: str = "") -> str:
    base = http_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    return f"{base}/rtc?access_token={quote(token)}&protocol={PROTOCOL_VERSION}&sdk=python-suite{extra}"


def resume_query(sid: str, reason: int = 1) -> str:
    """The extra query of a resume: ``&reconnect=1&sid=<sid>&reconnect_reason=<reason>``."""
    return f"&reconnect=1&sid={quote(sid)}&reconnect_reason={reason}"


def kind(m: rtc.SignalResponse) -> Optional[str]:
    """The name of the oneof variant that is set (``"join"``, ``"update"``, ...)."""
    return m.WhichOneof("message")


def infos_about(m: rtc.SignalResponse, identity: str) -> List[models.ParticipantInfo]:
    """The ParticipantInfo entries about ``identity`` in an ``update`` message."""
    if kind(m) != "update":
        return []
    return [p for p in m.update.participants if p.identity == identity]


def update_about(identity: str, cond: Callable[[models.ParticipantInfo], bool] = lambda p: True) -> Predicate:
    """Predicate: an ``update`` carrying an entry about ``identity`` that satisfies ``cond``."""
    return lambda m: any(cond(p) for p in infos_about(m, identity))


def is_kind(name: str, cond: Callable[[object], bool] = lambda v: True) -> Predicate:
    """Predicate: the variant ``name`` is set and ``cond(variant value)`` holds."""
    return lambda m: kind(m) == name and cond(getattr(m, name))


class SignalClient:
    def __init__(self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse, label: str) -> None:
        self.http = http
        self.ws = ws
        self.label = label
        self.received: List[rtc.SignalResponse] = []
        self.cursor = 0
        self.closed = asyncio.Event()
        self.close_code: Optional[int] = None
        self.join_response: Optional[rtc.JoinResponse] = None
        self.errors: List[str] = []
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read(), name=f"signal-read-{label}")
        self._pinger: Optional[asyncio.Task] = None

    # --- connecting ----------------------------------------------------------------

    @classmethod
    async def connect(
        cls, http: aiohttp.ClientSession, url: str, token: str, *, extra_query: str = "", label: str = ""
    ) -> "SignalClient":
        """Opens the socket; raises ``Refused`` (with status and body) if the upgrade is refused."""
        target = ws_url(url, token, extra_query)
        try:
            ws = await http.ws_connect(target, autoping=True, timeout=aiohttp.ClientWSTimeout(ws_close=5))
        except aiohttp.WSServerHandshakeError as e:
            # aiohttp drops the body of a refused upgrade; refusals have no side effects,
            # so ask again the same way and read the body this time.
            status, body = await probe(http, url, token, extra_query)
            raise Refused(e.status, body if status == e.status else "") from None
        return cls(http, ws, label or "client")

    @classmethod
    async def join(
        cls, http: aiohttp.ClientSession, url: str, token: str, *, label: str = "", timeout: float = 5.0
    ) -> "SignalClient":
        """Connects, checks the first frame is a JoinResponse, and starts the ping loop."""
        c = await cls.connect(http, url, token, label=label)
        first = await c.wait_for(lambda m: True, timeout=timeout, what="first frame")
        if kind(first) != "join":
            await c.close()
            raise AssertionError(f"{c.label}: first frame must be a JoinResponse, got {first}")
        c.join_response = first.join
        c._pinger = asyncio.create_task(c._ping_loop(max(1, first.join.ping_interval or 5)))
        return c

    @classmethod
    async def resume(
        cls,
        http: aiohttp.ClientSession,
        url: str,
        token: str,
        sid: str,
        *,
        reason: int = 1,
        label: str = "",
        timeout: float = 5.0,
    ) -> "SignalClient":
        """Resumes session ``sid`` on a new socket, as a client whose signal connection dropped
        does (``/rtc?…&reconnect=1&sid=<sid>&reconnect_reason=<reason>``), and waits for the
        first frame. Only if that is a ``reconnect`` does the ping loop start; a refused resume
        (a ``leave``, then the server closes) is returned as is. Nothing is checked here: the
        test reads ``received`` (the cursor is left just past the first frame)."""
        c = await cls.connect(http, url, token, extra_query=resume_query(sid, reason), label=label)
        first = await c.wait_for(lambda m: True, since=0, timeout=timeout, what="first frame of the resume")
        if kind(first) == "reconnect":
            c._pinger = asyncio.create_task(c._ping_loop(5))
        return c

    # --- reading -------------------------------------------------------------------

    async def _read(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    try:
                        resp = rtc.SignalResponse.FromString(msg.data)
                    except Exception as e:  # noqa: BLE001 - recorded and reported by the test
                        self.errors.append(f"undecodable frame {msg.data!r}: {e}")
                        continue
                    async with self._changed:
                        self.received.append(resp)
                        self._changed.notify_all()
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    self.errors.append(f"unexpected text frame {msg.data!r}")
                elif msg.type in (aiohttp.WSMsgType.ERROR,):
                    self.errors.append(f"socket error {self.ws.exception()!r}")
                    break
        finally:
            self.close_code = self.ws.close_code
            self.closed.set()
            if self._pinger is not None:
                self._pinger.cancel()
            async with self._changed:
                self._changed.notify_all()

    def _find(self, pred: Predicate, start: int) -> int:
        for i in range(start, len(self.received)):
            if pred(self.received[i]):
                return i
        return -1

    def mark(self) -> int:
        """The index the next message will get; pass it as ``since`` to look only at later ones."""
        return len(self.received)

    async def wait_for(
        self,
        pred: Predicate,
        *,
        since: Optional[int] = None,
        timeout: float = DEFAULT_WAIT_S,
        what: str = "a matching message",
    ) -> rtc.SignalResponse:
        """The first message matching ``pred`` at or after ``since`` (default: the cursor).

        The cursor moves past the match. Fails if the socket closes first or nothing
        matches within ``timeout`` seconds."""
        return (await self.wait_index(pred, since=since, timeout=timeout, what=what))[1]

    async def wait_index(
        self,
        pred: Predicate,
        *,
        since: Optional[int] = None,
        timeout: float = DEFAULT_WAIT_S,
        what: str = "a matching message",
    ) -> Tuple[int, rtc.SignalResponse]:
        """Like ``wait_for`` but also returns the index of the match in ``received``."""
        start = self.cursor if since is None else since
        deadline = asyncio.get_running_loop().time() + timeout
        async with self._changed:
            while True:
                i = self._find(pred, start)
                if i >= 0:
                    self.cursor = max(self.cursor, i + 1)
                    return i, self.received[i]
                if self.closed.is_set():
                    raise AssertionError(f"{self.label}: socket closed while waiting for {what}; {self.summary()}")
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    raise AssertionError(f"{self.label}: no {what} within {timeout}s; {self.summary()}")
                try:
                    await asyncio.wait_for(self._changed.wait(), left)
                except asyncio.TimeoutError:
                    pass

    async def wait_closed(self, timeout: float = 5.0) -> Optional[int]:
        """Waits until the server closes the socket; returns the close code."""
        try:
            await asyncio.wait_for(self.closed.wait(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"{self.label}: socket still open after {timeout}s; {self.summary()}") from None
        return self.close_code

    def all(self, pred: Predicate = lambda m: True, since: int = 0) -> List[rtc.SignalResponse]:
        """Every recorded message (from index ``since`` on) matching ``pred``."""
        return [m for m in self.received[since:] if pred(m)]

    def infos(self, identity: str) -> List[models.ParticipantInfo]:
        """Every ParticipantInfo about ``identity`` this client saw, in order: from its
        JoinResponse (own participant or other_participants), then from updates."""
        out: List[models.ParticipantInfo] = []
        for m in self.received:
            k = kind(m)
            if k == "join":
                if m.join.participant.identity == identity:
                    out.append(m.join.participant)
                out.extend(p for p in m.join.other_participants if p.identity == identity)
            elif k == "update":
                out.extend(infos_about(m, identity))
        return out

    def summary(self) -> str:
        parts = []
        for m in self.received:
            k = kind(m)
            if k == "update":
                ps = ", ".join(
                    f"{p.identity}:{models.ParticipantInfo.State.Name(p.state)}/v{p.version}/t{len(p.tracks)}"
                    for p in m.update.participants
                )
                parts.append(f"update[{ps}]")
            elif k == "leave":
                parts.append(f"leave({models.DisconnectReason.Name(m.leave.reason)})")
            else:
                parts.append(k or "?")
        closed = f" closed={self.close_code}" if self.closed.is_set() else ""
        return f"seen {len(self.received)} (cursor {self.cursor}){closed}: " + " ".join(parts)

    # --- sending -------------------------------------------------------------------

    async def send(self, req: rtc.SignalRequest) -> None:
        await self.ws.send_bytes(req.SerializeToString())

    async def ping(self) -> None:
        await self.send(rtc.SignalRequest(ping_req=rtc.Ping(timestamp=int(time.time() * 1000))))

    async def _ping_loop(self, interval: int) -> None:
        try:
            while not self.ws.closed:
                await self.ping()
                await asyncio.sleep(interval)
        except (asyncio.CancelledError, ConnectionResetError, aiohttp.ClientError):
            pass

    async def add_track(
        self, cid: str, kind_: int, source: int, *, timeout: float = 5.0
    ) -> models.TrackInfo:
        """Sends AddTrackRequest and returns the TrackInfo of the matching ``track_published``."""
        since = self.mark()
        await self.send(
            rtc.SignalRequest(add_track=rtc.AddTrackRequest(cid=cid, name=cid, type=kind_, source=source))
        )
        m = await self.wait_for(
            is_kind("track_published", lambda t: t.cid == cid),
            since=since,
            timeout=timeout,
            what=f"track_published {cid}",
        )
        return m.track_published.track

    async def leave(self) -> None:
        await self.send(
            rtc.SignalRequest(leave=rtc.LeaveRequest(reason=models.DisconnectReason.CLIENT_INITIATED))
        )

    async def close(self) -> None:
        """Closes the socket without a leave (idempotent) and stops the tasks.

        This is a clean WebSocket close: it returns once the server answered the close frame
        (or after 5 s), so by then the server has seen the socket go. To the room that is a
        lost signal connection, not a departure: see ``resume``."""
        if self._pinger is not None:
            self._pinger.cancel()
        if not self.ws.closed:
            await self.ws.close()
        try:
            await asyncio.wait_for(self._reader, 5)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            self._reader.cancel()


async def probe(http: aiohttp.ClientSession, url: str, token: str, extra_query: str = "") -> tuple:
    """Sends the WebSocket upgrade request as a plain GET and returns ``(status, body)``.

    For a refused upgrade this is the server's HTTP answer; if the server accepts (101),
    the connection is dropped right away and ``(101, "")`` is returned."""
    target = ws_url(url, token, extra_query).replace("ws://", "http://", 1).replace("wss://", "https://", 1)
    headers = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
    }
    async with http.get(target, headers=headers, read_until_eof=False) as resp:
        if resp.status == 101:
            resp.close()
            return 101, ""
        return resp.status, await resp.text()
