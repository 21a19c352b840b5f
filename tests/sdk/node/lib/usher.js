// Harness for the Node SDK compatibility suite.
//
// Starts a real Usher binary (USHER_BIN, default target/debug/usher relative to
// the repo root) on 127.0.0.1:0, reads its URL from the log line
// "listening on http://127.0.0.1:<port>", and stops it with SIGTERM (SIGKILL
// after 5 s). Set USHER_SDK_LOGS=1 to echo the server log when it stops.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// lib/ -> node/ -> sdk/ -> tests/ -> repo root
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
export const DEV_KEY = 'devkey';
export const DEV_SECRET = 'secret';
export const NOT_FOUND_ROOM = 'twirp error unknown: requested room does not exist';
export const NOT_FOUND_PARTICIPANT = 'twirp error unknown: participant does not exist';
export const PERMISSIONS_DENIED = 'permissions denied';
export const MAX_METADATA = 524288;

const LISTEN_RE = /listening on (http:\/\/[0-9.:]+)/;
// eslint-disable-next-line no-control-regex
const ANSI_RE = /\x1b\[[0-9;]*[A-Za-z]/g;

export function usherBin() {
  const p = process.env.USHER_BIN || 'target/debug/usher';
  return path.isAbsolute(p) ? p : path.join(REPO_ROOT, p);
}

export async function startUsher(args, { label = 'usher', timeoutMs = 30000 } = {}) {
  const bin = usherBin();
  assert.ok(existsSync(bin), `Usher binary not found at ${bin} (set USHER_BIN)`);
  const child = spawn(bin, args, {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: process.env.NO_COLOR ?? '1' },
  });
  const logs = [];
  let exited = null;
  const exitPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    });
  });

  const url = await new Promise((resolve, reject) => {
    let done = false;
    const finish = (fn, v) => {
      if (!done) {
        done = true;
        clearTimeout(timer);
        fn(v);
      }
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(reject, new Error(`${label}: no 'listening on' line within ${timeoutMs} ms\n${logs.slice(-60).join('\n')}`));
    }, timeoutMs);
    const onStream = (stream) => {
      let buf = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk) => {
        buf += chunk;
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).replace(ANSI_RE, '');
          buf = buf.slice(nl + 1);
          logs.push(line);
          const m = LISTEN_RE.exec(line);
          if (m) finish(resolve, m[1]);
        }
      });
    };
    onStream(child.stdout);
    onStream(child.stderr);
    child.on('error', (e) => finish(reject, e));
    exitPromise.then((ex) =>
      finish(reject, new Error(`${label} exited (${JSON.stringify(ex)}) before listening; args=${JSON.stringify(args)}\n${logs.slice(-60).join('\n')}`)),
    );
  });

  return {
    url,
    logs,
    label,
    tail: (n = 40) => logs.slice(-n).join('\n'),
    async stop() {
      if (exited === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exitPromise;
        clearTimeout(t);
      }
      if (process.env.USHER_SDK_LOGS) console.error(`--- ${label} log ---\n${logs.join('\n')}`);
    },
  };
}

export const startDevUsher = () => startUsher(['--dev', '--bind', '127.0.0.1', '--port', '0'], { label: 'usher --dev' });

export const unique = (prefix) => `${prefix}-${randomUUID().replaceAll('-', '').slice(0, 10)}`;

/** Awaits a promise that must reject; returns the error. */
export async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  assert.fail('expected the call to fail, but it succeeded');
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');

/** Hand-built HS256 JWT (no SDK involved). */
export function makeJwt(claims, secret) {
  const input = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${b64url(createHmac('sha256', secret).update(input).digest())}`;
}

/** Raw Twirp JSON call with fetch; returns { status, contentType, text, json }. */
export async function rawCall(url, method, body, { token, authorization, contentType = 'application/json' } = {}) {
  const headers = { 'Content-Type': contentType };
  if (authorization !== undefined) headers.Authorization = authorization;
  else if (token !== undefined) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(`${url}/twirp/livekit.RoomService/${method}`, {
    method: 'POST',
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', text, json };
}
