// The JSON wire format that the Node SDK (and any Twirp JSON client) parses.
// Reference: shared/reference/roomservice.md §1.3-1.5, §4.2.
//
// LiveKit answers JSON requests with protojson UseProtoNames + EmitUnpopulated:
// snake_case names, all defaults present, 64-bit integers as strings.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AccessToken } from 'livekit-server-sdk';
import { DEV_KEY, DEV_SECRET, NOT_FOUND_ROOM, PERMISSIONS_DENIED, rawCall, startDevUsher, unique } from '../lib/usher.js';

const ROOM_FIELDS = [
  'sid',
  'name',
  'empty_timeout',
  'departure_timeout',
  'max_participants',
  'creation_time',
  'creation_time_ms',
  'turn_password',
  'enabled_codecs',
  'metadata',
  'num_participants',
  'num_publishers',
  'active_recording',
];

let server;
let tokens;

before(async () => {
  server = await startDevUsher();
  const mint = async (grant) => {
    const at = new AccessToken(DEV_KEY, DEV_SECRET);
    at.addGrant(grant);
    return at.toJwt();
  };
  tokens = {
    create: await mint({ roomCreate: true }),
    list: await mint({ roomList: true }),
    admin: async (room) => mint({ roomAdmin: true, room }),
  };
});

after(async () => {
  await server?.stop();
});

const mediaType = (ct) => ct.split(';')[0].trim().toLowerCase();

function assertRoomShape(room, label) {
  for (const f of ROOM_FIELDS) assert.ok(Object.hasOwn(room, f), `${label}: missing field ${f} in ${JSON.stringify(room)}`);
  const camel = Object.keys(room).filter((k) => /[A-Z]/.test(k));
  assert.deepEqual(camel, [], `${label}: camelCase keys present`);
  assert.equal(typeof room.sid, 'string');
  assert.match(room.sid, /^RM_/);
  assert.equal(typeof room.empty_timeout, 'number');
  assert.equal(typeof room.departure_timeout, 'number');
  assert.equal(typeof room.max_participants, 'number');
  assert.equal(typeof room.num_participants, 'number');
  assert.equal(typeof room.num_publishers, 'number');
  assert.equal(typeof room.active_recording, 'boolean');
  assert.equal(typeof room.turn_password, 'string');
  assert.ok(Array.isArray(room.enabled_codecs));
  // int64 -> JSON string
  assert.equal(typeof room.creation_time, 'string');
  assert.match(room.creation_time, /^[1-9][0-9]*$/);
  assert.equal(typeof room.creation_time_ms, 'string');
  assert.match(room.creation_time_ms, /^[1-9][0-9]*$/);
}

describe('successful responses', () => {
  test('CreateRoom: snake_case names, defaults emitted, int64 as strings', async () => {
    const name = unique('wire-create');
    const res = await rawCall(server.url, 'CreateRoom', { name }, { token: tokens.create });
    assert.equal(res.status, 200, res.text);
    assert.equal(mediaType(res.contentType), 'application/json');
    const room = res.json;
    assertRoomShape(room, 'CreateRoom');
    assert.equal(room.name, name);
    assert.equal(room.num_participants, 0);
    assert.equal(room.num_publishers, 0);
    assert.equal(room.max_participants, 0);
    assert.equal(room.metadata, '');
    assert.equal(room.active_recording, false);
    assert.equal(room.empty_timeout, 300);
    assert.equal(room.departure_timeout, 20);
    const secs = Number(room.creation_time);
    assert.ok(Math.abs(secs - Date.now() / 1000) < 5, `creation_time ${room.creation_time}`);
    assert.ok(Math.abs(Number(room.creation_time_ms) - Date.now()) < 5000);
  });

  test('Room.version is emitted as null (EmitUnpopulated)', async () => {
    const res = await rawCall(server.url, 'CreateRoom', { name: unique('wire-version') }, { token: tokens.create });
    assert.equal(res.status, 200, res.text);
    assert.ok(Object.hasOwn(res.json, 'version'), `no version key in ${res.text}`);
    assert.equal(res.json.version, null);
  });

  test('request accepts both snake_case and lowerCamel field names', async () => {
    const snake = await rawCall(
      server.url,
      'CreateRoom',
      { name: unique('wire-snake'), empty_timeout: 42, departure_timeout: 7, max_participants: 5, metadata: 's' },
      { token: tokens.create },
    );
    assert.equal(snake.status, 200, snake.text);
    assert.deepEqual(
      [snake.json.empty_timeout, snake.json.departure_timeout, snake.json.max_participants, snake.json.metadata],
      [42, 7, 5, 's'],
    );
    const camel = await rawCall(
      server.url,
      'CreateRoom',
      { name: unique('wire-camel'), emptyTimeout: 43, departureTimeout: 8, maxParticipants: 6, metadata: 'c' },
      { token: tokens.create },
    );
    assert.equal(camel.status, 200, camel.text);
    assert.deepEqual(
      [camel.json.empty_timeout, camel.json.departure_timeout, camel.json.max_participants, camel.json.metadata],
      [43, 8, 6, 'c'],
    );
  });

  test('unknown request fields are ignored', async () => {
    const name = unique('wire-unknown');
    const res = await rawCall(
      server.url,
      'CreateRoom',
      { name, someFutureField: { nested: [1, 2] }, another_one: 'x' },
      { token: tokens.create },
    );
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.name, name);
  });

  test('ListRooms: {"rooms": [...]} with full room objects', async () => {
    const name = unique('wire-list');
    await rawCall(server.url, 'CreateRoom', { name, metadata: 'm' }, { token: tokens.create });
    const res = await rawCall(server.url, 'ListRooms', { names: [name, unique('wire-missing')] }, { token: tokens.list });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(Object.keys(res.json), ['rooms']);
    assert.equal(res.json.rooms.length, 1);
    assertRoomShape(res.json.rooms[0], 'ListRooms');
    assert.equal(res.json.rooms[0].name, name);
    assert.equal(res.json.rooms[0].metadata, 'm');

    const none = await rawCall(server.url, 'ListRooms', { names: [unique('wire-missing')] }, { token: tokens.list });
    assert.equal(none.status, 200, none.text);
    assert.deepEqual(none.json, { rooms: [] });
  });

  test('ListParticipants of an empty room is {"participants": []}', async () => {
    const name = unique('wire-parts');
    await rawCall(server.url, 'CreateRoom', { name }, { token: tokens.create });
    const res = await rawCall(server.url, 'ListParticipants', { room: name }, { token: await tokens.admin(name) });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { participants: [] });
  });

  test('DeleteRoom answers {}', async () => {
    const name = unique('wire-del');
    await rawCall(server.url, 'CreateRoom', { name }, { token: tokens.create });
    const res = await rawCall(server.url, 'DeleteRoom', { room: name }, { token: tokens.create });
    assert.equal(res.status, 200, res.text);
    assert.equal(mediaType(res.contentType), 'application/json');
    assert.deepEqual(res.json, {});
  });
});

describe('error responses', () => {
  // The Node SDK only parses an error body as JSON when Content-Type is exactly
  // "application/json" (livekit-server-sdk TwirpRPC toTwirpError).
  test('not_found body and exact content type', async () => {
    const res = await rawCall(server.url, 'DeleteRoom', { room: unique('wire-never') }, { token: tokens.create });
    assert.equal(res.status, 404);
    assert.equal(res.contentType, 'application/json');
    assert.deepEqual(res.json, { code: 'not_found', msg: NOT_FOUND_ROOM });
  });

  test('unauthenticated body and exact content type', async () => {
    const res = await rawCall(server.url, 'CreateRoom', { name: unique('wire-denied') }, { token: tokens.list });
    assert.equal(res.status, 401);
    assert.equal(res.contentType, 'application/json');
    assert.deepEqual(res.json, { code: 'unauthenticated', msg: PERMISSIONS_DENIED });
  });

  test('invalid_argument carries meta.argument', async () => {
    const res = await rawCall(
      server.url,
      'CreateRoom',
      { name: unique('wire-big'), metadata: 'x'.repeat(524289) },
      { token: tokens.create },
    );
    assert.equal(res.status, 400);
    assert.equal(res.contentType, 'application/json');
    assert.deepEqual(res.json, {
      code: 'invalid_argument',
      msg: 'metadata size exceeds limits 524288',
      meta: { argument: 'metadata size exceeds limits' },
    });
  });
});
