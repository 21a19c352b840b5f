// RoomService behaviour through the official Node SDK (JSON encoding).
// Reference: shared/reference/roomservice.md §1, §3.1-3.5, §3.11, §3.15.
// Every test uses its own room names, so tests are independent of order.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RoomServiceClient, TwirpError } from 'livekit-server-sdk';
import {
  DEV_KEY,
  DEV_SECRET,
  MAX_METADATA,
  NOT_FOUND_PARTICIPANT,
  NOT_FOUND_ROOM,
  rejection,
  startDevUsher,
  unique,
} from '../lib/usher.js';

const SID_RE = /^RM_[A-Za-z0-9]{12}$/;

let server;
let rs;

before(async () => {
  server = await startDevUsher();
  rs = new RoomServiceClient(server.url, DEV_KEY, DEV_SECRET);
});

after(async () => {
  await server?.stop();
});

function assertTwirp(err, code, status, message) {
  assert.ok(err instanceof TwirpError, `expected TwirpError, got ${err?.constructor?.name}: ${err}`);
  assert.deepEqual({ code: err.code, status: err.status, message: err.message }, { code, status, message });
}

test('health check answers 200 OK', async () => {
  const res = await fetch(`${server.url}/`);
  assert.equal(res.status, 200);
  assert.equal((await res.text()).trim(), 'OK');
});

describe('CreateRoom', () => {
  test('new room has LiveKit defaults', async () => {
    const name = unique('node-defaults');
    const t0 = Date.now();
    const room = await rs.createRoom({ name });
    const t1 = Date.now();

    assert.match(room.sid, SID_RE);
    assert.equal(room.name, name);
    assert.equal(room.emptyTimeout, 300);
    assert.equal(room.departureTimeout, 20);
    assert.equal(room.maxParticipants, 0);
    assert.equal(room.metadata, '');
    assert.equal(room.numParticipants, 0);
    assert.equal(room.numPublishers, 0);
    assert.equal(room.activeRecording, false);
    assert.equal(typeof room.creationTime, 'bigint');
    const secs = Number(room.creationTime);
    assert.ok(secs >= Math.floor(t0 / 1000) - 1 && secs <= Math.floor(t1 / 1000) + 1, `creationTime ${secs}`);
    const ms = Number(room.creationTimeMs);
    assert.ok(ms >= t0 - 1000 && ms <= t1 + 1000, `creationTimeMs ${ms}`);
    assert.ok(Math.abs(Math.floor(ms / 1000) - secs) <= 1);
  });

  test('request parameters are applied to a new room', async () => {
    const name = unique('node-params');
    const room = await rs.createRoom({
      name,
      emptyTimeout: 42,
      departureTimeout: 7,
      maxParticipants: 5,
      metadata: '{"topic":"standup"}',
    });
    assert.match(room.sid, SID_RE);
    assert.equal(room.name, name);
    assert.equal(room.emptyTimeout, 42);
    assert.equal(room.departureTimeout, 7);
    assert.equal(room.maxParticipants, 5);
    assert.equal(room.metadata, '{"topic":"standup"}');
    assert.ok(room.creationTime > 0n);
    assert.ok(room.creationTimeMs > 0n);
  });

  test('creating an existing room returns it unchanged', async () => {
    const name = unique('node-idem');
    const first = await rs.createRoom({ name, metadata: 'first', emptyTimeout: 60, maxParticipants: 3 });
    const second = await rs.createRoom({ name, metadata: 'second', emptyTimeout: 99, maxParticipants: 9 });
    assert.equal(second.sid, first.sid);
    assert.equal(second.name, name);
    assert.equal(second.metadata, 'first');
    assert.equal(second.emptyTimeout, 60);
    assert.equal(second.maxParticipants, 3);
    assert.equal(second.creationTime, first.creationTime);
    assert.equal(second.creationTimeMs, first.creationTimeMs);
    const rooms = await rs.listRooms([name]);
    assert.deepEqual(rooms.map((r) => r.sid), [first.sid]);
  });

  test('metadata over 512 KiB is invalid_argument; exactly 512 KiB is accepted', async () => {
    const name = unique('node-bigmeta');
    const err = await rejection(rs.createRoom({ name, metadata: 'x'.repeat(MAX_METADATA + 1) }));
    assert.ok(err instanceof TwirpError, String(err));
    assert.equal(err.code, 'invalid_argument');
    assert.equal(err.status, 400);
    assert.match(err.message, /metadata size exceeds limits/);
    assert.deepEqual(await rs.listRooms([name]), []);

    const ok = await rs.createRoom({ name, metadata: 'y'.repeat(MAX_METADATA) });
    assert.equal(ok.metadata.length, MAX_METADATA);
  });

  test('metadata size error text and meta match LiveKit', async () => {
    const err = await rejection(rs.createRoom({ name: unique('node-bigmeta-msg'), metadata: 'x'.repeat(MAX_METADATA + 1) }));
    assert.equal(err.message, `metadata size exceeds limits ${MAX_METADATA}`);
    assert.deepEqual(err.metadata, { argument: 'metadata size exceeds limits' });
  });

  test('room name over 256 chars is invalid_argument; 256 is accepted', async () => {
    const err = await rejection(rs.createRoom({ name: 'n'.repeat(257) }));
    assert.ok(err instanceof TwirpError, String(err));
    assert.equal(err.code, 'invalid_argument');
    assert.equal(err.status, 400);
    assert.equal(err.message, 'twirp error unknown: room name length exceeds limits: max length 256');

    const name = unique('m'.repeat(245)); // 245 + 1 + 10 = 256
    assert.equal(name.length, 256);
    const room = await rs.createRoom({ name });
    assert.equal(room.name, name);
  });
});

describe('ListRooms', () => {
  test('lists all rooms', async () => {
    const a = await rs.createRoom({ name: unique('node-list-a'), metadata: 'A' });
    const b = await rs.createRoom({ name: unique('node-list-b'), metadata: 'B' });
    const byName = new Map((await rs.listRooms()).map((r) => [r.name, r]));
    assert.equal(byName.get(a.name)?.sid, a.sid);
    assert.equal(byName.get(a.name)?.metadata, 'A');
    assert.equal(byName.get(a.name)?.emptyTimeout, 300);
    assert.equal(byName.get(a.name)?.creationTime, a.creationTime);
    assert.equal(byName.get(b.name)?.sid, b.sid);
    assert.equal(byName.get(b.name)?.metadata, 'B');
  });

  test('filters by names and skips missing names', async () => {
    const a = await rs.createRoom({ name: unique('node-filter-a') });
    const b = await rs.createRoom({ name: unique('node-filter-b') });
    await rs.createRoom({ name: unique('node-filter-c') });
    const missing = unique('node-filter-missing');

    const onlyA = await rs.listRooms([a.name, missing]);
    assert.deepEqual(onlyA.map((r) => [r.name, r.sid]), [[a.name, a.sid]]);

    const both = (await rs.listRooms([b.name, a.name])).map((r) => [r.name, r.sid]).sort();
    assert.deepEqual(both, [[a.name, a.sid], [b.name, b.sid]].sort());

    assert.deepEqual(await rs.listRooms([missing]), []);
  });
});

describe('UpdateRoomMetadata', () => {
  test('returns the room with the new metadata', async () => {
    const room = await rs.createRoom({ name: unique('node-meta'), metadata: 'old' });
    const updated = await rs.updateRoomMetadata(room.name, 'new ✓');
    assert.equal(updated.sid, room.sid);
    assert.equal(updated.name, room.name);
    assert.equal(updated.metadata, 'new ✓');
    assert.equal(updated.creationTime, room.creationTime);
    assert.equal(updated.emptyTimeout, room.emptyTimeout);
    const [listed] = await rs.listRooms([room.name]);
    assert.equal(listed.metadata, 'new ✓');
  });

  test('empty metadata clears it', async () => {
    // The SDK omits the empty field from the JSON body entirely.
    const room = await rs.createRoom({ name: unique('node-meta-clear'), metadata: 'something' });
    const updated = await rs.updateRoomMetadata(room.name, '');
    assert.equal(updated.sid, room.sid);
    assert.equal(updated.metadata, '');
    const [listed] = await rs.listRooms([room.name]);
    assert.equal(listed.metadata, '');
  });

  test('over-size metadata is invalid_argument and changes nothing', async () => {
    const room = await rs.createRoom({ name: unique('node-bigmeta-up'), metadata: 'small' });
    const err = await rejection(rs.updateRoomMetadata(room.name, 'x'.repeat(MAX_METADATA + 1)));
    assert.ok(err instanceof TwirpError, String(err));
    assert.equal(err.code, 'invalid_argument');
    assert.equal(err.status, 400);
    assert.match(err.message, /metadata size exceeds limits/);
    const [listed] = await rs.listRooms([room.name]);
    assert.equal(listed.metadata, 'small');
  });

  test('unknown room is not_found', async () => {
    const err = await rejection(rs.updateRoomMetadata(unique('node-never-meta'), 'm'));
    assertTwirp(err, 'not_found', 404, NOT_FOUND_ROOM);
  });
});

describe('participants', () => {
  test('ListParticipants of a new room is empty', async () => {
    const room = await rs.createRoom({ name: unique('node-parts') });
    assert.deepEqual(await rs.listParticipants(room.name), []);
  });

  test('ListParticipants of an unknown room is empty (not 404)', async () => {
    assert.deepEqual(await rs.listParticipants(unique('node-parts-none')), []);
  });

  test('GetParticipant of an unknown identity is not_found', async () => {
    const room = await rs.createRoom({ name: unique('node-getp') });
    const err = await rejection(rs.getParticipant(room.name, 'nobody'));
    assertTwirp(err, 'not_found', 404, NOT_FOUND_PARTICIPANT);
  });

  test('RemoveParticipant of an unknown identity is not_found', async () => {
    const room = await rs.createRoom({ name: unique('node-rmp') });
    const err = await rejection(rs.removeParticipant(room.name, 'nobody'));
    assertTwirp(err, 'not_found', 404, NOT_FOUND_PARTICIPANT);
  });
});

describe('DeleteRoom', () => {
  test('delete, then delete again and update are not_found, and the name can be reused', async () => {
    const room = await rs.createRoom({ name: unique('node-del'), metadata: 'bye' });
    const keep = await rs.createRoom({ name: unique('node-keep') });

    assert.equal(await rs.deleteRoom(room.name), undefined);

    assert.deepEqual(await rs.listRooms([room.name]), []);
    const names = new Set((await rs.listRooms()).map((r) => r.name));
    assert.ok(!names.has(room.name));
    assert.ok(names.has(keep.name));

    assertTwirp(await rejection(rs.deleteRoom(room.name)), 'not_found', 404, NOT_FOUND_ROOM);
    assertTwirp(await rejection(rs.updateRoomMetadata(room.name, 'x')), 'not_found', 404, NOT_FOUND_ROOM);

    const again = await rs.createRoom({ name: room.name });
    assert.match(again.sid, SID_RE);
    assert.notEqual(again.sid, room.sid);
    assert.equal(again.metadata, '');
  });

  test('unknown room is not_found', async () => {
    assertTwirp(await rejection(rs.deleteRoom(unique('node-never'))), 'not_found', 404, NOT_FOUND_ROOM);
  });
});
