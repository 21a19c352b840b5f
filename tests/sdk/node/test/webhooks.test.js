// Webhooks, checked with the official Node receiver (livekit-server-sdk's WebhookReceiver).
//
// Each test runs its own HTTP receiver (node:http, 127.0.0.1:0) and its own Usher, configured
// with a `webhook` section pointing at it and signing with a dedicated webhook key (not the key
// the API client uses). Every request the receiver gets goes through
// `new WebhookReceiver(key, secret).receive(body, authorization)`: the JWT (sent without
// `Bearer`) must verify with the webhook key and carry the body's SHA-256.
//
// Scenario: a join creates the room (signal client), a track is published,
// RoomServiceClient.updateParticipant changes the participant's metadata (`participant_updated`
// is an Usher extra, sent only because `include_events` names it), removeParticipant removes
// it, and the emptied room closes after its `departure_timeout` (1 s). The receiver must get
// exactly room_started, participant_joined, track_published, participant_updated,
// track_unpublished, participant_left, room_finished, in that order, each once with its own
// `EV_` id. A receiver that answers 503 to its first two requests gets the same, after retries
// (about 1 s, then about 2 s).
//
// Waits poll the receiver with deadlines; "nothing more arrives" is watched for QUIET_MS.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DisconnectReason } from '@livekit/protocol';
import { RoomServiceClient, TrackSource, TrackType, WebhookEvent, WebhookReceiver } from 'livekit-server-sdk';
import { joinToken } from '../lib/helpers.js';
import { DEV_KEY, DEV_SECRET, rejection, startUsher, unique } from '../lib/usher.js';
import { SignalClient, isCase } from '../lib/signal.js';

const HOOK_KEY = 'hookkey';
const HOOK_SECRET = 'hook-secret-for-the-webhook-receiver-0123456789';
const CONTENT_TYPE = 'application/webhook+json';
const LIFE = [
  'room_started',
  'participant_joined',
  'track_published',
  'participant_updated',
  'track_unpublished',
  'participant_left',
  'room_finished',
];
// Every event Usher can send, so a stray one (an aborted connection, a room metadata change)
// would reach the receiver and fail "exactly these events, each once".
const EVERY_EVENT = [...LIFE, 'participant_connection_aborted', 'room_metadata_changed'];
const QUIET_MS = 1000;
const ARRIVAL_TIMEOUT_MS = 30000;

/**
 * A webhook endpoint at /hook that verifies every request with the SDK receiver.
 *
 * A request the SDK rejects, or with the wrong Content-Type, is recorded in `problems` and
 * answered 400 (not retried by the sender); so is a body with fields unknown to
 * @livekit/protocol or not in lowerCamelCase (recorded only). The first `failFirst` verified
 * requests are answered 503; the rest 200 and count as delivered.
 */
class Receiver {
  constructor({ failFirst = 0 } = {}) {
    this.sdk = new WebhookReceiver(HOOK_KEY, HOOK_SECRET);
    this.failFirst = failFirst;
    /** Every verified request, in arrival order: { at, body, authorization, event, status }. */
    this.requests = [];
    this.problems = [];
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((e) => {
        this.problems.push(`handler error: ${e}`);
        res.writeHead(400).end();
      });
    });
  }

  get delivered() {
    return this.requests.filter((r) => r.status === 200);
  }

  names(requests = this.delivered) {
    return requests.map((r) => r.event.event);
  }

  async handle(req, res) {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks).toString('utf8');
    const authorization = req.headers.authorization ?? '';
    const ctype = req.headers['content-type'] ?? '';
    if (req.method !== 'POST' || req.url !== '/hook') {
      this.problems.push(`${req.method} ${req.url}`);
      res.writeHead(404).end();
      return;
    }
    let event;
    try {
      event = await this.sdk.receive(body, authorization);
    } catch (e) {
      this.problems.push(`WebhookReceiver rejected a request: ${e}; auth=${authorization} body=${body.slice(0, 300)}`);
      res.writeHead(400).end();
      return;
    }
    try {
      // Beyond the SDK (which ignores unknown fields): every field is one this
      // @livekit/protocol knows, and names are protojson's lowerCamelCase.
      WebhookEvent.fromJsonString(body);
    } catch (e) {
      this.problems.push(`body is not strict WebhookEvent JSON: ${e}; body=${body.slice(0, 300)}`);
    }
    if (!body.includes('"createdAt"') || body.includes('"created_at"')) {
      this.problems.push(`body is not lowerCamelCase protojson: ${body.slice(0, 300)}`);
    }
    if (ctype !== CONTENT_TYPE) {
      this.problems.push(`Content-Type ${ctype} on ${event.event} ${event.id}`);
      res.writeHead(400).end();
      return;
    }
    if (/^bearer /i.test(authorization)) this.problems.push(`Bearer prefix on ${event.event}: ${authorization}`);
    let status = 200;
    if (this.failFirst > 0) {
      this.failFirst -= 1;
      status = 503;
    }
    this.requests.push({ at: performance.now(), body, authorization, event, status });
    res.writeHead(status, { 'Content-Type': 'text/plain' }).end(status === 200 ? 'ok' : 'try again');
  }

  async start() {
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', resolve);
    });
    this.url = `http://127.0.0.1:${this.server.address().port}/hook`;
    return this;
  }

  async stop() {
    this.server.closeAllConnections?.();
    await new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Polls until `n` deliveries arrived (or a problem was seen); fails after `timeoutMs`. */
  async waitDelivered(n, timeoutMs = ARRIVAL_TIMEOUT_MS) {
    const deadline = Date.now() + timeoutMs;
    while (this.delivered.length < n && this.problems.length === 0) {
      if (Date.now() > deadline) {
        assert.fail(`${this.delivered.length} of ${n} webhook deliveries within ${timeoutMs} ms: ${this.names()}`);
      }
      await sleep(50);
    }
    assert.deepEqual(this.problems, [], this.problems.join('\n'));
    return this.delivered;
  }
}

function config(receiverUrl) {
  return (
    `keys:\n  ${DEV_KEY}: ${DEV_SECRET}\n  ${HOOK_KEY}: ${HOOK_SECRET}\n` +
    `webhook:\n  api_key: ${HOOK_KEY}\n  urls: ['${receiverUrl}']\n` +
    `  filter_params:\n    include_events: [${EVERY_EVENT.join(', ')}]\n` +
    'room:\n  departure_timeout: 1\n'
  );
}

const startHookedUsher = (receiver, label) =>
  startUsher(['--config-body', config(receiver.url), '--bind', '127.0.0.1', '--port', '0'], { label });

/** Join (creates the room), publish a mic, updateParticipant, removeParticipant. */
async function roomLife(url, room) {
  const rs = new RoomServiceClient(url, DEV_KEY, DEV_SECRET);
  const alice = await SignalClient.join(url, await joinToken(room, 'alice'), { label: 'alice' });
  try {
    const participantSid = alice.joinResponse.participant.sid;
    const mic = await alice.addTrack('mic', TrackType.AUDIO, TrackSource.MICROPHONE);
    const info = await rs.updateParticipant(room, 'alice', { metadata: 'hand raised' });
    assert.equal(info.metadata, 'hand raised');
    await rs.removeParticipant(room, 'alice');
    await alice.waitFor(isCase('leave'), { timeoutMs: 5000, what: 'leave after removeParticipant' });
    return { room, participantSid, trackSid: mic.sid };
  } finally {
    alice.close();
  }
}

function checkLife(receiver, life, delivered) {
  const events = delivered.map((r) => r.event);
  assert.deepEqual(receiver.names(delivered), LIFE);
  const ids = events.map((e) => e.id);
  assert.equal(new Set(ids).size, ids.length, `each event once, with its own id: ${ids}`);
  assert.ok(ids.every((id) => id.startsWith('EV_')), `${ids}`);
  assert.deepEqual([...new Set(events.map((e) => e.room?.name))], [life.room]);
  const roomSids = [...new Set(events.map((e) => e.room?.sid))];
  assert.equal(roomSids.length, 1, `${roomSids}`);
  assert.match(roomSids[0], /^RM_/);
  const now = Date.now() / 1000;
  const created = events.map((e) => Number(e.createdAt));
  assert.ok(created.every((c) => Math.abs(now - c) < 120), `${created}`);
  assert.deepEqual(created, [...created].sort((a, b) => a - b), `createdAt goes back: ${created}`);

  const [started, joined, published, updated, unpublished, left, finished] = events;
  for (const e of [joined, published, updated, unpublished, left]) {
    assert.deepEqual([e.participant?.identity, e.participant?.sid], ['alice', life.participantSid], e.event);
  }
  for (const e of [published, unpublished]) {
    assert.equal(e.track?.sid, life.trackSid, e.event);
    assert.deepEqual([e.track.type, e.track.source], [TrackType.AUDIO, TrackSource.MICROPHONE], e.event);
  }
  assert.equal(updated.participant.metadata, 'hand raised');
  assert.equal(left.participant.disconnectReason, DisconnectReason.PARTICIPANT_REMOVED);
  for (const e of [started, finished]) {
    assert.equal(e.participant, undefined, e.event);
    assert.equal(e.track, undefined, e.event);
  }
}

/** The SDK receiver accepts the delivery as sent, and rejects it tampered or under another key. */
async function checkSignatureBindsBody(receiver, req) {
  assert.equal((await receiver.sdk.receive(req.body, req.authorization)).id, req.event.id);
  const name = req.event.room.name;
  const tampered = req.body.replace(name, `${name}x`);
  assert.notEqual(tampered, req.body);
  const err = await rejection(receiver.sdk.receive(tampered, req.authorization));
  assert.match(String(err), /sha256 checksum of body does not match/);
  await rejection(new WebhookReceiver(DEV_KEY, DEV_SECRET).receive(req.body, req.authorization));
}

test('a room life arrives in order, each event once, verified by WebhookReceiver', async (t) => {
  const receiver = await new Receiver().start();
  let server;
  t.after(async () => {
    await server?.stop();
    await receiver.stop();
  });
  server = await startHookedUsher(receiver, 'usher webhooks');
  try {
    const life = await roomLife(server.url, unique('node-hook'));
    const delivered = await receiver.waitDelivered(LIFE.length);
    checkLife(receiver, life, delivered);
    await checkSignatureBindsBody(receiver, delivered[0]);
    await sleep(QUIET_MS);
    assert.deepEqual(receiver.names(receiver.requests), LIFE, 'nothing more, nothing retried');
    await server.stop();
    await sleep(200);
    assert.deepEqual(receiver.names(receiver.requests), LIFE, 'nothing more at shutdown');
    assert.deepEqual(receiver.problems, []);
  } catch (e) {
    e.message += `\n--- ${server.label} log (tail) ---\n${server.tail()}`;
    throw e;
  }
});

test('a receiver failing its first two requests gets every event, in order', async (t) => {
  const receiver = await new Receiver({ failFirst: 2 }).start();
  let server;
  t.after(async () => {
    await server?.stop();
    await receiver.stop();
  });
  server = await startHookedUsher(receiver, 'usher webhooks 503');
  try {
    const life = await roomLife(server.url, unique('node-hook-retry'));
    const delivered = await receiver.waitDelivered(LIFE.length);
    checkLife(receiver, life, delivered);
    const reqs = receiver.requests;
    // room_started was refused twice, then sent again: the same body (same id) each time
    assert.deepEqual(reqs.slice(0, 3).map((r) => r.status), [503, 503, 200]);
    assert.ok(reqs[0].body === reqs[1].body && reqs[1].body === reqs[2].body, 'a retry resends the same body');
    assert.equal(delivered[0].event.event, 'room_started');
    assert.equal(reqs[2].event.id, delivered[0].event.id);
    // backoff: about 1 s, then about 2 s (±20 % jitter); lower bounds only, upper ones loose
    const gap1 = (reqs[1].at - reqs[0].at) / 1000;
    const gap2 = (reqs[2].at - reqs[1].at) / 1000;
    assert.ok(gap1 >= 0.7 && gap1 <= 5, `first retry after ${gap1.toFixed(2)} s`);
    assert.ok(gap2 >= 1.5 && gap2 <= 8, `second retry after ${gap2.toFixed(2)} s`);
    await checkSignatureBindsBody(receiver, reqs[0]);
    await sleep(QUIET_MS);
    assert.deepEqual(
      receiver.requests.map((r) => r.status),
      [503, 503, ...LIFE.map(() => 200)],
    );
    assert.deepEqual(receiver.names(receiver.requests), [LIFE[0], LIFE[0], ...LIFE], 'nothing more, nothing twice');
    await server.stop();
    await sleep(200);
    assert.equal(receiver.requests.length, 2 + LIFE.length, 'nothing more at shutdown');
    assert.deepEqual(receiver.problems, []);
  } catch (e) {
    e.message += `\n--- ${server.label} log (tail) ---\n${server.tail()}`;
    throw e;
  }
});
