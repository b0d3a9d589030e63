// Test harness for the edge Worker: the built Worker (edge/build, from `worker-build`) in
// miniflare (workerd, local, `cf: false`: no network), origins on random 127.0.0.1 ports, and
// the gateway and mock-upstream binaries. Nothing here reaches beyond 127.0.0.1.

import { spawn } from 'node:child_process';
import { createHash, createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Miniflare } from 'miniflare';

export const EDGE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
export const BUILD_DIR = join(EDGE_DIR, 'build');
export const SECRET = 'e2e-shared-secret-0123456789abcdef';
export const TIERS = ['simple', 'medium', 'complex', 'reasoning'];

/** Where cargo put a binary: $ROUTEIQ_<NAME>_BIN, else $CARGO_TARGET_DIR/debug/<name>. */
export function binary(name) {
  const env = process.env[`ROUTEIQ_${name.toUpperCase().replaceAll('-', '_')}_BIN`];
  if (env) return env;
  const target = process.env.CARGO_TARGET_DIR ?? join(homedir(), '.cache/routeiq/target');
  const path = join(target, 'debug', name);
  if (!existsSync(path)) {
    throw new Error(`${path} not found: run \`cargo build -p routeiq-gateway -p routeiq-testkit --bins\` first (or set ROUTEIQ_${name.toUpperCase().replaceAll('-', '_')}_BIN)`);
  }
  return path;
}

/**
 * Starts a process and resolves with `{child, match, output}` once a line of its output
 * matches `ready` (a RegExp), rejecting if it exits first or takes longer than `timeoutMs`.
 */
export function startProcess(cmd, args, { env = {}, ready, timeoutMs = 30_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: { ...process.env, NO_COLOR: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      child.kill('SIGKILL');
      reject(new Error(`${cmd} did not get ready in ${timeoutMs} ms; output:\n${output}`));
    }, timeoutMs);
    const onData = (buf) => {
      output += buf.toString();
      const match = output.match(ready);
      if (match && !done) {
        done = true;
        clearTimeout(timer);
        resolve({ child, match, get output() { return output; } });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(new Error(`${cmd} exited (${code}) before it was ready; output:\n${output}`));
    });
  });
}

export async function stopProcess(proc) {
  if (!proc || proc.child.exitCode !== null) return;
  const exited = new Promise((r) => proc.child.once('exit', r));
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** The mock upstream LLM (tests/testkit) on a random port: `{proc, url}`. */
export async function startMockUpstream() {
  const proc = await startProcess(binary('mock-upstream'), ['--host', '127.0.0.1', '--port', '0'], {
    ready: /listening on (http:\/\/127\.0\.0\.1:\d+)/,
  });
  return { proc, url: proc.match[1] };
}

/** The gateway binary on a random port with `configYaml` and `env`: `{proc, url}`. */
export async function startGateway(configYaml, env) {
  const dir = mkdtempSync(join(tmpdir(), 'routeiq-edge-e2e-'));
  const config = join(dir, 'config.yaml');
  writeFileSync(config, configYaml);
  const proc = await startProcess(
    binary('routeiq-gateway'),
    ['--config', config, '--host', '127.0.0.1', '--port', '0'],
    { env, ready: /listening\D*?127\.0\.0\.1:(\d+)/ },
  );
  const url = `http://127.0.0.1:${proc.match[1]}`;
  for (let i = 0; ; i++) {
    try {
      const r = await fetch(`${url}/health/liveliness`);
      if (r.status === 200) break;
    } catch {
      // not accepting yet
    }
    if (i > 200) throw new Error(`gateway at ${url} never got healthy; output:\n${proc.output}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return { proc, url };
}

/** The built Worker in miniflare with `bindings` (vars and secrets). */
export async function startWorker(bindings) {
  for (const f of ['index.js', 'index_bg.wasm']) {
    if (!existsSync(join(BUILD_DIR, f))) {
      throw new Error(`${join(BUILD_DIR, f)} not found: build the Worker first (bash edge/build.sh)`);
    }
  }
  const mf = new Miniflare({
    scriptPath: join(BUILD_DIR, 'index.js'),
    modules: true,
    modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }],
    compatibilityDate: '2026-04-01',
    cf: false,
    host: '127.0.0.1',
    port: 0,
    bindings,
  });
  await mf.ready;
  return mf;
}

/**
 * An origin on a random port that records every request (method, url, headers, raw body)
 * and answers with `handler(req, body, res)` (default: 200 `{"ok":true}`).
 */
export async function startRecorder(handler) {
  const seen = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method, url: req.url, headers: req.headers, body });
      if (handler) return handler(req, body, res);
      res.setHeader('content-type', 'application/json');
      res.end('{"ok":true}');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    seen,
    last: () => seen[seen.length - 1],
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }),
  };
}

/** The signature the gateway expects (shared/src/edge/sign.rs), computed independently. */
export function sign(secret, hint, unixSecs, body) {
  const digest = createHash('sha256').update(body).digest('hex');
  const mac = createHmac('sha256', secret)
    .update(`routeiq-hint/1\n${hint}\n${unixSecs}\n${digest}`)
    .digest('base64url');
  return `t=${unixSecs};s=${mac}`;
}

/** Checks a signature header like the gateway does; returns the reason it fails, or null. */
export function verify(secret, hint, header, body, now = Math.floor(Date.now() / 1000)) {
  const m = /^t=(\d+);s=([A-Za-z0-9_-]{43})$/.exec(header ?? '');
  if (!m) return 'malformed';
  if (sign(secret, hint, Number(m[1]), body) !== header) return 'bad-signature';
  if (Math.abs(now - Number(m[1])) > 60) return 'clock';
  return null;
}

/** Parses an `X-RouteIQ-Hint` value into its fields (shared/src/edge/hint.rs). */
export function parseHint(raw) {
  const [version, ...parts] = raw.split(';');
  const fields = Object.fromEntries(parts.map((p) => p.split('=')));
  return { version, ...fields };
}

export function chat(text, extra = {}) {
  return JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: text }], ...extra });
}

/** Reads an SSE response body; resolves with the `data:` payloads. */
export async function sseData(res) {
  const text = await res.text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('data:'))
    .map((l) => l.slice(5).trim());
}
