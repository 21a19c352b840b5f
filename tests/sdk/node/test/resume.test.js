// Signal loss, the departure window and resume; UpdateSubscriptions. Driven by the official
// Node SDK (`RoomServiceClient`, JSON) while lib/signal.js participants are connected over /rtc.
//
// A socket closed without a `leave` keeps its participant in the room for the room's
// `departure_timeout` (default 20 s), unannounced; `/rtc?...&reconnect=1&sid=...` with a token
// for the same identity takes it back and gets, in order: `reconnect`, the departures it
// missed (protocol >= 9), everyone's current info, the room. Without a resume it is removed
// with CONNECTION_TIMEOUT, and a late resume is told to rejoin from scratch (STATE_MISMATCH
// leave, action RECONNECT). A `syncState` naming a track the room does not know gets the same
// leave and removes the participant.
//
// UpdateSubscriptions (RPC) and a client's `subscription` request answer an unknown track with
// `subscriptionResponse` SE_TRACK_NOTFOUND on the subscriber's socket.
//
// Presence updates about non-publishers may be batched for up to 3 s, so those waits use
// DEFAULT_WAIT_MS (8 s); the rest are immediate. "Nothing arrives" is watched for QUIET_MS.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DisconnectReason,
  LeaveRequest_Action,
  ParticipantTracks,
  Ping,
  SubscriptionError,
  SyncState,
  TrackInfo,
  TrackPublishedResponse,
  UpdateSubscription,
} from '@livekit/protocol';
import { ParticipantInfo_State, RoomServiceClient, TrackSource, TrackType } from 'livekit-server-sdk';
import {
  FAST,
  QUIET_MS,
  assertTwirpExact as assertTwirp,
  assertVersionsIncreaseIn,
  departed,
  joinToken,
  listedIn,
  sids,
  useServers,
  verifier,
} from '../lib/helpers.js';
import { DEV_KEY, DEV_SECRET, NOT_FOUND_PARTICIPANT, NOT_FOUND_ROOM, rejection, startDevUsher, unique } from '../lib/usher.js';
import { SignalClient, infosAbout, isCase, updateAbout } from '../lib/signal.js';

const { JOINED, DISCONNECTED } = ParticipantInfo_State;
const { MICROPHONE: MIC, CAMERA } = TrackSource;
const { AUDIO, VIDEO } = TrackType;
const { CONNECTION_TIMEOUT, STATE_MISMATCH } = DisconnectReason;
const { RECONNECT } = LeaveRequest_Action;
const { SE_TRACK_NOTFOUND } = SubscriptionError;

let server;
let rs;
const open = useServers(startDevUsher, (s) => {
  server = s;
  rs = new RoomServiceClient(server.url, DEV_KEY, DEV_SECRET);
}); // clients of the running test, closed after it

// --- helpers ------------------------------------------------------------------------------

async function join(room, identity, opts = {}) {
  const c = await SignalClient.join(server.url, await joinToken(room, identity, opts), { label: identity });
  open.push(c);
  return c;
}

/** Resumes `identity`'s session `sid` with a fresh token for the same identity and room. */
async function resume(room, identity, sid) {
  const c = await SignalClient.resume(server.url, await joinToken(room, identity), sid, { label: `${identity} (resumed)` });
  open.push(c);
  return c;
}

const listed = (room) => listedIn(rs, room);
const kinds = (msgs) => msgs.map((m) => m.message.case);

/** A refused resume: exactly one leave (STATE_MISMATCH, action RECONNECT), then the close. */
async function assertToldToRejoin(c) {
  await c.waitClosed();
  assert.deepEqual(kinds(c.received), ['leave'], c.summary());
  const leave = c.received[0].message.value;
  assert.deepEqual([leave.reason, leave.action], [STATE_MISMATCH, RECONNECT]);
  assert.deepEqual(c.errors, []);
}

/** Per client and participant sid, the versions in updates strictly increase. */
const assertVersionsIncrease = (...clients) => assertVersionsIncreaseIn(clients, { snapshot: false });

// --- lost, kept, resumed with what it missed ----------------------------------------------

test('a lost socket keeps the participant; a resume gets reconnect, missed departures, everyone, the room', async () => {
  const room = unique('node-resume');
  const obs = await join(room, 'observer');
  const alice = await join(room, 'alice', { metadata: 'm0' });
  const sid = alice.joinResponse.participant.sid;
  const rsid = alice.joinResponse.room.sid;
  const mic = await alice.addTrack('mic', AUDIO, MIC);
  const bob = await join(room, 'bob');
  const bobSid = bob.joinResponse.participant.sid;
  await obs.waitFor(updateAbout('bob', (p) => p.state === JOINED), { since: 0, what: 'bob joined' });
  await obs.waitFor(updateAbout('alice', (p) => sids(p).join() === mic.sid), { since: 0, what: "alice's mic" });

  // alice's socket goes without a leave
  await alice.drop();
  const sinceLost = obs.mark();

  // inside the window she is still listed, unchanged
  const byId = Object.fromEntries((await rs.listParticipants(room)).map((p) => [p.identity, p]));
  assert.deepEqual(Object.keys(byId).sort(), ['alice', 'bob', 'observer']);
  const a = byId.alice;
  assert.deepEqual([a.sid, a.state, sids(a), a.metadata], [sid, JOINED, [mic.sid], 'm0']);
  assert.equal((await rs.getParticipant(room, 'alice')).sid, sid);

  // while she is away: bob leaves, and the room metadata changes
  await bob.leave();
  await bob.waitClosed();
  const left = await obs.waitFor(departed('bob'), { what: 'bob left' });
  assert.equal(infosAbout(left, 'bob')[0].sid, bobSid);
  const updated = await rs.updateRoomMetadata(room, 'while away');
  assert.equal(updated.metadata, 'while away');
  await obs.waitFor(isCase('roomUpdate', (u) => u.room?.metadata === 'while away'), { ...FAST, what: 'room metadata' });
  assert.deepEqual(await listed(room), ['alice', 'observer']);
  // the others were told nothing about alice
  assert.deepEqual(obs.all(updateAbout('alice'), sinceLost), [], obs.summary());

  // she resumes with a new token for the same identity
  const back = await resume(room, 'alice', sid);
  await back.waitFor(isCase('roomUpdate'), { since: 0, ...FAST, what: 'the resumed state' });
  const frames = back.received.slice(0, 4);
  assert.deepEqual(kinds(frames), ['reconnect', 'update', 'update', 'roomUpdate'], back.summary());
  assert.notEqual(frames[0].message.value.serverInfo?.version ?? '', '');
  // the departures she missed
  assert.deepEqual(
    frames[1].message.value.participants.map((p) => [p.identity, p.sid, p.state]),
    [['bob', bobSid, DISCONNECTED]],
  );
  // everyone's current info, her own included, same sid, tracks kept
  const everyone = Object.fromEntries(frames[2].message.value.participants.map((p) => [p.identity, p]));
  assert.deepEqual(Object.keys(everyone).sort(), ['alice', 'observer']);
  const me = everyone.alice;
  assert.deepEqual([me.sid, me.state, me.metadata, sids(me)], [sid, JOINED, 'm0', [mic.sid]]);
  assert.deepEqual([me.tracks[0].type, me.tracks[0].source], [AUDIO, MIC]);
  assert.equal(everyone.observer.sid, obs.joinResponse.participant.sid);
  // the room as it is now
  const r = frames[3].message.value.room;
  assert.deepEqual([r.name, r.sid, r.metadata, r.numParticipants], [room, rsid, 'while away', 2]);

  // the resumed socket is live: pings are answered...
  await back.send({ case: 'pingReq', value: new Ping({ timestamp: 424242n }) });
  await back.waitFor(isCase('pongResp', (p) => p.lastPingTimestamp === 424242n), { ...FAST, what: 'pong' });
  // ...and API changes reach it
  const marks = [obs.mark(), back.mark()];
  const info = await rs.updateParticipant(room, 'alice', { metadata: 'back' });
  assert.deepEqual([info.sid, info.metadata, sids(info)], [sid, 'back', [mic.sid]]);
  for (const [c, since] of [[obs, marks[0]], [back, marks[1]]]) {
    await c.waitFor(updateAbout('alice', (p) => p.sid === sid && p.metadata === 'back'), { since, ...FAST, what: 'new metadata' });
  }
  const deadline = Date.now() + 5000;
  let claims;
  while (!claims) {
    for (const m of back.all(isCase('refreshToken'), marks[1])) {
      const cl = await verifier.verify(m.message.value);
      if (cl.metadata === 'back') claims = cl;
    }
    if (!claims && Date.now() > deadline) assert.fail(`no refresh token; ${back.summary()}`);
    if (!claims) await sleep(50);
  }
  assert.equal(claims.sub, 'alice');

  // the observer never saw alice go
  assert.deepEqual(obs.all(departed('alice')), [], obs.summary());
  assert.deepEqual([...obs.all(isCase('leave')), ...back.all(isCase('leave'))], []);
  assert.deepEqual(await listed(room), ['alice', 'observer']);
  assertVersionsIncrease(obs, back);
  assert.deepEqual([...obs.errors, ...back.errors], []);
});

// --- no resume within the window -----------------------------------------------------------

test('without a resume the participant times out (CONNECTION_TIMEOUT); a late resume is told to rejoin', async () => {
  const room = unique('node-resume-timeout');
  const created = await rs.createRoom({ name: room, departureTimeout: 1 });
  assert.equal(created.departureTimeout, 1);
  const obs = await join(room, 'observer');
  const alice = await join(room, 'alice');
  const sid = alice.joinResponse.participant.sid;
  await obs.waitFor(updateAbout('alice', (p) => p.state === JOINED), { what: 'alice joined' });

  const started = Date.now();
  await alice.drop();
  const m = await obs.waitFor(departed('alice'), { what: 'alice timed out' });
  const waited = Date.now() - started;
  const [gone] = infosAbout(m, 'alice');
  assert.deepEqual([gone.sid, gone.disconnectReason], [sid, CONNECTION_TIMEOUT]);
  assert.ok(waited >= 1000, `removed after ${waited} ms, inside the 1 s window`);
  const sinceGone = obs.mark();
  assert.deepEqual(await listed(room), ['observer']);
  assertTwirp(await rejection(rs.getParticipant(room, 'alice')), 'not_found', 404, NOT_FOUND_PARTICIPANT);

  // too late: the resume is upgraded, told to rejoin from scratch, and closed
  await assertToldToRejoin(await resume(room, 'alice', sid));
  // the same for an identity the room never held
  await assertToldToRejoin(await resume(room, 'stranger', 'PA_neverexisted'));

  // the refused resumes were not announced
  await sleep(QUIET_MS);
  assert.deepEqual(await listed(room), ['observer']);
  for (const who of ['alice', 'stranger']) assert.deepEqual(obs.all(updateAbout(who), sinceGone), [], obs.summary());

  // a fresh join works, as a new session
  const again = await join(room, 'alice');
  assert.notEqual(again.joinResponse.participant.sid, sid);
  assert.deepEqual(await listed(room), ['alice', 'observer']);
  assert.deepEqual(obs.errors, []);
});

// --- SyncState after a resume ---------------------------------------------------------------

test('a SyncState naming a track the room does not know gets a STATE_MISMATCH leave and removes the participant', async () => {
  const room = unique('node-resume-sync');
  const obs = await join(room, 'observer');
  const alice = await join(room, 'alice');
  const sid = alice.joinResponse.participant.sid;
  const mic = await alice.addTrack('mic', AUDIO, MIC);
  await obs.waitFor(updateAbout('alice', (p) => sids(p).join() === mic.sid), { what: "alice's mic" });

  await alice.drop();
  const back = await resume(room, 'alice', sid);
  await back.waitFor(isCase('roomUpdate'), { since: 0, ...FAST, what: 'the resumed state' });
  assert.equal(back.received[0].message.case, 'reconnect', back.summary());

  // a state that matches the room's: kept; its subscription is handled like one
  let since = back.mark();
  await back.send({
    case: 'syncState',
    value: new SyncState({
      publishTracks: [new TrackPublishedResponse({ cid: 'mic', track: mic })],
      subscription: new UpdateSubscription({ trackSids: ['TR_syncghost'], subscribe: true }),
    }),
  });
  const nf = await back.waitFor(isCase('subscriptionResponse'), { since, ...FAST, what: 'not found' });
  assert.deepEqual([nf.message.value.trackSid, nf.message.value.err], ['TR_syncghost', SE_TRACK_NOTFOUND]);
  await sleep(QUIET_MS);
  assert.deepEqual(back.all(isCase('leave')), []);
  assert.equal(back.isClosed, false);
  assert.deepEqual(await listed(room), ['alice', 'observer']);

  // a state naming a track the room does not know: a leave asking for a full reconnect
  since = obs.mark();
  const unknown = new TrackInfo({ sid: 'TR_notinthisroom', type: VIDEO, source: CAMERA, name: 'cam' });
  await back.send({
    case: 'syncState',
    value: new SyncState({
      publishTracks: [
        new TrackPublishedResponse({ cid: 'mic', track: mic }),
        new TrackPublishedResponse({ cid: 'cam', track: unknown }),
      ],
    }),
  });
  const leave = await back.waitFor(isCase('leave'), { ...FAST, what: 'state mismatch leave' });
  assert.deepEqual([leave.message.value.reason, leave.message.value.action], [STATE_MISMATCH, RECONNECT]);
  await back.waitClosed();
  assert.equal(back.received.at(-1), leave, 'nothing follows the leave');
  // the others see it go (a publisher: at once), with the reason
  const m = await obs.waitFor(departed('alice'), { since, ...FAST, what: 'alice removed' });
  const [gone] = infosAbout(m, 'alice');
  assert.deepEqual([gone.sid, gone.disconnectReason, gone.tracks], [sid, STATE_MISMATCH, []]);
  assert.deepEqual(await listed(room), ['observer']);
  // and there is nothing left to resume
  await assertToldToRejoin(await resume(room, 'alice', sid));
  assertVersionsIncrease(obs);
});

// --- UpdateSubscriptions ------------------------------------------------------------------

test("UpdateSubscriptions succeeds and answers unknown tracks with SE_TRACK_NOTFOUND on the subscriber's socket", async () => {
  const room = unique('node-subs');
  const pub = await join(room, 'pub');
  const sub = await join(room, 'sub');
  const pubSid = pub.joinResponse.participant.sid;
  const mic = await pub.addTrack('mic', AUDIO, MIC);
  await sub.waitFor(updateAbout('pub', (p) => sids(p).join() === mic.sid), { ...FAST, what: 'mic' });

  const notFound = (c, since) =>
    c
      .all(isCase('subscriptionResponse'), since)
      .map((m) => {
        assert.equal(m.message.value.err, SE_TRACK_NOTFOUND);
        return m.message.value.trackSid;
      })
      .sort();
  const answered = async (c, since, want) => {
    for (const t of want) {
      await c.waitFor(isCase('subscriptionResponse', (r) => r.trackSid === t), { since, ...FAST, what: `SE_TRACK_NOTFOUND for ${t}` });
    }
    await sleep(QUIET_MS);
    assert.deepEqual(notFound(c, since), [...want].sort(), c.summary());
  };

  // subscribe: an existing track is fine; unknown ones are answered (JSON request)
  let marks = [pub.mark(), sub.mark()];
  assert.equal(await rs.updateSubscriptions(room, 'sub', [mic.sid, 'TR_ghost1', 'TR_ghost2'], true), undefined);
  await answered(sub, marks[1], ['TR_ghost1', 'TR_ghost2']);
  assert.deepEqual(pub.all(isCase('subscriptionResponse'), marks[0]), [], 'only the subscriber is answered');

  // unsubscribing, even from unknown tracks: nothing to answer
  let since = sub.mark();
  await rs.updateSubscriptions(room, 'sub', [mic.sid, 'TR_ghost3'], false);
  await sleep(QUIET_MS);
  assert.deepEqual(sub.all(isCase('subscriptionResponse'), since), [], sub.summary());

  // a client's own UpdateSubscription behaves the same, participantTracks included
  since = sub.mark();
  await sub.send({
    case: 'subscription',
    value: new UpdateSubscription({
      trackSids: ['TR_ghost4'],
      subscribe: true,
      participantTracks: [new ParticipantTracks({ participantSid: pubSid, trackSids: [mic.sid, 'TR_ghost5'] })],
    }),
  });
  await answered(sub, since, ['TR_ghost4', 'TR_ghost5']);

  // a track that ended is unknown from then on
  marks = [pub.mark(), sub.mark()];
  await pub.leave();
  await pub.waitClosed();
  await sub.waitFor(departed('pub'), { since: marks[1], ...FAST, what: 'pub left' });
  since = sub.mark();
  await rs.updateSubscriptions(room, 'sub', [mic.sid], true);
  await answered(sub, since, [mic.sid]);

  // an unknown participant or room
  assertTwirp(await rejection(rs.updateSubscriptions(room, 'nobody', ['TR_x'], true)), 'not_found', 404, NOT_FOUND_PARTICIPANT);
  assertTwirp(
    await rejection(rs.updateSubscriptions(unique('node-nope'), 'sub', ['TR_x'], true)),
    'not_found',
    404,
    NOT_FOUND_ROOM,
  );
  for (const k of ['leave', 'trackUnpublished']) assert.deepEqual(sub.all(isCase(k)), [], `sub got ${k}`);
  assert.deepEqual([...sub.errors, ...pub.errors], []);
});
