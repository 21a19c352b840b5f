// ForwardParticipant on connected sessions, driven by the official Node SDK
// (`RoomServiceClient.forwardParticipant(room, identity, destinationRoom)`, JSON) while
// lib/signal.js participants are connected over /rtc. LiveKit's open-source server does not
// implement forwarding; Usher does.
//
// Grants are those of a move (`roomAdmin` for the request's room, `destinationRoom` equal to the
// request's destination; the SDK mints them). The participant stays in its room; each
// destination (created if missing) gets a read-only forwarded copy: the same sid and track sids,
// `kindDetails` containing FORWARDED, shown to observers there at once and listed by the API.
// Its metadata, name, attributes, mutes and new tracks follow it there; UpdateParticipant or
// MutePublishedTrack on a copy answers `failed_precondition`. RemoveParticipant in a destination
// removes that copy only (the participant stays and is told nothing); the participant leaving
// its room removes every copy. The source room's observers and the participant's own socket get
// nothing from forwarding.
//
// Refusals (same room, unknown room/identity, the identity already in the destination in person
// or as a copy, a full destination, a wrong grant) change nothing.
//
// "Nothing arrives" is watched for QUIET_MS; presence batches are waited for with
// DEFAULT_WAIT_MS (the default of waitFor).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import { DisconnectReason, MuteTrackRequest, ParticipantInfo_KindDetail } from '@livekit/protocol';
import { ParticipantInfo_State, RoomServiceClient, TrackSource, TrackType } from 'livekit-server-sdk';
import {
  FAST,
  QUIET_MS,
  SAME_ROOM,
  assertNotIn as assertNotInRoom,
  assertTwirp,
  assertVersionsIncreaseIn,
  departed,
  destinationToken as forwarderToken,
  joinToken,
  listedIn,
  roomNamesIn,
  sids,
  useServers,
} from '../lib/helpers.js';
import { DEV_KEY, DEV_SECRET, NOT_FOUND_PARTICIPANT, PERMISSIONS_DENIED, rejection, startDevUsher, unique } from '../lib/usher.js';
import { SignalClient, infosAbout, isCase, updateAbout } from '../lib/signal.js';

const { JOINED, DISCONNECTED } = ParticipantInfo_State;
const { PARTICIPANT_REMOVED: REMOVED } = DisconnectReason;
const { FORWARDED } = ParticipantInfo_KindDetail;
const { MICROPHONE: MIC, CAMERA } = TrackSource;
const { AUDIO, VIDEO } = TrackType;
const ALREADY_THERE = 'twirp error unknown: participant already exists in the destination room';
const READ_ONLY = 'twirp error unknown: participant is forwarded from another room; change it there';
/** What a participant must not get when it is forwarded or its copy removed (it stays where it is, as it is). */
const FORWARD_EFFECTS = ['roomMoved', 'leave', 'trackUnpublished', 'refreshToken', 'mute'];

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

const withToken = (token) => new RoomServiceClient(server.url, undefined, undefined, { token });

async function forward(room, identity, destination) {
  // the SDK resolves to nothing for the empty ForwardParticipantResponse
  assert.equal(await rs.forwardParticipant(room, identity, destination), undefined);
}

const listed = (room) => listedIn(rs, room);
const roomNames = (...names) => roomNamesIn(rs, ...names);
const mutes = (info) => Object.fromEntries(info.tracks.map((t) => [t.sid, t.muted]));
const isCopy = (info) => info.kindDetails.includes(FORWARDED);

/** Predicate: an update showing the forwarded copy of session `sid`, present, for which `cond` holds. */
const copyOf = (identity, sid, cond = () => true) =>
  updateAbout(identity, (p) => p.sid === sid && isCopy(p) && p.state !== DISCONNECTED && cond(p));

/** Predicate: an update telling of a change to session `was` (a presence batch may repeat what a client knows). */
const newsAbout = (identity, was) =>
  updateAbout(identity, (p) => p.sid === was.sid && (p.state === DISCONNECTED || p.version > was.version));

/** Forwarding `c`'s participant (`was`) told it nothing: no move, leave, unpublish, token or mute, no news of itself. */
function assertNothingSpecial(c, was, since) {
  for (const k of FORWARD_EFFECTS) assert.deepEqual(c.all(isCase(k), since), [], `${c.label} got ${k}: ${c.summary()}`);
  assert.deepEqual(c.all(newsAbout(was.identity, was), since), [], `${c.label}: ${c.summary()}`);
}

function assertQuietAbout(c, identity, since) {
  assert.deepEqual(c.all(updateAbout(identity), since), [], `${c.label} heard of ${identity}: ${c.summary()}`);
}

/** The infos about `identity` in `c`'s updates, split after each DISCONNECTED. */
function copyLives(c, identity) {
  const lives = [[]];
  for (const m of c.all(updateAbout(identity))) {
    for (const p of infosAbout(m, identity)) {
      lives.at(-1).push(p);
      if (p.state === DISCONNECTED) lives.push([]);
    }
  }
  return lives.filter((life) => life.length > 0);
}

function assertIncreasing(versions, label) {
  for (let i = 1; i < versions.length; i++) {
    assert.ok(versions[i - 1] < versions[i], `${label}: versions must strictly increase: ${versions}`);
  }
}

const assertNotIn = (room, identity) => assertNotInRoom(rs, room, identity);

/** Per client and participant sid, the versions in updates strictly increase (and none is below the join snapshot). */
const assertVersionsIncrease = (...clients) =>
  assertVersionsIncreaseIn(clients, {
    increasing: (c, who, versions) => `${c.label}: ${who}: versions must strictly increase: ${versions}`,
  });

// --- (a) a publisher forwarded into two rooms ----------------------------------------------

test('a publisher forwarded to two rooms is shown there, kept in sync, and removed', async () => {
  const roomA = unique('node-fwd-a');
  const roomB = unique('node-fwd-b');
  const roomC = unique('node-fwd-c');
  const obsA = await join(roomA, 'watcher-a');
  const obsB = await join(roomB, 'watcher-b');
  const obsC = await join(roomC, 'watcher-c');
  const host = await join(roomA, 'host', { metadata: 'm0', attributes: { lang: 'en' } });
  const sid = host.joinResponse.participant.sid;
  const mic = await host.addTrack('mic', AUDIO, MIC);
  await obsA.waitFor(updateAbout('host', (p) => sids(p).join() === mic.sid), { ...FAST, what: "host's mic" });
  assert.deepEqual(await listed(roomB), ['watcher-b']);
  assert.deepEqual(await listed(roomC), ['watcher-c']);
  const home = await rs.getParticipant(roomA, 'host');
  assert.deepEqual([home.sid, home.state, sids(home), home.kindDetails], [sid, JOINED, [mic.sid], []]);

  let marks = [host.mark(), obsA.mark(), obsB.mark(), obsC.mark()];
  await forward(roomA, 'host', roomB);
  await forward(roomA, 'host', roomC);

  // observers in each destination see the copy arrive at once, with its track
  for (const [obs, since] of [[obsB, marks[2]], [obsC, marks[3]]]) {
    const m = await obs.waitFor(copyOf('host', sid), { since, ...FAST, what: "host's copy" });
    const [came] = infosAbout(m, 'host');
    assert.deepEqual([came.metadata, came.attributes, sids(came)], ['m0', { lang: 'en' }, [mic.sid]]);
    assert.deepEqual([came.tracks[0].type, came.tracks[0].source], [AUDIO, MIC]);
    assert.deepEqual(came.kindDetails, [FORWARDED]);
  }

  // the API lists it in both destinations (and still in its own room)
  for (const [room, watcher] of [[roomB, 'watcher-b'], [roomC, 'watcher-c']]) {
    assert.deepEqual(await listed(room), ['host', watcher]);
    const [there] = (await rs.listParticipants(room)).filter((p) => p.identity === 'host');
    assert.deepEqual([there.sid, sids(there), there.metadata, isCopy(there)], [sid, [mic.sid], 'm0', true]);
    const got = await rs.getParticipant(room, 'host');
    assert.deepEqual([got.sid, sids(got), got.kindDetails], [sid, [mic.sid], [FORWARDED]]);
  }
  assert.deepEqual(await listed(roomA), ['host', 'watcher-a']);
  const still = await rs.getParticipant(roomA, 'host');
  assert.deepEqual([still.version, still.kindDetails], [home.version, []]);

  // the source room and the participant itself see nothing new; destinations see only the
  // participant, not the others of its room
  await sleep(QUIET_MS);
  assert.deepEqual(obsA.all(newsAbout('host', home), marks[1]), [], obsA.summary());
  assertNothingSpecial(host, home, marks[0]);
  for (const obs of [obsB, obsC]) assertQuietAbout(obs, 'watcher-a', 0);

  // metadata, name and attributes changed in the source reach every copy
  marks = [obsB.mark(), obsC.mark()];
  const info = await rs.updateParticipant(roomA, 'host', { metadata: 'live', name: 'Host', attributes: { lang: 'fr' } });
  assert.deepEqual([info.metadata, info.name, info.attributes], ['live', 'Host', { lang: 'fr' }]);
  const renamed = (p) => p.metadata === 'live' && p.name === 'Host' && isDeepStrictEqual({ ...p.attributes }, { lang: 'fr' });
  for (const [obs, since] of [[obsB, marks[0]], [obsC, marks[1]]]) {
    await obs.waitFor(copyOf('host', sid, renamed), { since, ...FAST, what: 'new metadata' });
  }
  for (const room of [roomB, roomC]) {
    const got = await rs.getParticipant(room, 'host');
    assert.ok(renamed(got) && isCopy(got), JSON.stringify(got));
  }

  // the participant's own mute and a new track reach every copy
  marks = [obsB.mark(), obsC.mark()];
  await host.send({ case: 'mute', value: new MuteTrackRequest({ sid: mic.sid, muted: true }) });
  for (const [obs, since] of [[obsB, marks[0]], [obsC, marks[1]]]) {
    await obs.waitFor(copyOf('host', sid, (p) => isDeepStrictEqual(mutes(p), { [mic.sid]: true })), {
      since,
      ...FAST,
      what: "host's mic muted",
    });
  }
  assert.deepEqual(mutes(await rs.getParticipant(roomC, 'host')), { [mic.sid]: true });
  marks = [obsB.mark(), obsC.mark()];
  const cam = await host.addTrack('cam', VIDEO, CAMERA);
  const bothTracks = { [mic.sid]: true, [cam.sid]: false };
  for (const [obs, since] of [[obsB, marks[0]], [obsC, marks[1]]]) {
    const m = await obs.waitFor(copyOf('host', sid, (p) => isDeepStrictEqual(mutes(p), bothTracks)), {
      since,
      ...FAST,
      what: "host's camera",
    });
    const [p] = infosAbout(m, 'host');
    const camInfo = p.tracks.find((t) => t.sid === cam.sid);
    assert.deepEqual([camInfo.type, camInfo.source], [VIDEO, CAMERA]);
  }
  for (const room of [roomB, roomC]) assert.deepEqual(mutes(await rs.getParticipant(room, 'host')), bothTracks);

  // a copy is read-only: changes must be made in the participant's own room
  const was = await rs.getParticipant(roomB, 'host');
  marks = [host.mark(), obsA.mark(), obsB.mark(), obsC.mark()];
  assertTwirp(
    await rejection(rs.updateParticipant(roomB, 'host', { metadata: 'from b' })),
    'failed_precondition',
    412,
    READ_ONLY,
    'UpdateParticipant on a copy',
  );
  assertTwirp(
    await rejection(rs.mutePublishedTrack(roomB, 'host', cam.sid, true)),
    'failed_precondition',
    412,
    READ_ONLY,
    'MutePublishedTrack on a copy',
  );
  await sleep(QUIET_MS);
  for (const [c, since] of [[host, marks[0]], [obsA, marks[1]], [obsB, marks[2]], [obsC, marks[3]]]) {
    assert.deepEqual(c.all(newsAbout('host', was), since), [], `${c.label}: ${c.summary()}`);
  }
  assert.deepEqual(host.all(isCase('mute'), marks[0]), [], host.summary());
  const unchanged = await rs.getParticipant(roomB, 'host');
  assert.deepEqual([unchanged.version, unchanged.metadata, mutes(unchanged)], [was.version, 'live', bothTracks]);
  assert.equal((await rs.getParticipant(roomA, 'host')).metadata, 'live');

  // RemoveParticipant in c removes only c's copy
  marks = [host.mark(), obsA.mark(), obsB.mark(), obsC.mark()];
  await rs.removeParticipant(roomC, 'host');
  const m = await obsC.waitFor(departed('host'), { since: marks[3], what: "c's copy removed" });
  const [gone] = infosAbout(m, 'host');
  assert.deepEqual([gone.sid, gone.disconnectReason], [sid, REMOVED]);
  assert.deepEqual(await listed(roomC), ['watcher-c']);
  await assertNotIn(roomC, 'host');
  assert.deepEqual(await listed(roomB), ['host', 'watcher-b']);
  assert.ok(isCopy(await rs.getParticipant(roomB, 'host')));
  assert.deepEqual(await listed(roomA), ['host', 'watcher-a']);
  // ... the participant stays at home and is told nothing; b and a hear nothing
  await sleep(QUIET_MS);
  assertNothingSpecial(host, unchanged, marks[0]);
  assert.equal(host.isClosed, false);
  for (const [c, since] of [[obsA, marks[1]], [obsB, marks[2]]]) {
    assert.deepEqual(c.all(newsAbout('host', unchanged), since), [], `${c.label}: ${c.summary()}`);
  }

  // changes now reach b only
  marks = [obsB.mark(), obsC.mark()];
  await rs.updateParticipant(roomA, 'host', { metadata: 'b only' });
  await obsB.waitFor(copyOf('host', sid, (p) => p.metadata === 'b only'), { since: marks[0], ...FAST, what: 'b only' });
  await sleep(QUIET_MS);
  assertQuietAbout(obsC, 'host', marks[1]);
  assert.deepEqual(await listed(roomC), ['watcher-c']);

  // forwarding into c can start again; the new copy shows the current info
  const since = obsC.mark();
  await forward(roomA, 'host', roomC);
  const again = await obsC.waitFor(copyOf('host', sid), { since, ...FAST, what: "host's copy again" });
  const [back] = infosAbout(again, 'host');
  assert.deepEqual([back.metadata, mutes(back)], ['b only', bothTracks]);
  assert.deepEqual(await listed(roomC), ['host', 'watcher-c']);

  // the participant leaving its room removes every copy
  marks = [obsA.mark(), obsB.mark(), obsC.mark()];
  await host.leave();
  await host.waitClosed();
  await obsA.waitFor(departed('host'), { since: marks[0], what: 'host left a' });
  for (const [obs, s] of [[obsB, marks[1]], [obsC, marks[2]]]) {
    const left = await obs.waitFor(departed('host'), { since: s, what: 'copy gone with the host' });
    assert.deepEqual(infosAbout(left, 'host').map((p) => p.sid), [sid]);
  }
  assert.deepEqual(await listed(roomA), ['watcher-a']);
  assert.deepEqual(await listed(roomB), ['watcher-b']);
  assert.deepEqual(await listed(roomC), ['watcher-c']);
  for (const room of [roomA, roomB, roomC]) await assertNotIn(room, 'host');

  // the participant was never moved nor told of its copies
  assert.deepEqual([host.all(isCase('roomMoved')).length, host.all(isCase('trackUnpublished')).length], [0, 0]);
  for (const who of ['watcher-b', 'watcher-c']) assertQuietAbout(host, who, 0);
  for (const c of [obsA, obsB, obsC]) {
    assert.deepEqual([c.all(isCase('leave')).length, c.isClosed], [0, false], c.summary());
  }
  assertVersionsIncrease(obsA, obsB, host);
  // c saw two copies of the same session; each one's versions increase
  const lives = copyLives(obsC, 'host');
  assert.deepEqual(lives.map((life) => life.at(-1).state), [DISCONNECTED, DISCONNECTED], obsC.summary());
  for (const life of lives) assertIncreasing(life.map((p) => p.version), 'watcher-c: host');
  for (const c of [host, obsA, obsB, obsC]) assert.deepEqual(c.errors, []);
});

// --- (b) refusals change nothing -----------------------------------------------------------

test('refused forwards change nothing', async () => {
  const roomA = unique('node-fwd-ra');
  const roomB = unique('node-fwd-rb');
  const roomD = unique('node-fwd-rd');
  const roomNone = unique('node-fwd-rnone');
  const obs = await join(roomA, 'observer');
  const host = await join(roomA, 'host');
  const sid = host.joinResponse.participant.sid;
  const mic = await host.addTrack('mic', AUDIO, MIC);
  const twin = await join(roomB, 'host', { label: 'twin' }); // the same identity, in person in roomB
  const twinSid = twin.joinResponse.participant.sid;
  const obsD = await join(roomD, 'watcher-d');
  await forward(roomA, 'host', roomD); // and a copy of host in roomD
  await obsD.waitFor(copyOf('host', sid), { ...FAST, what: "host's copy in d" });
  await obs.waitFor(updateAbout('host', (p) => sids(p).join() === mic.sid), { what: "host's mic" });
  // a room with room for one, taken
  const roomFull = unique('node-fwd-rfull');
  await rs.createRoom({ name: roomFull, maxParticipants: 1 });
  const obsFull = await join(roomFull, 'watcher-full');

  const snapshot = async () => ({
    host: await rs.getParticipant(roomA, 'host'),
    twin: await rs.getParticipant(roomB, 'host'),
    copy: await rs.getParticipant(roomD, 'host'),
  });
  const brief = (s) => Object.fromEntries(Object.entries(s).map(([k, v]) => [k, [v.sid, v.version, v.state, v.kindDetails]]));
  const before = await snapshot();
  assert.deepEqual(
    Object.fromEntries(Object.entries(before).map(([k, v]) => [k, [v.sid, v.kindDetails]])),
    { host: [sid, []], twin: [twinSid, []], copy: [sid, [FORWARDED]] },
  );
  const clients = { observer: obs, host, twin, 'watcher-d': obsD, 'watcher-full': obsFull };
  const marks = Object.fromEntries(Object.entries(clients).map(([k, c]) => [k, c.mark()]));

  // same room
  assertTwirp(await rejection(rs.forwardParticipant(roomA, 'host', roomA)), 'invalid_argument', 400, SAME_ROOM, 'same room');
  // unknown identity; unknown room
  assertTwirp(
    await rejection(rs.forwardParticipant(roomA, 'nobody', roomNone)),
    'not_found',
    404,
    NOT_FOUND_PARTICIPANT,
    'unknown identity',
  );
  assertTwirp(
    await rejection(rs.forwardParticipant(unique('node-fwd-rgone'), 'host', roomNone)),
    'not_found',
    404,
    NOT_FOUND_PARTICIPANT,
    'unknown room',
  );
  // the identity is already in the destination: in person, or as a copy
  for (const [label, from, to] of [
    ['in person in the destination', roomA, roomB],
    ['a copy in the destination', roomA, roomD],
    ["twin into host's room", roomB, roomA],
  ]) {
    assertTwirp(await rejection(rs.forwardParticipant(from, 'host', to)), 'already_exists', 409, ALREADY_THERE, label);
  }
  // the destination is full
  assertTwirp(
    await rejection(rs.forwardParticipant(roomA, 'host', roomFull)),
    'resource_exhausted',
    429,
    undefined,
    'full destination',
  );
  // grants, as for a move
  for (const [label, token] of [
    ['another destinationRoom', await forwarderToken(roomA, roomD)],
    ['no roomAdmin', await forwarderToken(roomA, roomNone, { roomAdmin: false })],
  ]) {
    assertTwirp(
      await rejection(withToken(token).forwardParticipant(roomA, 'host', roomNone)),
      'unauthenticated',
      401,
      PERMISSIONS_DENIED,
      label,
    );
  }

  // nothing changed: no one was told anything, everyone is where they were
  await sleep(QUIET_MS);
  for (const [name, c] of Object.entries(clients)) {
    for (const k of FORWARD_EFFECTS) assert.deepEqual(c.all(isCase(k), marks[name]), [], `${name} got ${k}; ${c.summary()}`);
    assert.equal(c.isClosed, false, `${name}: ${c.summary()}`);
    // no one hears of a change to host, its twin or its copy (a batch may repeat news)
    for (const was of Object.values(before)) {
      assert.deepEqual(c.all(newsAbout('host', was), marks[name]), [], `${name}: ${c.summary()}`);
    }
  }
  assert.deepEqual(brief(await snapshot()), brief(before));
  assert.deepEqual(await listed(roomA), ['host', 'observer']);
  assert.deepEqual(await listed(roomB), ['host']);
  assert.deepEqual(await listed(roomD), ['host', 'watcher-d']);
  assert.deepEqual(await listed(roomFull), ['watcher-full']);
  assert.deepEqual(await roomNames(roomNone), [], 'a refused forward created its destination');

  // the refusals were about the request: with the twin gone, the same forward succeeds
  await twin.leave();
  await twin.waitClosed();
  assert.deepEqual(await listed(roomB), []);
  await forward(roomA, 'host', roomB);
  const copy = await rs.getParticipant(roomB, 'host');
  assert.deepEqual([copy.sid, sids(copy), copy.kindDetails], [sid, [mic.sid], [FORWARDED]]);
  assert.deepEqual(await listed(roomA), ['host', 'observer']);
  // ... and a destination that does not exist yet is created
  const roomNew = unique('node-fwd-rnew');
  await forward(roomA, 'host', roomNew);
  assert.deepEqual(await roomNames(roomNew), [roomNew]);
  assert.deepEqual(await listed(roomNew), ['host']);
  assert.ok(isCopy(await rs.getParticipant(roomNew, 'host')));
  for (const c of Object.values(clients)) assert.deepEqual(c.errors, []);
});
