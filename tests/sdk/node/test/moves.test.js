// MoveParticipant on connected sessions, driven by the official Node SDK
// (`RoomServiceClient.moveParticipant(room, identity, destinationRoom)`, JSON) while lib/signal.js
// participants are connected over /rtc. LiveKit's open-source server does not implement moves;
// Usher does.
//
// A move needs a token with `roomAdmin` for the request's room and `destinationRoom` equal to
// the request's destination (the SDK mints exactly that), else 401 `permissions denied`. The
// moved participant keeps its socket, sid and tracks and gets `roomMoved` (the destination
// room, a token for it, itself, the others there); observers in the source see it DISCONNECTED
// with MIGRATION (at once for a publisher, else in the next presence batch, <= 3 s), observers
// in the destination see it arrive; the API then lists it in the destination only, and RPCs
// and its own socket requests act there. The destination is created if missing.
//
// Refusals (same room, unknown room/identity, a client below protocol 16, the identity already
// in the destination, a wrong grant) change nothing.
//
// "Nothing arrives" is watched for QUIET_MS; presence batches are waited for with
// DEFAULT_WAIT_MS (the default of waitFor).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DisconnectReason, MuteTrackRequest } from '@livekit/protocol';
import { ParticipantInfo_State, RoomServiceClient, TokenVerifier, TrackSource, TrackType } from 'livekit-server-sdk';
import WebSocket from 'ws';
import {
  FAST,
  QUIET_MS,
  SAME_ROOM,
  assertNotIn as assertNotInRoom,
  assertTwirp,
  assertVersionsIncreaseIn,
  departed,
  destinationToken as moverToken,
  joinToken,
  listedIn,
  roomNamesIn,
  sids,
  useServers,
  verifier,
} from '../lib/helpers.js';
import { DEV_KEY, DEV_SECRET, NOT_FOUND_PARTICIPANT, PERMISSIONS_DENIED, rejection, startDevUsher, unique } from '../lib/usher.js';
import { SignalClient, infosAbout, isCase, updateAbout } from '../lib/signal.js';

const { JOINED, DISCONNECTED } = ParticipantInfo_State;
const { MIGRATION } = DisconnectReason;
const { MICROPHONE: MIC } = TrackSource;
const { AUDIO } = TrackType;
const TOO_OLD = 'twirp error unknown: participant client version does not support moving';
/** What a participant must never get from a refused move. */
const MOVE_EFFECTS = ['roomMoved', 'leave', 'trackUnpublished', 'refreshToken'];

let server;
let rs;
const open = useServers(startDevUsher, (s) => {
  server = s;
  rs = new RoomServiceClient(server.url, DEV_KEY, DEV_SECRET);
}); // clients of the running test, closed after it

// --- helpers ------------------------------------------------------------------------------

async function join(room, identity, opts = {}) {
  const c = await SignalClient.join(server.url, await joinToken(room, identity, opts), { label: opts.label ?? identity });
  open.push(c);
  return c;
}

/** A participant whose client announces `protocol` (the only `protocol` parameter of its URL). */
async function oldClient(room, identity, protocol = 15) {
  const token = await joinToken(room, identity);
  const url = `${server.url.replace(/^http/, 'ws')}/rtc?access_token=${encodeURIComponent(token)}&protocol=${protocol}&sdk=node-suite`;
  const c = await new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    let client = null;
    ws.once('upgrade', () => {
      client = new SignalClient(ws, identity);
    });
    ws.once('open', () => resolve(client));
    ws.once('error', (e) => {
      if (!client) reject(e);
    });
  });
  open.push(c);
  const first = await c.waitFor(() => true, { ...FAST, what: 'first frame' });
  assert.equal(first.message.case, 'join', c.summary());
  c.joinResponse = first.message.value;
  c.pinger = setInterval(() => c.ping(), 5000);
  c.pinger.unref?.();
  return c;
}

const withToken = (token) => new RoomServiceClient(server.url, undefined, undefined, { token });

async function move(room, identity, destination) {
  assert.equal(await rs.moveParticipant(room, identity, destination), undefined);
}

const wrongVerifier = new TokenVerifier(DEV_KEY, `${DEV_SECRET}-not`);

/** The claims of a token Usher minted, checked against the test secret (and not another). */
async function decodeToken(token) {
  const claims = await verifier.verify(token);
  await assert.rejects(wrongVerifier.verify(token), 'a token verified with the wrong secret');
  return claims;
}

const listed = (room) => listedIn(rs, room);
const roomNames = (...names) => roomNamesIn(rs, ...names);

const assertNotIn = (room, identity) => assertNotInRoom(rs, room, identity);
const assertVersionsIncrease = (...clients) => assertVersionsIncreaseIn(clients);

// --- (a) a publisher moves while observers sit in both rooms -------------------------------

test('a moved publisher keeps its socket, sid and track; both rooms see it change rooms', async () => {
  const roomA = unique('node-move-a');
  const roomB = unique('node-move-b');
  const obsA = await join(roomA, 'watcher-a');
  const obsB = await join(roomB, 'watcher-b');
  const alice = await join(roomA, 'alice', { metadata: 'm0' });
  const sid = alice.joinResponse.participant.sid;
  const [rsidA, rsidB] = [obsA.joinResponse.room.sid, obsB.joinResponse.room.sid];
  assert.notEqual(rsidA, rsidB);
  const mic = await alice.addTrack('mic', AUDIO, MIC);
  await obsA.waitFor(updateAbout('alice', (p) => sids(p).join() === mic.sid), { ...FAST, what: "alice's mic" });
  assert.deepEqual(await listed(roomA), ['alice', 'watcher-a']);
  assert.deepEqual(await listed(roomB), ['watcher-b']);

  const t0 = Math.floor(Date.now() / 1000);
  let marks = [alice.mark(), obsA.mark(), obsB.mark()];
  await move(roomA, 'alice', roomB);

  // the mover: roomMoved on the same socket
  let m = await alice.waitFor(isCase('roomMoved'), { since: marks[0], ...FAST, what: 'roomMoved' });
  const moved = m.message.value;
  assert.deepEqual([moved.room.name, moved.room.sid], [roomB, rsidB]);
  const me = moved.participant;
  assert.deepEqual([me.identity, me.sid, me.metadata, sids(me)], ['alice', sid, 'm0', [mic.sid]]);
  assert.notEqual(me.state, DISCONNECTED);
  assert.deepEqual([me.tracks[0].type, me.tracks[0].source], [AUDIO, MIC]);
  assert.deepEqual(
    moved.otherParticipants.map((p) => [p.identity, p.sid]),
    [['watcher-b', obsB.joinResponse.participant.sid]],
  );

  // its token: signed with the test secret, same identity, for the destination
  const claims = await decodeToken(moved.token);
  assert.deepEqual([claims.iss, claims.sub, claims.video.room, claims.video.roomJoin], [DEV_KEY, 'alice', roomB, true]);
  assert.ok(claims.exp > t0, `exp ${claims.exp}`);

  // observers: the source sees it leave (a publisher: at once) ...
  const { index: iGone, message: left } = await obsA.waitIndex(departed('alice'), { since: marks[1], ...FAST, what: 'alice left a' });
  const [gone] = infosAbout(left, 'alice');
  assert.deepEqual([gone.sid, gone.disconnectReason], [sid, MIGRATION]);
  // ... the destination sees it arrive, with its track
  m = await obsB.waitFor(updateAbout('alice'), { since: marks[2], ...FAST, what: 'alice in b' });
  const [came] = infosAbout(m, 'alice');
  assert.deepEqual([came.sid, came.metadata, sids(came)], [sid, 'm0', [mic.sid]]);
  assert.notEqual(came.state, DISCONNECTED);

  // the API agrees
  assert.deepEqual(await listed(roomA), ['watcher-a']);
  assert.deepEqual(await listed(roomB), ['alice', 'watcher-b']);
  await assertNotIn(roomA, 'alice');
  const there = await rs.getParticipant(roomB, 'alice');
  assert.deepEqual([there.sid, sids(there), there.metadata], [sid, [mic.sid], 'm0']);
  assertTwirp(
    await rejection(rs.updateParticipant(roomA, 'alice', { metadata: 'in a?' })),
    'not_found',
    404,
    NOT_FOUND_PARTICIPANT,
    'UpdateParticipant in the source',
  );

  // UpdateParticipant in the destination reaches the moved socket
  marks = [alice.mark(), obsB.mark()];
  const info = await rs.updateParticipant(roomB, 'alice', { metadata: 'in b' });
  assert.deepEqual([info.sid, info.metadata, sids(info)], [sid, 'in b', [mic.sid]]);
  for (const [c, since] of [[alice, marks[0]], [obsB, marks[1]]]) {
    await c.waitFor(updateAbout('alice', (p) => p.sid === sid && p.metadata === 'in b'), {
      since,
      ...FAST,
      what: "alice's metadata in b",
    });
  }
  m = await alice.waitFor(isCase('refreshToken'), { since: marks[0], ...FAST, what: 'refresh token after the update' });
  const refreshed = await decodeToken(m.message.value);
  assert.deepEqual([refreshed.sub, refreshed.video.room, refreshed.metadata], ['alice', roomB, 'in b']);

  // its own socket requests act in the destination
  marks = [alice.mark(), obsB.mark()];
  await alice.send({ case: 'mute', value: new MuteTrackRequest({ sid: mic.sid, muted: true }) });
  await obsB.waitFor(
    updateAbout('alice', (p) => JSON.stringify(p.tracks.map((t) => [t.sid, t.muted])) === JSON.stringify([[mic.sid, true]])),
    { since: marks[1], ...FAST, what: "alice's mic muted" },
  );
  assert.deepEqual((await rs.getParticipant(roomB, 'alice')).tracks.map((t) => t.muted), [true]);

  // the source hears nothing more of alice, and alice nothing more of the source
  marks = [alice.mark(), obsA.mark()];
  await rs.updateParticipant(roomA, 'watcher-a', { metadata: 'still in a' });
  await obsA.waitFor(updateAbout('watcher-a', (p) => p.metadata === 'still in a'), {
    since: marks[1],
    ...FAST,
    what: 'own update in a',
  });
  await sleep(QUIET_MS);
  assert.deepEqual(alice.all(updateAbout('watcher-a'), marks[0]), [], alice.summary());
  assert.deepEqual(obsA.all(updateAbout('alice'), iGone + 1), [], obsA.summary());
  assert.deepEqual(obsB.all(updateAbout('watcher-a')), [], obsB.summary());

  // the socket was never ended nor told to leave; tracks were never unpublished
  assert.equal(alice.isClosed, false);
  assert.deepEqual([alice.all(isCase('leave')).length, alice.all(isCase('trackUnpublished')).length], [0, 0]);
  assert.equal(alice.all(isCase('roomMoved')).length, 1);
  for (const c of [obsA, obsB]) {
    assert.deepEqual([c.all(isCase('leave')).length, c.all(isCase('roomMoved')).length], [0, 0], c.summary());
  }

  // the token from roomMoved resumes the session in the destination
  await alice.drop();
  const back = await SignalClient.resume(server.url, moved.token, sid, { label: 'alice (resumed)' });
  open.push(back);
  assert.equal(back.received[0].message.case, 'reconnect', back.summary());
  m = await back.waitFor(isCase('roomUpdate'), { since: 0, ...FAST, what: 'the resumed room' });
  assert.deepEqual([m.message.value.room.name, m.message.value.room.sid], [roomB, rsidB]);
  assert.equal((await rs.getParticipant(roomB, 'alice')).sid, sid);
  assert.deepEqual(await listed(roomA), ['watcher-a']);

  assertVersionsIncrease(obsA, obsB, alice);
  for (const c of [alice, obsA, obsB, back]) assert.deepEqual(c.errors, []);
});

// --- a non-publisher into a room that does not exist yet, and back -------------------------

test('a move creates a missing destination; the participant can be moved back', async () => {
  const roomA = unique('node-move-src');
  const roomNew = unique('node-move-new');
  const obs = await join(roomA, 'watcher');
  const bob = await join(roomA, 'bob');
  const sid = bob.joinResponse.participant.sid;
  const rsidA = bob.joinResponse.room.sid;
  await obs.waitFor(updateAbout('bob', (p) => p.state === JOINED), { what: 'bob joined' });
  assert.deepEqual(await roomNames(roomNew), []);

  let marks = [bob.mark(), obs.mark()];
  const started = Date.now();
  await move(roomA, 'bob', roomNew);
  let m = await bob.waitFor(isCase('roomMoved'), { since: marks[0], ...FAST, what: 'roomMoved' });
  const moved = m.message.value;
  assert.equal(moved.room.name, roomNew);
  assert.match(moved.room.sid, /^RM_/);
  assert.notEqual(moved.room.sid, rsidA);
  assert.deepEqual(moved.otherParticipants, []);
  assert.deepEqual([moved.participant.sid, moved.participant.tracks], [sid, []]);
  assert.equal((await decodeToken(moved.token)).video.room, roomNew);

  // the destination was created; the roomMoved room is that room
  assert.deepEqual((await rs.listRooms([roomNew])).map((r) => [r.name, r.sid]), [[roomNew, moved.room.sid]]);

  // a non-publisher's departure comes with the next presence batch (<= 3 s)
  m = await obs.waitFor(departed('bob'), { since: marks[1], what: 'bob left' });
  const waited = Date.now() - started;
  const [gone] = infosAbout(m, 'bob');
  assert.deepEqual([gone.sid, gone.disconnectReason], [sid, MIGRATION]);
  assert.ok(waited < 4500, `departure announced after ${waited} ms`);
  assert.deepEqual(await listed(roomA), ['watcher']);
  assert.deepEqual(await listed(roomNew), ['bob']);
  await assertNotIn(roomA, 'bob');

  // moved back: the same session arrives in the source again
  marks = [bob.mark(), obs.mark()];
  await move(roomNew, 'bob', roomA);
  m = await bob.waitFor(isCase('roomMoved'), { since: marks[0], ...FAST, what: 'roomMoved back' });
  const back = m.message.value;
  assert.deepEqual([back.room.name, back.room.sid, back.participant.sid], [roomA, rsidA, sid]);
  assert.deepEqual(back.otherParticipants.map((p) => [p.identity, p.sid]), [['watcher', obs.joinResponse.participant.sid]]);
  assert.equal((await decodeToken(back.token)).video.room, roomA);
  await obs.waitFor(updateAbout('bob', (p) => p.sid === sid && p.state !== DISCONNECTED), {
    since: marks[1],
    what: 'bob back in a',
  });
  assert.deepEqual(await listed(roomA), ['bob', 'watcher']);
  assert.deepEqual(await listed(roomNew), []);

  // bob's own leave ends him where he is now
  await bob.leave();
  await bob.waitClosed();
  assert.deepEqual(await listed(roomA), ['watcher']);
  assert.deepEqual(await listed(roomNew), []);
  assert.equal(bob.all(isCase('roomMoved')).length, 2);
  assertVersionsIncrease(obs, bob);
  assert.deepEqual([...obs.errors, ...bob.errors], []);
});

// --- (b) refusals change nothing -----------------------------------------------------------

test('refused moves change nothing', async () => {
  const roomA = unique('node-move-ra');
  const roomB = unique('node-move-rb');
  const roomD = unique('node-move-rd');
  const obs = await join(roomA, 'observer');
  const alice = await join(roomA, 'alice');
  const sid = alice.joinResponse.participant.sid;
  const mic = await alice.addTrack('mic', AUDIO, MIC); // a publisher: its departure would be immediate
  const old = await oldClient(roomA, 'old', 15);
  const oldSid = old.joinResponse.participant.sid;
  const twin = await join(roomD, 'alice', { label: 'twin' }); // the same identity, already in roomD
  const twinSid = twin.joinResponse.participant.sid;
  await obs.waitFor(updateAbout('alice', (p) => sids(p).join() === mic.sid), { what: "alice's mic" });
  await obs.waitFor(updateAbout('old', (p) => p.state === JOINED), { what: 'old joined' });
  assert.deepEqual(await listed(roomA), ['alice', 'observer', 'old']);

  const snapshot = async () => ({
    alice: await rs.getParticipant(roomA, 'alice'),
    old: await rs.getParticipant(roomA, 'old'),
    twin: await rs.getParticipant(roomD, 'alice'),
  });
  const brief = (s) => Object.fromEntries(Object.entries(s).map(([k, v]) => [k, [v.sid, v.version, v.state]]));
  const before = await snapshot();
  const clients = { observer: obs, alice, old, twin };
  const marks = Object.fromEntries(Object.entries(clients).map(([k, c]) => [k, c.mark()]));

  // same room
  assertTwirp(await rejection(rs.moveParticipant(roomA, 'alice', roomA)), 'invalid_argument', 400, SAME_ROOM, 'same room');
  // unknown identity; unknown room
  assertTwirp(
    await rejection(rs.moveParticipant(roomA, 'nobody', roomB)),
    'not_found',
    404,
    NOT_FOUND_PARTICIPANT,
    'unknown identity',
  );
  assertTwirp(
    await rejection(rs.moveParticipant(unique('node-move-none'), 'alice', roomB)),
    'not_found',
    404,
    NOT_FOUND_PARTICIPANT,
    'unknown room',
  );
  // a client too old to follow a move
  assertTwirp(await rejection(rs.moveParticipant(roomA, 'old', roomB)), 'failed_precondition', 412, TOO_OLD, 'protocol 15');
  // the identity is already in the destination
  assertTwirp(
    await rejection(rs.moveParticipant(roomA, 'alice', roomD)),
    'already_exists',
    409,
    undefined,
    'already in the destination',
  );
  // grants: the destinationRoom must be the request's, roomAdmin for the request's room
  for (const [label, token] of [
    ['another destinationRoom', await moverToken(roomA, roomD)],
    ['no destinationRoom', await moverToken(roomA, undefined)],
    ['roomAdmin of another room', await moverToken(roomD, roomB)],
    ['no roomAdmin', await moverToken(roomA, roomB, { roomAdmin: false })],
  ]) {
    assertTwirp(
      await rejection(withToken(token).moveParticipant(roomA, 'alice', roomB)),
      'unauthenticated',
      401,
      PERMISSIONS_DENIED,
      label,
    );
  }

  // nothing changed: no one was told anything, everyone is where they were
  await sleep(QUIET_MS);
  for (const [name, c] of Object.entries(clients)) {
    for (const k of MOVE_EFFECTS) assert.deepEqual(c.all(isCase(k), marks[name]), [], `${name} got ${k}; ${c.summary()}`);
    assert.equal(c.isClosed, false, `${name}: ${c.summary()}`);
    // no one hears of a change to alice, old or the twin (a batch may repeat news)
    for (const [who, was] of Object.entries(before)) {
      const changed = updateAbout(
        who === 'twin' ? 'alice' : who,
        (p) => p.sid === was.sid && (p.state === DISCONNECTED || p.version > was.version),
      );
      assert.deepEqual(c.all(changed, marks[name]), [], `${name} heard of ${who}: ${c.summary()}`);
    }
  }
  // the API shows the same versions: nothing about them changed
  assert.deepEqual(brief(await snapshot()), brief(before));
  assert.deepEqual(await listed(roomA), ['alice', 'observer', 'old']);
  const here = await rs.getParticipant(roomA, 'alice');
  assert.deepEqual([here.sid, here.state, sids(here)], [sid, JOINED, [mic.sid]]);
  assert.equal((await rs.getParticipant(roomA, 'old')).sid, oldSid);
  assert.deepEqual((await rs.listParticipants(roomD)).map((p) => [p.identity, p.sid]), [['alice', twinSid]]);
  assert.deepEqual(await roomNames(roomB), [], 'a refused move created its destination');

  // the refusals were about the request: with the twin gone, the same move succeeds
  await twin.leave();
  await twin.waitClosed();
  assert.deepEqual(await listed(roomD), []);
  const since = alice.mark();
  await move(roomA, 'alice', roomD);
  const m = await alice.waitFor(isCase('roomMoved'), { since, ...FAST, what: 'roomMoved to d' });
  assert.deepEqual([m.message.value.room.name, m.message.value.participant.sid], [roomD, sid]);
  await obs.waitFor(updateAbout('alice', (p) => p.state === DISCONNECTED && p.disconnectReason === MIGRATION), {
    ...FAST,
    what: 'alice moved out',
  });
  assert.deepEqual(await listed(roomA), ['observer', 'old']);
  for (const c of Object.values(clients)) assert.deepEqual(c.errors, []);
});
