// Authentication and grant checks through the official Node SDK.
// Reference: shared/reference/roomservice.md §1.8 (plain-text 401s), §2.1-2.4.
//
// Missing/insufficient grants -> Twirp `unauthenticated` 401 `permissions denied`.
// Bad signature / unknown key / expired -> plain-text 401 before Twirp runs; the
// Node SDK reports that as a TwirpError with status 401, no code, and the body
// text as message.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AccessToken, RoomServiceClient, TwirpError } from 'livekit-server-sdk';
import {
  DEV_KEY,
  DEV_SECRET,
  PERMISSIONS_DENIED,
  makeJwt,
  rawCall,
  rejection,
  startDevUsher,
  startUsher,
  unique,
} from '../lib/usher.js';

const CUSTOM_KEY = 'k1';
const CUSTOM_SECRET = 'usher-sdk-suite-secret-0123456789abcdef'; // 39 chars

let server;
let rs;

before(async () => {
  server = await startDevUsher();
  rs = new RoomServiceClient(server.url, DEV_KEY, DEV_SECRET);
});

after(async () => {
  await server?.stop();
});

async function mint(grant, { key = DEV_KEY, secret = DEV_SECRET, ttl, identity } = {}) {
  const at = new AccessToken(key, secret, { ttl, identity });
  at.addGrant(grant);
  return at.toJwt();
}

const withToken = (token) => new RoomServiceClient(server.url, undefined, undefined, { token });

function assertDenied(err, label = '') {
  assert.ok(err instanceof TwirpError, `${label}: expected TwirpError, got ${err}`);
  assert.deepEqual(
    { label, code: err.code, status: err.status, message: err.message },
    { label, code: 'unauthenticated', status: 401, message: PERMISSIONS_DENIED },
  );
}

function assertPlain401(err, label = '') {
  assert.ok(err instanceof TwirpError, `${label}: expected TwirpError, got ${err}`);
  assert.equal(err.status, 401, label);
  // not a Twirp JSON error body: the SDK finds no code and keeps the raw text
  assert.equal(err.code, undefined, `${label}: code=${err.code} message=${err.message}`);
  assert.ok(!err.message.trimStart().startsWith('{'), `${label}: ${err.message}`);
}

describe('insufficient grants', () => {
  test('a join-only token is denied on every RoomService call', async () => {
    const room = await rs.createRoom({ name: unique('node-auth-join') });
    const client = withToken(await mint({ roomJoin: true, room: room.name }, { identity: 'alice' }));

    const calls = {
      CreateRoom: () => client.createRoom({ name: unique('node-never') }),
      ListRooms: () => client.listRooms(),
      DeleteRoom: () => client.deleteRoom(room.name),
      UpdateRoomMetadata: () => client.updateRoomMetadata(room.name, 'hacked'),
      ListParticipants: () => client.listParticipants(room.name),
      GetParticipant: () => client.getParticipant(room.name, 'alice'),
      RemoveParticipant: () => client.removeParticipant(room.name, 'alice'),
    };
    for (const [method, call] of Object.entries(calls)) {
      assertDenied(await rejection(call()), method);
    }
    const [listed] = await rs.listRooms([room.name]);
    assert.equal(listed.sid, room.sid);
    assert.equal(listed.metadata, '');
  });

  test('grants are not cumulative across kinds', async () => {
    const room = await rs.createRoom({ name: unique('node-auth-kinds') });
    const createOnly = withToken(await mint({ roomCreate: true }));
    const listOnly = withToken(await mint({ roomList: true }));
    const admin = withToken(await mint({ roomAdmin: true, room: room.name }));

    assertDenied(await rejection(createOnly.listRooms()), 'roomCreate -> ListRooms');
    assertDenied(await rejection(listOnly.createRoom({ name: unique('node-never') })), 'roomList -> CreateRoom');
    assertDenied(await rejection(admin.deleteRoom(room.name)), 'roomAdmin -> DeleteRoom');
    assertDenied(await rejection(admin.createRoom({ name: unique('node-never') })), 'roomAdmin -> CreateRoom');

    const listed = await listOnly.listRooms();
    assert.ok(listed.some((r) => r.name === room.name && r.sid === room.sid));
  });

  test('roomAdmin for room A cannot touch room B but can update A', async () => {
    const a = await rs.createRoom({ name: unique('node-auth-a'), metadata: 'a0' });
    const b = await rs.createRoom({ name: unique('node-auth-b'), metadata: 'b0' });
    const adminA = withToken(await mint({ roomAdmin: true, room: a.name }));

    assertDenied(await rejection(adminA.updateRoomMetadata(b.name, 'b1')), 'UpdateRoomMetadata B');
    assertDenied(await rejection(adminA.listParticipants(b.name)), 'ListParticipants B');
    assertDenied(await rejection(adminA.getParticipant(b.name, 'x')), 'GetParticipant B');

    const updated = await adminA.updateRoomMetadata(a.name, 'a1');
    assert.equal(updated.sid, a.sid);
    assert.equal(updated.metadata, 'a1');
    const [listedB] = await rs.listRooms([b.name]);
    assert.equal(listedB.metadata, 'b0');
  });

  test('no Authorization header at all is Twirp unauthenticated', async () => {
    const res = await rawCall(server.url, 'ListRooms', {});
    assert.equal(res.status, 401);
    assert.equal(res.contentType, 'application/json');
    assert.deepEqual(
      { code: res.json?.code, msg: res.json?.msg },
      { code: 'unauthenticated', msg: PERMISSIONS_DENIED },
    );
  });
});

describe('bad tokens get a plain-text 401', () => {
  test('wrong secret', async () => {
    const client = new RoomServiceClient(server.url, DEV_KEY, 'not-the-right-secret');
    assertPlain401(await rejection(client.listRooms()), 'wrong secret');
  });

  test('unknown API key', async () => {
    const client = new RoomServiceClient(server.url, 'nokey', DEV_SECRET);
    assertPlain401(await rejection(client.listRooms()), 'unknown key');
  });

  test('expired token (5 minutes ago)', async () => {
    const client = withToken(await mint({ roomList: true }, { ttl: '-5m' }));
    assertPlain401(await rejection(client.listRooms()), 'expired');
  });

  test('token without exp', async () => {
    const now = Math.floor(Date.now() / 1000);
    const client = withToken(makeJwt({ iss: DEV_KEY, nbf: now, video: { roomList: true } }, DEV_SECRET));
    assertPlain401(await rejection(client.listRooms()), 'no exp');
  });

  test('a token expired 20 s ago is still within the 60 s leeway', async () => {
    const now = Math.floor(Date.now() / 1000);
    const client = withToken(makeJwt({ iss: DEV_KEY, nbf: now - 120, exp: now - 20, video: { roomList: true } }, DEV_SECRET));
    assert.ok(Array.isArray(await client.listRooms()));
  });

  test('a hand-made token with valid claims is accepted', async () => {
    const now = Math.floor(Date.now() / 1000);
    const name = unique('node-handmade');
    const client = withToken(makeJwt({ iss: DEV_KEY, nbf: now, exp: now + 600, video: { roomCreate: true } }, DEV_SECRET));
    const room = await client.createRoom({ name });
    assert.equal(room.name, name);
    assert.match(room.sid, /^RM_/);
  });

  test('body texts match LiveKit', async () => {
    const cases = [
      ['unknown key', await mint({ roomList: true }, { key: 'nokey' }), 'invalid API key'],
      ['wrong secret', await mint({ roomList: true }, { secret: 'wrong' }), 'invalid authorization token'],
      ['expired', await mint({ roomList: true }, { ttl: '-5m' }), 'invalid authorization token'],
      ['garbage', 'not-a-jwt', 'invalid authorization token'],
    ];
    for (const [label, token, prefix] of cases) {
      const res = await rawCall(server.url, 'ListRooms', {}, { token });
      assert.equal(res.status, 401, label);
      assert.ok(!res.contentType.includes('json'), `${label}: content-type ${res.contentType}`);
      assert.ok(res.text.trim().startsWith(prefix), `${label}: body ${JSON.stringify(res.text)}`);
    }
    const res = await rawCall(server.url, 'ListRooms', {}, { authorization: 'Basic abc' });
    assert.equal(res.status, 401);
    assert.ok(res.text.startsWith('invalid authorization header. Must start with Bearer'), res.text);
  });
});

describe('custom keys from --config-body', () => {
  let keyed;

  before(async () => {
    const yaml = `keys:\n  ${CUSTOM_KEY}: ${CUSTOM_SECRET}\nroom:\n  auto_create: true\n`;
    keyed = await startUsher(['--config-body', yaml, '--bind', '127.0.0.1', '--port', '0'], {
      label: 'usher --config-body',
    });
  });

  after(async () => {
    await keyed?.stop();
  });

  test('the configured key works', async () => {
    const client = new RoomServiceClient(keyed.url, CUSTOM_KEY, CUSTOM_SECRET);
    const name = unique('node-keyed');
    const room = await client.createRoom({ name, metadata: 'k1' });
    assert.equal(room.name, name);
    assert.equal(room.metadata, 'k1');
    assert.match(room.sid, /^RM_/);
    assert.equal(room.emptyTimeout, 300);
    const listed = await client.listRooms([name]);
    assert.deepEqual(listed.map((r) => [r.name, r.sid]), [[name, room.sid]]);
  });

  test('devkey is rejected', async () => {
    const client = new RoomServiceClient(keyed.url, DEV_KEY, DEV_SECRET);
    assertPlain401(await rejection(client.listRooms()), 'devkey on keyed server');
  });

  test('the configured key with a wrong secret is rejected', async () => {
    const client = new RoomServiceClient(keyed.url, CUSTOM_KEY, `${CUSTOM_SECRET}x`);
    assertPlain401(await rejection(client.listRooms()), 'k1 wrong secret');
  });
});
