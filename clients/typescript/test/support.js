// @ts-check
// Test support: a real `messenger-local serve` on a free loopback port, development tokens from
// its `POST /_local/token`, and a WebSocket class that checks every frame against the spec and
// lets a test cut a client's connection.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { frameValidators } from '../../scripts/spec.mjs';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** Built by `cargo build` (tests/run.sh builds the workspace before the SDK tests). */
export const BINARY = process.env.MESSENGER_LOCAL_BIN ?? `${ROOT}target/debug/messenger-local`;
/** A hang guard for every wait, not a timing check. */
export const WAIT_MS = 20_000;

/** A gateway process; `stop()` kills it, `start()` starts it again on the same port. */
export class Gateway {
  /** @param {string[]} args extra `serve` options */
  constructor(args = []) {
    this.args = args;
    this.port = 0;
    /** @type {import('node:child_process').ChildProcess | null} */
    this.child = null;
    this.log = '';
  }

  /** @param {string[]} args */
  static async start(args = []) {
    const gateway = new Gateway(args);
    await gateway.start();
    return gateway;
  }

  async start() {
    const child = spawn(BINARY, ['serve', '--port', String(this.port), ...this.args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' },
    });
    this.child = child;
    child.stderr?.on('data', (chunk) => {
      this.log += chunk;
    });
    const lines = createInterface({ input: /** @type {import('node:stream').Readable} */ (child.stdout) });
    const ready = new Promise((resolve, reject) => {
      lines.on('line', (line) => {
        const m = line.match(/WebSocket:\s+ws:\/\/127\.0\.0\.1:(\d+)\/(\S+)\?token=/);
        if (m) resolve({ port: Number(m[1]), stage: m[2] });
      });
      child.on('exit', (code) => reject(new Error(`messenger-local exited (${code}) before ready:\n${this.log}`)));
    });
    const { port, stage } = await withTimeout(ready, 'the gateway to start');
    this.port = port;
    this.url = `ws://127.0.0.1:${port}/${stage}`;
    this.http = `http://127.0.0.1:${port}`;
  }

  /** Kills the process (no graceful close: clients see their connections drop). */
  async stop() {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
    this.child = null;
  }

  /**
   * A token provider for `user` on `device` that counts its calls.
   * @param {string} user
   * @param {string} device
   */
  tokens(user, device) {
    const provider = async () => {
      provider.calls += 1;
      const response = await fetch(`${this.http}/_local/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user, device }),
      });
      if (!response.ok) throw new Error(`token: HTTP ${response.status}`);
      return /** @type {{ token: string }} */ (await response.json()).token;
    };
    provider.calls = 0;
    return provider;
  }
}

/** @type {ReturnType<typeof frameValidators> | undefined} */
let validators;

/**
 * A WebSocket class for one client: records its sockets (so a test can cut the current one) and
 * checks every frame sent against the spec's `ClientFrame` and every frame received against
 * `ServerFrame`, collecting violations. `onSend` sees every frame the client sends.
 * @param {(frame: any) => void} [onSend]
 */
export function checkedWebSocket(onSend) {
  validators ??= frameValidators();
  const { client, server } = validators;
  /** @type {string[]} */
  const violations = [];
  /** @type {WebSocket[]} */
  const sockets = [];
  class CheckedWebSocket extends WebSocket {
    /** @param {string} url */
    constructor(url) {
      super(url);
      sockets.push(this);
      this.addEventListener('message', (event) => {
        const frame = JSON.parse(String(event.data));
        const errors = server(frame);
        if (errors) violations.push(`received ${JSON.stringify(frame)}: ${errors.join('; ')}`);
      });
    }

    /** @param {string} data */
    send(data) {
      const frame = JSON.parse(data);
      const errors = client(frame);
      if (errors) violations.push(`sent ${data}: ${errors.join('; ')}`);
      onSend?.(frame);
      super.send(data);
    }
  }
  return {
    WebSocket: CheckedWebSocket,
    violations,
    sockets,
    /** Closes the client's current socket under it, as a lost connection would. */
    cut() {
      sockets[sockets.length - 1].close(4999, 'cut by the test');
    },
  };
}

/**
 * @template T
 * @param {Promise<T>} promise
 * @param {string | (() => string)} what what is awaited (a function: said when it times out)
 * @returns {Promise<T>}
 */
export function withTimeout(promise, what) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  const timeout = new Promise((_, reject) => {
    const say = () => (typeof what === 'function' ? what() : what);
    timer = setTimeout(() => reject(new Error(`never happened within ${WAIT_MS} ms: ${say()}`)), WAIT_MS);
  });
  return /** @type {Promise<T>} */ (Promise.race([promise, timeout]).finally(() => clearTimeout(timer)));
}

/**
 * Collects a client's `message` events; `until(n)` waits for the n-th.
 * @param {import('../src/index.js').MessengerClient} client
 */
export function inbox(client) {
  /** @type {import('../src/index.js').MessageView[]} */
  const messages = [];
  /** @type {{ n: number, resolve: () => void }[]} */
  const waiting = [];
  /** What happened to the connection, for a failure's message. @type {string[]} */
  const log = [];
  const t0 = Date.now();
  const note = (/** @type {string} */ s) => log.push(`+${Date.now() - t0}ms ${s}`);
  client.on('state', (s) => note(s));
  client.on('disconnect', (d) => note(`closed ${d.code}`));
  client.on('error', (e) => note(`error ${e.message}`));
  client.on('frame', (f) => note(f.type === 'message' ? `push #${f.seq}` : f.type));
  client.on('message', (m) => {
    messages.push(m);
    for (const w of waiting.filter((w) => messages.length >= w.n)) w.resolve();
  });
  return {
    messages,
    /** @param {number} n @param {string} what */
    until(n, what) {
      if (messages.length >= n) return Promise.resolve();
      const wait = new Promise((resolve) => waiting.push({ n, resolve: () => resolve(undefined) }));
      return withTimeout(wait, () => {
        const got = messages.map((m) => `${m.conversation}#${m.seq}`).join(' ');
        return `${what} (${client.user}: ${client.state}, ${messages.length} messages: ${got}; ${log.slice(-12).join('; ')})`;
      });
    },
  };
}
