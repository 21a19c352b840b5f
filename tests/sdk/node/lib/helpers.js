// Helpers shared by the connected-session suites (sessions, resume, moves, forwards, webhooks):
// per-file server hooks, join tokens, RoomService queries and assertions. Import from here, never
// from another *.test.js file (that would run its tests).
import assert from 'node:assert/strict';
import { after, afterEach, before } from 'node:test';
import { AccessToken, ParticipantInfo_State, TokenVerifier, TwirpError } from 'livekit-server-sdk';
import { DEV_KEY, DEV_SECRET, NOT_FOUND_PARTICIPANT, rejection } from './usher.js';
import { updateAbout } from './signal.js';

const { DISCONNECTED } = ParticipantInfo_State;

export const QUIET_MS = 500; // how long "nothing more arrives" is watched for
export const FAST = { timeoutMs: 5000 }; // for immediate (non-batched) messages
export const SAME_ROOM = 'destination room cannot be the same as source room ';

/**
 * Registers the file's hooks: before all, `start()` starts the server(s) (one, or an array) and
 * `onStarted(...servers)` receives them; after all, they are stopped; after each test, the
 * clients pushed to the returned array are closed and the array emptied.
 */
export function useServers(start, onStarted) {
  const open = [];
  let servers = [];
  before(async () => {
    servers = [].concat(await start());
    onStarted(...servers);
  });
  after(async () => {
    await Promise.all(servers.map((s) => s?.stop()));
  });
  afterEach(async () => {
    await Promise.all(open.map((c) => c.close()));
    open.length = 0;
  });
  return open;
}

/** A join token for `identity` in `room` (name `<identity> name` unless given), with extra `grant`s. */
export async function joinToken(room, identity, { name, metadata, attributes, grant = {} } = {}) {
  const at = new AccessToken(DEV_KEY, DEV_SECRET, { identity, name: name ?? `${identity} name`, metadata, attributes });
  at.addGrant({ roomJoin: true, room, ...grant });
  return at.toJwt();
}

/** A backend token as the SDK mints for MoveParticipant / ForwardParticipant, with chosen grants. */
export async function destinationToken(room, destinationRoom, { roomAdmin = true } = {}) {
  const at = new AccessToken(DEV_KEY, DEV_SECRET);
  at.addGrant({ roomAdmin, room, destinationRoom });
  return at.toJwt();
}

export const verifier = new TokenVerifier(DEV_KEY, DEV_SECRET);

export const listedIn = async (rs, room) => (await rs.listParticipants(room)).map((p) => p.identity).sort();
export const roomNamesIn = async (rs, ...names) => (await rs.listRooms(names)).map((r) => r.name).sort();
export const sids = (info) => info.tracks.map((t) => t.sid);
export const departed = (identity) => updateAbout(identity, (p) => p.state === DISCONNECTED);

/** `err` is a TwirpError with `code` and `status` (and `message`, unless undefined); `label` names the check. */
export function assertTwirp(err, code, status, message, label = '') {
  assert.ok(err instanceof TwirpError, `${label}: expected TwirpError, got ${err?.constructor?.name}: ${err}`);
  const got = { label, code: err.code, status: err.status };
  const want = { label, code, status };
  if (message !== undefined) {
    got.message = err.message;
    want.message = message;
  }
  assert.deepEqual(got, want);
}

/** `err` is a TwirpError with exactly `code`, `status` and `message`. */
export function assertTwirpExact(err, code, status, message) {
  assert.ok(err instanceof TwirpError, `expected TwirpError, got ${err?.constructor?.name}: ${err}`);
  assert.deepEqual({ code: err.code, status: err.status, message: err.message }, { code, status, message });
}

/** GetParticipant for `identity` in `room` answers not_found. */
export async function assertNotIn(rs, room, identity) {
  assertTwirp(
    await rejection(rs.getParticipant(room, identity)),
    'not_found',
    404,
    NOT_FOUND_PARTICIPANT,
    `GetParticipant ${identity} in ${room}`,
  );
}

const versionsOf = (c, who, versions) => `${c.label}: versions of ${who} must strictly increase: ${versions}`;

/**
 * Per client and participant sid, the versions in updates strictly increase; with `snapshot`
 * (the default), none is below the client's JoinResponse snapshot (which the next batched update
 * may repeat with the same version, as LiveKit does). `increasing(c, who, versions)` words the
 * failure of the first check.
 */
export function assertVersionsIncreaseIn(clients, { snapshot = true, increasing = versionsOf } = {}) {
  for (const c of clients) {
    const atJoin = new Map();
    const seen = new Map();
    for (const m of c.received) {
      if (snapshot && m.message.case === 'join') {
        const j = m.message.value;
        for (const p of [j.participant, ...j.otherParticipants]) atJoin.set(`${p.identity}/${p.sid}`, p.version);
      } else if (m.message.case === 'update') {
        for (const p of m.message.value.participants) {
          const k = `${p.identity}/${p.sid}`;
          if (!seen.has(k)) seen.set(k, []);
          seen.get(k).push(p.version);
        }
      }
    }
    for (const [who, versions] of seen) {
      for (let i = 1; i < versions.length; i++) {
        assert.ok(versions[i - 1] < versions[i], increasing(c, who, versions));
      }
      if (atJoin.has(who)) {
        assert.ok(atJoin.get(who) <= versions[0], `${c.label}: ${who} v${atJoin.get(who)} at join, then ${versions}`);
      }
    }
  }
}
