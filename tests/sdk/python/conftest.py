"""Harness for the Python SDK compatibility suite.

Starts a real Usher binary (``USHER_BIN``, default ``target/debug/usher`` relative
to the repo root) on ``127.0.0.1:0``, finds its URL in the log line
``listening on http://127.0.0.1:<port>``, and stops it with SIGTERM (then SIGKILL
after 5 s). Each test module gets its own server.

Helpers:
  * ``room_call(url, fn, ...)`` runs ``fn(lkapi.room)`` with an official
    ``livekit.api.LiveKitAPI`` client (protobuf encoding) and closes it.
  * ``raw_post(...)`` sends a hand-made Twirp request with urllib, for checks the
    SDK hides (plain-text 401 bodies, missing Authorization header).
  * ``make_jwt(...)`` builds an HS256 JWT by hand (stdlib only), for tokens the
    SDK's minter cannot produce (no ``exp``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Awaitable, Callable, List, Optional, Tuple

import pytest
from livekit import api

REPO_ROOT = Path(__file__).resolve().parents[3]
DEV_KEY = "devkey"
DEV_SECRET = "secret"

LISTEN_RE = re.compile(r"listening on (http://[0-9.:]+)")
ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
START_TIMEOUT_S = 30.0

# Servers currently running, so a failing test can show their log tail.
_RUNNING: List["UsherServer"] = []


def usher_bin() -> Path:
    p = Path(os.environ.get("USHER_BIN", "target/debug/usher"))
    if not p.is_absolute():
        p = REPO_ROOT / p
    return p


class UsherServer:
    """One Usher process on an ephemeral loopback port."""

    def __init__(self, args: List[str], label: str = "usher") -> None:
        self.args = args
        self.label = label
        self.url: Optional[str] = None
        self.logs: List[str] = []
        self._found = threading.Event()
        self._proc: Optional[subprocess.Popen] = None
        self._reader: Optional[threading.Thread] = None

    def start(self) -> "UsherServer":
        binary = usher_bin()
        if not binary.exists():
            pytest.fail(f"Usher binary not found at {binary} (set USHER_BIN)")
        env = dict(os.environ)
        env.setdefault("NO_COLOR", "1")
        self._proc = subprocess.Popen(
            [str(binary), *self.args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # logs go to stderr; merge to be safe
            env=env,
            cwd=str(REPO_ROOT),
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._found.wait(0.05):
                break
            if self._proc.poll() is not None:
                self._reader.join(2)
                pytest.fail(
                    f"{self.label} exited with {self._proc.returncode} before listening; "
                    f"args={self.args!r}\n" + "".join(self.logs[-60:])
                )
        else:
            self.stop()
            pytest.fail(
                f"{self.label} did not log 'listening on http://…' within "
                f"{START_TIMEOUT_S}s\n" + "".join(self.logs[-60:])
            )
        _RUNNING.append(self)
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for raw in iter(self._proc.stdout.readline, b""):
            line = ANSI_RE.sub("", raw.decode("utf-8", "replace"))
            self.logs.append(line)
            if self.url is None:
                m = LISTEN_RE.search(line)
                if m:
                    self.url = m.group(1)
                    self._found.set()

    def stop(self) -> None:
        if self in _RUNNING:
            _RUNNING.remove(self)
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if self._reader is not None:
            self._reader.join(2)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and _RUNNING:
        for s in _RUNNING:
            rep.sections.append((f"{s.label} log (tail)", "".join(s.logs[-40:])))


@pytest.fixture(scope="module")
def usher():
    """A dev-mode Usher (api key ``devkey``, secret ``secret``)."""
    server = UsherServer(["--dev", "--bind", "127.0.0.1", "--port", "0"], "usher --dev").start()
    yield server
    server.stop()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def room_call(
    url: str,
    fn: Callable[[api.room_service.RoomService], Awaitable],
    *,
    key: str = DEV_KEY,
    secret: str = DEV_SECRET,
    token: Optional[str] = None,
):
    """Run ``fn(lkapi.room)`` on a fresh official client and return its result."""

    async def main():
        if token is not None:
            lk = api.LiveKitAPI.with_token(token, url)
        else:
            lk = api.LiveKitAPI(url, key, secret)
        try:
            return await fn(lk.room)
        finally:
            await lk.aclose()

    return asyncio.run(main())


def raw_post(
    url: str,
    method: str,
    body: bytes,
    *,
    content_type: str = "application/json",
    token: Optional[str] = None,
    authorization: Optional[str] = None,
) -> Tuple[int, str, bytes]:
    """POST to /twirp/livekit.RoomService/<method>; returns (status, content-type, body)."""
    headers = {"Content-Type": content_type}
    if authorization is not None:
        headers["Authorization"] = authorization
    elif token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(
        f"{url}/twirp/livekit.RoomService/{method}", data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(claims: dict, secret: str) -> str:
    """Hand-built HS256 JWT (no SDK involved)."""
    header = {"alg": "HS256", "typ": "JWT"}
    signing_input = (
        _b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + _b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    sig = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64url(sig)
