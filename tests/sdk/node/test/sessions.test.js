// Participant management on *connected* participants, driven by the official Node SDK.
//
// Participants are played by lib/signal.js (`ws` + the official `@livekit/protocol`
// messages) over /rtc; RoomService calls go through `RoomServiceClient` (JSON). Each test
// checks the RPC answer *and* what every connected client received (and, where it matters,
// did not receive), and that the `version` of the ParticipantInfo a client gets about a
// session strictly increases from update to update (never below its JoinResponse snapshot).
//
// Reference: shared/reference/signal.md §1-6, roomservice.md §3.3-3.8, §3.11.
// Presence updates (JOINED / DISCONNECTED of non-publishers) may be batched for up to
// 3 s, so those waits use DEFAULT_WAIT_MS (8 s); admin-caused updates are immediate.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { AddTrackRequest, DisconnectReason, LeaveRequest_Action, RequestResponse_Reason } from '@livekit/protocol';
import { ParticipantInfo_State, RoomServiceClient, TrackSource, TrackType } from 'livekit-server-sdk';
import {
  FAST,
  QUIET_MS,
  assertTwirpExact as assertTwirp,
  assertVersionsIncreaseIn,
  joinToken,
  sids,
  useServers,
  verifier,
} from '../lib/helpers.js';
import { DEV_KEY, DEV_SECRET, NOT_FOUND_PARTICIPANT, rejection, startDevUsher, startUsher, unique } from '../lib/usher.js';
import { Refused, SignalClient, infosAbout, isCase, updateAbout } from '../lib/signal.js';

const { JOINED, DISCONNECTED } = ParticipantInfo_State;
const { MICROPHONE: MIC, CAMERA } = TrackSource;
const { AUDIO, VIDEO } = TrackType;

let server; // --dev
let unmuteServer; // room.enable_remote_unmute: true
let rs;
const open = useServers(
  () =>
    Promise.all([
      startDevUsher(),
      startUsher(
        [
          '--config-body',
          'room: {enable_remote_unmute: true}\nkeys: {devkey: secret}\n',
          '--bind',
          '127.0.0.1',
          '--port',
          '0',
        ],
        { label: 'usher remote-unmute' },
      ),
    ]),
  (s, u) => {
    server = s;
    unmuteServer = u;
    rs = new RoomServiceClient(server.url, DEV_KEY, DEV_SECRET);
  },
); // clients of the running test, closed after it

// --- helpers ------------------------------------------------------------------------------

async function join(url, room, identity, opts = {}) {
  const token = opts.token ?? (await joinToken(room, identity, opts));
  const c = await SignalClient.join(url, token, { label: identity });
  open.push(c);
  return c;
}

async function refused(url, token) {
  const err = await rejection(SignalClient.connect(url, token));
  assert.ok(err instanceof Refused, `expected a refused upgrade, got ${err}`);
  return err;
}

const verify = (token) => verifier.verify(token);

const refreshTokens = (c, since = 0) => c.all(isCase('refreshToken'), since).map((m) => m.message.value);

/** Waits for a refresh token whose verified claims satisfy `cond`. */
async function waitToken(c, since, cond, what) {
  const deadline = Date.now() + 5000;
  for (;;) {
    for (const t of refreshTokens(c, since)) {
      const claims = await verify(t);
      if (cond(claims)) return claims;
    }
    if (Date.now() > deadline) assert.fail(`${c.label}: no ${what}; ${c.summary()}`);
    await sleep(50);
  }
}

/** Every refresh token a client got is valid and about itself. */
async function ownTokensOnly(c) {
  const tokens = refreshTokens(c);
  for (const t of tokens) {
    const claims = await verify(t);
    assert.equal(claims.sub, c.label, `${c.label} got a token for ${claims.sub}`);
  }
  return tokens.length;
}

/**
 * Per client and per participant SID: versions in updates strictly increase, and none is
 * older than the client's JoinResponse snapshot (which the next batched update may repeat
 * with the same version, as LiveKit does).
 */
const assertVersionsIncrease = (...clients) => assertVersionsIncreaseIn(clients);

const sorted = (xs) => [...xs].sort();
const plain = (obj) => ({ ...obj });

// --- ListParticipants / GetParticipant ----------------------------------------------------

test('ListParticipants and GetParticipant show the connected participants', async () => {
  const room = unique('node-sess-list');
  const alice = await join(server.url, room, 'alice', { metadata: 'm-alice', attributes: { team: 'blue' } });
  const bob = await join(server.url, room, 'bob', { grant: { canPublish: false } });
  const ja = alice.joinResponse;
  const jb = bob.joinResponse;
  assert.match(ja.participant.sid, /^PA_/);
  assert.notEqual(ja.participant.sid, jb.participant.sid);
  assert.deepEqual(ja.otherParticipants, []);
  assert.deepEqual(jb.otherParticipants.map((p) => [p.identity, p.sid]), [['alice', ja.participant.sid]]);
  assert.equal(ja.room.name, room);
  assert.match(ja.room.sid, /^RM_/);
  assert.equal(jb.room.sid, ja.room.sid);
  assert.notEqual(ja.serverInfo.version, '');
  assert.deepEqual([ja.pingInterval, ja.pingTimeout], [5, 15]);

  // alice hears of bob (a batched presence update)
  const m = await alice.waitFor(updateAbout('bob', (p) => p.state === JOINED), { what: 'bob JOINED' });
  assert.equal(infosAbout(m, 'bob')[0].sid, jb.participant.sid);

  const listed = await rs.listParticipants(room);
  const byId = Object.fromEntries(listed.map((p) => [p.identity, p]));
  assert.deepEqual(sorted(Object.keys(byId)), ['alice', 'bob']);
  const { alice: a, bob: b } = byId;
  assert.deepEqual([a.sid, b.sid], [ja.participant.sid, jb.participant.sid]);
  assert.equal(a.state, JOINED);
  assert.equal(b.state, JOINED);
  assert.deepEqual([a.name, a.metadata, plain(a.attributes)], ['alice name', 'm-alice', { team: 'blue' }]);
  assert.ok(a.permission.canPublish && a.permission.canSubscribe && a.permission.canPublishData);
  assert.ok(!b.permission.canPublish && b.permission.canSubscribe);
  assert.ok(a.version >= 1 && b.version >= 1);
  assert.ok(Number(a.joinedAt) > 0);
  assert.equal(Math.floor(Number(a.joinedAtMs) / 1000), Number(a.joinedAt));
  assert.deepEqual([a.tracks, b.tracks], [[], []]);

  const got = await rs.getParticipant(room, 'alice');
  assert.deepEqual([got.sid, got.identity, got.state], [a.sid, 'alice', JOINED]);
  assert.deepEqual([got.name, got.metadata, plain(got.attributes)], ['alice name', 'm-alice', { team: 'blue' }]);
  assert.ok(got.permission.equals(a.permission));

  const [r] = await rs.listRooms([room]);
  assert.equal(r.numParticipants, 2);

  // alice leaves: bob sees her DISCONNECTED (client initiated); the API forgets her
  await alice.leave();
  await alice.waitClosed();
  const left = await bob.waitFor(updateAbout('alice', (p) => p.state === DISCONNECTED), { what: 'alice left' });
  const [gone] = infosAbout(left, 'alice');
  assert.equal(gone.sid, a.sid);
  assert.equal(gone.disconnectReason, DisconnectReason.CLIENT_INITIATED);
  assert.deepEqual((await rs.listParticipants(room)).map((p) => p.identity), ['bob']);
  assertTwirp(await rejection(rs.getParticipant(room, 'alice')), 'not_found', 404, NOT_FOUND_PARTICIPANT);

  assertVersionsIncrease(alice, bob);
  await ownTokensOnly(alice);
  await ownTokensOnly(bob);
  assert.deepEqual([...alice.errors, ...bob.errors], []);
});

// --- permissions: audience -> speaker -> audience -----------------------------------------

test('UpdateParticipant promotes an audience member to speaker and back', async () => {
  const room = unique('node-sess-promote');
  const obs = await join(server.url, room, 'observer');
  const spk = await join(server.url, room, 'speaker', { grant: { canPublish: false } });
  assert.equal(spk.joinResponse.participant.permission.canPublish, false);

  const addTrack = (cid) => ({ case: 'addTrack', value: new AddTrackRequest({ cid, name: cid, type: AUDIO, source: MIC }) });
  // as audience, publishing is refused
  let since = spk.mark();
  await spk.send(addTrack('early'));
  let m = await spk.waitFor(isCase('requestResponse'), { since, ...FAST, what: 'refusal' });
  assert.equal(m.message.value.reason, RequestResponse_Reason.NOT_ALLOWED);
  assert.deepEqual(spk.all(isCase('trackPublished')), []);

  // promote
  let marks = [obs.mark(), spk.mark()];
  let info = await rs.updateParticipant(room, 'speaker', {
    permission: { canPublish: true, canSubscribe: true, canPublishData: true },
  });
  assert.ok(info.permission.canPublish && info.permission.canSubscribe && info.permission.canPublishData);
  for (const [c, s] of [[obs, marks[0]], [spk, marks[1]]]) {
    await c.waitFor(updateAbout('speaker', (p) => p.permission?.canPublish), { since: s, ...FAST, what: 'promoted' });
  }
  const promoted = await waitToken(spk, marks[1], (cl) => cl.video?.canPublish === true, 'publish token');
  assert.equal(promoted.sub, 'speaker');

  since = obs.mark();
  const mic = await spk.addTrack('mic', AUDIO, MIC);
  const cam = await spk.addTrack('cam', VIDEO, CAMERA);
  assert.match(mic.sid, /^TR_/);
  assert.match(cam.sid, /^TR_/);
  assert.notEqual(mic.sid, cam.sid);
  assert.deepEqual([mic.type, mic.source, cam.type, cam.source], [AUDIO, MIC, VIDEO, CAMERA]);
  m = await obs.waitFor(updateAbout('speaker', (p) => p.tracks.length === 2), { since, ...FAST, what: '2 tracks' });
  assert.deepEqual(sorted(sids(infosAbout(m, 'speaker')[0])), sorted([mic.sid, cam.sid]));
  assert.deepEqual(sorted(sids(await rs.getParticipant(room, 'speaker'))), sorted([mic.sid, cam.sid]));

  // narrow to the camera: only the microphone goes
  marks = [obs.mark(), spk.mark()];
  info = await rs.updateParticipant(room, 'speaker', {
    permission: { canPublish: true, canSubscribe: true, canPublishSources: [CAMERA] },
  });
  assert.deepEqual(sids(info), [cam.sid]);
  assert.deepEqual(info.permission.canPublishSources, [CAMERA]);
  m = await spk.waitFor(isCase('trackUnpublished'), { since: marks[1], ...FAST, what: 'mic unpublished' });
  assert.equal(m.message.value.trackSid, mic.sid);
  for (const [c, s] of [[obs, marks[0]], [spk, marks[1]]]) {
    m = await c.waitFor(updateAbout('speaker', (p) => sids(p).join() === cam.sid), { since: s, ...FAST, what: 'camera only' });
    assert.deepEqual(infosAbout(m, 'speaker')[0].permission.canPublishSources, [CAMERA]);
  }

  // back to the audience: the permission is replaced as a whole, the camera goes too
  marks = [obs.mark(), spk.mark()];
  info = await rs.updateParticipant(room, 'speaker', { permission: { canSubscribe: true } });
  assert.deepEqual(info.tracks, []);
  const p = info.permission;
  assert.deepEqual([p.canPublish, p.canPublishData, p.canSubscribe, p.canPublishSources], [false, false, true, []]);
  m = await spk.waitFor(isCase('trackUnpublished'), { since: marks[1], ...FAST, what: 'cam unpublished' });
  assert.equal(m.message.value.trackSid, cam.sid);
  for (const [c, s] of [[obs, marks[0]], [spk, marks[1]]]) {
    await c.waitFor(updateAbout('speaker', (x) => x.tracks.length === 0 && !x.permission?.canPublish), {
      since: s,
      ...FAST,
      what: 'demoted, no tracks',
    });
  }
  await waitToken(spk, marks[1], (cl) => cl.video?.canPublish === false, 'demoted token');

  // publishing again is refused
  since = spk.mark();
  await spk.send(addTrack('again'));
  m = await spk.waitFor(isCase('requestResponse'), { since, ...FAST, what: 'refusal again' });
  assert.equal(m.message.value.reason, RequestResponse_Reason.NOT_ALLOWED);
  await sleep(QUIET_MS);
  assert.deepEqual(spk.all(isCase('trackPublished')).map((x) => x.message.value.cid), ['mic', 'cam']);
  assert.deepEqual(spk.all(isCase('trackUnpublished')).map((x) => x.message.value.trackSid), [mic.sid, cam.sid]);
  // the observer is told only through updates
  for (const k of ['trackPublished', 'trackUnpublished', 'mute', 'leave', 'requestResponse']) {
    assert.deepEqual(obs.all(isCase(k)), [], `observer got ${k}`);
  }
  await ownTokensOnly(obs);
  await ownTokensOnly(spk);
  assertVersionsIncrease(obs, spk);
});

// --- name / metadata / attributes ---------------------------------------------------------

test('UpdateParticipant name, metadata and attributes reach everyone, with a refresh token', async () => {
  const room = unique('node-sess-meta');
  const obs = await join(server.url, room, 'observer');
  const tgt = await join(server.url, room, 'target', { metadata: 'm0', attributes: { keep: '1', gone: 'x' } });
  const v0 = tgt.joinResponse.participant.version;

  let marks = [obs.mark(), tgt.mark()];
  const info = await rs.updateParticipant(room, 'target', {
    name: 'New Name',
    metadata: '{"hand":true}',
    attributes: { role: 'speaker', gone: '' },
  });
  assert.deepEqual([info.name, info.metadata], ['New Name', '{"hand":true}']);
  assert.deepEqual(plain(info.attributes), { keep: '1', role: 'speaker' });
  assert.ok(info.version > v0);

  const changed = (p) =>
    p.name === 'New Name' && p.metadata === '{"hand":true}' && JSON.stringify(sortedEntries(p.attributes)) === '[["keep","1"],["role","speaker"]]';
  for (const [c, s] of [[obs, marks[0]], [tgt, marks[1]]]) {
    await c.waitFor(updateAbout('target', changed), { since: s, ...FAST, what: 'new name/metadata/attributes' });
  }
  const claims = await waitToken(tgt, marks[1], (cl) => cl.metadata === '{"hand":true}', 'token');
  assert.deepEqual([claims.sub, claims.name], ['target', 'New Name']);
  assert.deepEqual(claims.attributes, { keep: '1', role: 'speaker' });
  assert.equal(claims.video.room, room);
  assert.equal(claims.video.roomJoin, true);

  // metadata alone: the name stays
  marks = [obs.mark(), tgt.mark()];
  const info2 = await rs.updateParticipant(room, 'target', { metadata: 'second' });
  assert.deepEqual([info2.name, info2.metadata], ['New Name', 'second']);
  assert.ok(info2.version > info.version);
  for (const [c, s] of [[obs, marks[0]], [tgt, marks[1]]]) {
    await c.waitFor(updateAbout('target', (p) => p.metadata === 'second' && p.name === 'New Name'), {
      since: s,
      ...FAST,
      what: 'second metadata',
    });
  }
  await waitToken(tgt, marks[1], (cl) => cl.metadata === 'second', 'second token');

  // nothing supplied: nothing changes and nothing is broadcast
  const info3 = await rs.updateParticipant(room, 'target', {});
  assert.deepEqual([info3.name, info3.metadata, info3.version], ['New Name', 'second', info2.version]);
  await sleep(QUIET_MS);
  for (const c of [obs, tgt]) {
    const later = c.infos('target').filter((p) => p.version > info2.version).map((p) => p.version);
    assert.deepEqual(later, [], `${c.label} saw updates after a no-op UpdateParticipant`);
  }

  const got = await rs.getParticipant(room, 'target');
  assert.deepEqual([got.name, got.metadata, plain(got.attributes)], ['New Name', 'second', { keep: '1', role: 'speaker' }]);
  await ownTokensOnly(obs);
  assert.ok((await ownTokensOnly(tgt)) >= 3, 'a token at start and one per change');
  assertVersionsIncrease(obs, tgt);
});

function sortedEntries(obj) {
  return Object.entries(obj ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

// --- MutePublishedTrack, with and without room.enable_remote_unmute ----------------------

for (const unmuteEnabled of [false, true]) {
  test(`MutePublishedTrack mutes a connected speaker; unmute ${unmuteEnabled ? 'allowed' : 'refused'} (enable_remote_unmute: ${unmuteEnabled})`, async () => {
    const url = unmuteEnabled ? unmuteServer.url : server.url;
    const admin = unmuteEnabled ? new RoomServiceClient(url, DEV_KEY, DEV_SECRET) : rs;
    const room = unique('node-sess-mute');
    const obs = await join(url, room, 'observer');
    const spk = await join(url, room, 'speaker');
    let since = obs.mark();
    const mic = await spk.addTrack('mic', AUDIO, MIC);
    const cam = await spk.addTrack('cam', VIDEO, CAMERA);
    await obs.waitFor(updateAbout('speaker', (p) => p.tracks.length === 2), { since, ...FAST, what: '2 tracks' });

    const mutedState = (p) => Object.fromEntries(p.tracks.map((t) => [t.sid, t.muted]));
    const micMuted = (want) =>
      updateAbout('speaker', (p) => JSON.stringify(mutedState(p)) === JSON.stringify({ [mic.sid]: want, [cam.sid]: false }));

    let marks = [obs.mark(), spk.mark()];
    let track = await admin.mutePublishedTrack(room, 'speaker', mic.sid, true);
    assert.deepEqual([track.sid, track.muted], [mic.sid, true]);
    // the owner is told first, then everyone sees the new state
    const { index: iMute, message: mm } = await spk.waitIndex(isCase('mute'), { since: marks[1], ...FAST, what: 'mute' });
    assert.deepEqual([mm.message.value.sid, mm.message.value.muted], [mic.sid, true]);
    for (const [c, s] of [[obs, marks[0]], [spk, marks[1]]]) {
      const { index } = await c.waitIndex(micMuted(true), { since: s, ...FAST, what: 'mic muted' });
      if (c === spk) assert.ok(index > iMute, 'the muted update must follow the mute request');
    }

    marks = [obs.mark(), spk.mark()];
    let want;
    if (unmuteEnabled) {
      track = await admin.mutePublishedTrack(room, 'speaker', mic.sid, false);
      assert.deepEqual([track.sid, track.muted], [mic.sid, false]);
      const um = await spk.waitFor(isCase('mute'), { since: marks[1], ...FAST, what: 'unmute' });
      assert.deepEqual([um.message.value.sid, um.message.value.muted], [mic.sid, false]);
      for (const [c, s] of [[obs, marks[0]], [spk, marks[1]]]) {
        await c.waitFor(micMuted(false), { since: s, ...FAST, what: 'mic unmuted' });
      }
      want = { [mic.sid]: false, [cam.sid]: false };
    } else {
      const err = await rejection(admin.mutePublishedTrack(room, 'speaker', mic.sid, false));
      assertTwirp(err, 'failed_precondition', 412, 'twirp error unknown: remote unmute not enabled');
      await sleep(QUIET_MS);
      assert.deepEqual(spk.all(isCase('mute'), marks[1]), [], 'a refused unmute sends nothing');
      for (const [c, s] of [[obs, marks[0]], [spk, marks[1]]]) {
        assert.deepEqual(c.all(micMuted(false), s), [], `${c.label} saw the mic unmuted`);
      }
      want = { [mic.sid]: true, [cam.sid]: false };
    }
    assert.deepEqual(mutedState(await admin.getParticipant(room, 'speaker')), want);
    for (const c of [obs, spk]) assert.deepEqual(mutedState(c.infos('speaker').at(-1)), want, c.label);

    // an unknown track is not an error: no track in the answer
    assert.equal(await admin.mutePublishedTrack(room, 'speaker', 'TR_nope', true), undefined);

    assert.deepEqual(obs.all(isCase('mute')), [], 'only the owner gets mute requests');
    await ownTokensOnly(obs);
    await ownTokensOnly(spk);
    assertVersionsIncrease(obs, spk);
  });
}

// --- RemoveParticipant and rejoining ------------------------------------------------------

test('RemoveParticipant disconnects the target; rejoining works unless the token was revoked', async () => {
  const room = unique('node-sess-remove');
  const host = await join(server.url, room, 'host');
  const oldToken = await joinToken(room, 'troll');
  const { nbf } = await verify(oldToken);
  const t1 = await join(server.url, room, 'troll', { token: oldToken });
  const sid1 = t1.joinResponse.participant.sid;

  await rs.removeParticipant(room, 'troll');
  let m = await t1.waitFor(isCase('leave'), { ...FAST, what: 'removal leave' });
  assert.equal(m.message.value.reason, DisconnectReason.PARTICIPANT_REMOVED);
  assert.equal(m.message.value.action, LeaveRequest_Action.DISCONNECT);
  await t1.waitClosed();
  assert.equal(t1.received.at(-1), m, 'nothing follows the leave');
  m = await host.waitFor(updateAbout('troll', (p) => p.sid === sid1 && p.state === DISCONNECTED), { what: 'troll removed' });
  assert.equal(infosAbout(m, 'troll')[0].disconnectReason, DisconnectReason.PARTICIPANT_REMOVED);
  assertTwirp(await rejection(rs.removeParticipant(room, 'troll')), 'not_found', 404, NOT_FOUND_PARTICIPANT);

  // without revokeTokenTs the same token joins again, as a new session
  const t2 = await join(server.url, room, 'troll', { token: oldToken });
  const sid2 = t2.joinResponse.participant.sid;
  assert.match(sid2, /^PA_/);
  assert.notEqual(sid2, sid1);
  assert.deepEqual(t2.joinResponse.otherParticipants.map((p) => p.identity), ['host']);
  const listed = await rs.listParticipants(room);
  assert.deepEqual(
    sorted(listed.map((p) => `${p.identity}/${p.sid}`)),
    sorted([`host/${host.joinResponse.participant.sid}`, `troll/${sid2}`]),
  );

  // with revokeTokenTs after the token's nbf, that token is refused from now on
  const cutoff = nbf + 1;
  await rs.removeParticipant(room, 'troll', { revokeTokenTs: BigInt(cutoff) });
  m = await t2.waitFor(isCase('leave'), { ...FAST, what: 'second removal' });
  assert.equal(m.message.value.reason, DisconnectReason.PARTICIPANT_REMOVED);
  await t2.waitClosed();
  const r = await refused(server.url, oldToken);
  assert.deepEqual([r.status, r.body], [401, 'access token was revoked']);
  // a token valid only from the cutoff on is accepted
  while (Date.now() / 1000 < cutoff) await sleep(50);
  const fresh = await joinToken(room, 'troll');
  assert.ok((await verify(fresh)).nbf >= cutoff);
  const t3 = await join(server.url, room, 'troll', { token: fresh });
  assert.equal(t3.joinResponse.participant.identity, 'troll');
  // the revocation is about "troll" only
  const other = await join(server.url, room, 'bystander');
  assert.equal(other.joinResponse.participant.identity, 'bystander');

  assert.deepEqual(host.all(isCase('leave')), [], 'the host got a leave');
  // The host hears of the third session. The second one's DISCONNECTED may be folded into
  // it: presence updates are batched per identity, and protocol >= 12 clients reconcile
  // sessions by identity (signal.md §5.1, "Identity switch").
  const sid3 = t3.joinResponse.participant.sid;
  await host.waitFor(updateAbout('troll', (p) => p.sid === sid3 && p.state === JOINED), { what: 'third session' });
  for (const p of host.infos('troll')) {
    if (p.sid === sid2 && p.state === DISCONNECTED) assert.equal(p.disconnectReason, DisconnectReason.PARTICIPANT_REMOVED);
  }
  assertVersionsIncrease(host, t1, t2, t3);
});

// --- room metadata and deletion -----------------------------------------------------------

test('UpdateRoomMetadata and DeleteRoom reach every connected session', async () => {
  const room = unique('node-sess-room');
  const a = await join(server.url, room, 'a');
  const b = await join(server.url, room, 'b');
  const rsid = a.joinResponse.room.sid;

  const updated = await rs.updateRoomMetadata(room, 'm2 ✓');
  assert.deepEqual([updated.metadata, updated.sid], ['m2 ✓', rsid]);
  for (const c of [a, b]) {
    const m = await c.waitFor(isCase('roomUpdate', (u) => u.room?.metadata === 'm2 ✓'), { ...FAST, what: 'room metadata' });
    assert.deepEqual([m.message.value.room.name, m.message.value.room.sid], [room, rsid]);
  }

  await rs.deleteRoom(room);
  for (const c of [a, b]) {
    const m = await c.waitFor(isCase('leave'), { ...FAST, what: 'room deleted' });
    assert.equal(m.message.value.reason, DisconnectReason.ROOM_DELETED);
    assert.equal(m.message.value.action, LeaveRequest_Action.DISCONNECT);
    await c.waitClosed();
  }
  assert.deepEqual(await rs.listRooms([room]), []);
  assert.deepEqual(await rs.listParticipants(room), []);
  assertVersionsIncrease(a, b);
});
