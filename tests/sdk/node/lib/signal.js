// A small `/rtc` signalling client for the Node SDK suite, built on the `ws` package and
// the official `@livekit/protocol` message classes (SignalRequest / SignalResponse).
//
// It plays a participant that never sets up media: it opens the WebSocket
// (`/rtc?access_token=...&protocol=16`), records every SignalResponse in order, keeps the
// session alive with `pingReq` every `pingInterval` seconds, and lets a test send requests
// and wait for messages.
//
//   const alice = await SignalClient.join(url, token, { label: 'alice' });
//   const since = alice.mark();
//   ... act ...
//   const m = await alice.waitFor(isCase('leave'), { since, what: 'leave' });
//   alice.close();
//
// `waitFor` scans the recorded messages from `since` (default: a cursor that follows the
// previous match), so messages that arrived before the call are found.
//
// `drop()` loses the socket without a leave; the room keeps the participant for its
// departure window, and `SignalClient.resume(url, token, sid)` takes it back on a new socket
// (`reconnect=1`), as an official client does after a signal loss.
import {
  AddTrackRequest,
  DisconnectReason,
  LeaveRequest,
  ParticipantInfo_State,
  Ping,
  SignalRequest,
  SignalResponse,
} from '@livekit/protocol';
import WebSocket from 'ws';

export const PROTOCOL_VERSION = 16;
/** Presence updates about non-publishers may be batched for up to 3 s. */
export const DEFAULT_WAIT_MS = 8000;

/** The server refused the WebSocket upgrade with a plain HTTP answer. */
export class Refused extends Error {
  constructor(status, body) {
    super(`refused: ${status} ${JSON.stringify(body)}`);
    this.status = status;
    this.body = body;
  }
}

export function wsUrl(httpUrl, token, extra = '') {
  const base = httpUrl.replace(/^http/, 'ws');
  return `${base}/rtc?access_token=${encodeURIComponent(token)}&protocol=${PROTOCOL_VERSION}&sdk=node-suite${extra}`;
}

/** The extra query of a resume: `&reconnect=1&sid=<sid>&reconnect_reason=<reason>`. */
export const resumeQuery = (sid, reason = 1) =>
  `&reconnect=1&sid=${encodeURIComponent(sid)}&reconnect_reason=${reason}`;

/** The ParticipantInfo entries about `identity` in an `update` message. */
export function infosAbout(m, identity) {
  if (m.message.case !== 'update') return [];
  return m.message.value.participants.filter((p) => p.identity === identity);
}

/** Predicate: an `update` carrying an entry about `identity` for which `cond` holds. */
export const updateAbout =
  (identity, cond = () => true) =>
  (m) =>
    infosAbout(m, identity).some(cond);

/** Predicate: the oneof case `name` is set and `cond(value)` holds. */
export const isCase =
  (name, cond = () => true) =>
  (m) =>
    m.message.case === name && cond(m.message.value);

const stateName = (s) => ParticipantInfo_State[s] ?? String(s);

export class SignalClient {
  constructor(ws, label) {
    this.ws = ws;
    this.label = label;
    /** Every SignalResponse received, in order. */
    this.received = [];
    this.cursor = 0;
    this.errors = [];
    this.closeCode = null;
    this.joinResponse = null;
    this.pinger = null;
    this.waiters = new Set();
    this.closed = new Promise((resolve) => {
      ws.on('close', (code) => {
        this.closeCode = code;
        if (this.pinger) clearInterval(this.pinger);
        this.notify();
        resolve(code);
      });
    });
    ws.on('message', (data, isBinary) => {
      if (!isBinary) {
        this.errors.push(`unexpected text frame ${data}`);
        return;
      }
      try {
        this.received.push(SignalResponse.fromBinary(new Uint8Array(data)));
      } catch (e) {
        this.errors.push(`undecodable frame: ${e}`);
        return;
      }
      this.notify();
    });
    ws.on('error', (e) => this.errors.push(`socket error: ${e.message}`));
  }

  /** Opens the socket; rejects with `Refused` (status and body) if the upgrade is refused. */
  static connect(url, token, { extraQuery = '', label = 'client' } = {}) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(wsUrl(url, token, extraQuery));
      let client = null;
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          body += chunk;
        });
        res.on('end', () => {
          reject(new Refused(res.statusCode, body));
          ws.terminate();
        });
      });
      ws.once('upgrade', () => {
        // attach listeners before the first frame can be emitted
        client = new SignalClient(ws, label);
      });
      ws.once('open', () => resolve(client));
      ws.once('error', (e) => {
        if (!client) reject(e);
      });
    });
  }

  /** Connects, checks that the first frame is a JoinResponse, and starts the ping loop. */
  static async join(url, token, { label = 'client', timeoutMs = 5000 } = {}) {
    const c = await SignalClient.connect(url, token, { label });
    let first;
    try {
      first = await c.waitFor(() => true, { timeoutMs, what: 'first frame' });
    } catch (e) {
      c.close();
      throw e;
    }
    if (first.message.case !== 'join') {
      c.close();
      throw new Error(`${label}: first frame must be a JoinResponse, got ${first.message.case}`);
    }
    c.joinResponse = first.message.value;
    const interval = (c.joinResponse.pingInterval || 5) * 1000;
    c.ping();
    c.pinger = setInterval(() => c.ping(), interval);
    c.pinger.unref?.();
    return c;
  }

  /**
   * Resumes session `sid` on a new socket, as a client whose signal connection dropped does
   * (`/rtc?...&reconnect=1&sid=<sid>&reconnect_reason=<reason>`), and waits for the first
   * frame. Only if that is a `reconnect` does the ping loop start; a refused resume (a `leave`,
   * then the server closes) is returned as is. Nothing is checked here: the test reads
   * `received` (the cursor is left just past the first frame).
   */
  static async resume(url, token, sid, { label = 'client', reason = 1, timeoutMs = 5000 } = {}) {
    const c = await SignalClient.connect(url, token, { label, extraQuery: resumeQuery(sid, reason) });
    let first;
    try {
      first = await c.waitFor(() => true, { since: 0, timeoutMs, what: 'first frame of the resume' });
    } catch (e) {
      c.close();
      throw e;
    }
    if (first.message.case === 'reconnect') {
      c.pinger = setInterval(() => c.ping(), 5000);
      c.pinger.unref?.();
    }
    return c;
  }

  get isClosed() {
    return this.closeCode !== null;
  }

  notify() {
    for (const w of [...this.waiters]) w();
  }

  /** The index the next message will get; pass it as `since` to look only at later ones. */
  mark() {
    return this.received.length;
  }

  /** Messages from index `since` on for which `pred` holds. */
  all(pred = () => true, since = 0) {
    return this.received.slice(since).filter(pred);
  }

  /**
   * The first message at or after `since` (default: the cursor) for which `pred` holds, as
   * `{ index, message }`; the cursor moves past it. Rejects if the socket closes first or
   * nothing matches within `timeoutMs`.
   */
  waitIndex(pred, { since, timeoutMs = DEFAULT_WAIT_MS, what = 'a matching message' } = {}) {
    const start = since ?? this.cursor;
    return new Promise((resolve, reject) => {
      let timer;
      const check = () => {
        for (let i = start; i < this.received.length; i++) {
          if (pred(this.received[i])) {
            finish();
            this.cursor = Math.max(this.cursor, i + 1);
            resolve({ index: i, message: this.received[i] });
            return;
          }
        }
        if (this.isClosed) {
          finish();
          reject(new Error(`${this.label}: socket closed while waiting for ${what}; ${this.summary()}`));
        }
      };
      const finish = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      timer = setTimeout(() => {
        finish();
        reject(new Error(`${this.label}: no ${what} within ${timeoutMs} ms; ${this.summary()}`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  /** Like `waitIndex`, resolving to the message only. */
  async waitFor(pred, opts) {
    return (await this.waitIndex(pred, opts)).message;
  }

  /** Waits until the server closes the socket; resolves to the close code. */
  async waitClosed(timeoutMs = 5000) {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${this.label}: socket still open after ${timeoutMs} ms; ${this.summary()}`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Every ParticipantInfo about `identity` this client saw: join snapshot, then updates. */
  infos(identity) {
    const out = [];
    for (const m of this.received) {
      if (m.message.case === 'join') {
        const j = m.message.value;
        for (const p of [j.participant, ...j.otherParticipants]) if (p?.identity === identity) out.push(p);
      } else if (m.message.case === 'update') {
        out.push(...infosAbout(m, identity));
      }
    }
    return out;
  }

  summary() {
    const parts = this.received.map((m) => {
      const { case: k, value } = m.message;
      if (k === 'update') {
        return `update[${value.participants
          .map((p) => `${p.identity}:${stateName(p.state)}/v${p.version}/t${p.tracks.length}`)
          .join(', ')}]`;
      }
      if (k === 'leave') return `leave(${DisconnectReason[value.reason] ?? value.reason})`;
      return k ?? '?';
    });
    const closed = this.isClosed ? ` closed=${this.closeCode}` : '';
    return `seen ${this.received.length} (cursor ${this.cursor})${closed}: ${parts.join(' ')}`;
  }

  /** Sends one SignalRequest given as its oneof `{ case, value }`. */
  send(message) {
    const bytes = new SignalRequest({ message }).toBinary();
    return new Promise((resolve, reject) => this.ws.send(bytes, { binary: true }, (e) => (e ? reject(e) : resolve())));
  }

  ping() {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.send({ case: 'pingReq', value: new Ping({ timestamp: BigInt(Date.now()) }) }).catch(() => {});
  }

  /** Sends AddTrackRequest and resolves to the TrackInfo of the matching `trackPublished`. */
  async addTrack(cid, type, source, { timeoutMs = 5000 } = {}) {
    const since = this.mark();
    await this.send({ case: 'addTrack', value: new AddTrackRequest({ cid, name: cid, type, source }) });
    const m = await this.waitFor(
      isCase('trackPublished', (t) => t.cid === cid),
      { since, timeoutMs, what: `trackPublished ${cid}` },
    );
    return m.message.value.track;
  }

  leave() {
    return this.send({ case: 'leave', value: new LeaveRequest({ reason: DisconnectReason.CLIENT_INITIATED }) });
  }

  /**
   * Loses the signal connection: a clean WebSocket close without a leave. Resolves to the
   * close code once the server has answered and closed (so it has seen the socket go); to
   * the room that is a lost connection, not a departure (see `resume`).
   */
  async drop(timeoutMs = 5000) {
    if (this.pinger) clearInterval(this.pinger);
    if (!this.isClosed) this.ws.close();
    return this.waitClosed(timeoutMs);
  }

  /** Closes the socket without a leave (idempotent). */
  close() {
    if (this.pinger) clearInterval(this.pinger);
    if (!this.isClosed) this.ws.terminate();
  }
}
