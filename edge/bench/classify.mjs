// Times the edge classifier compiled to wasm (the `bench` build of the Worker crate, through
// wasm-bindgen --target nodejs and the same wasm-opt pass as the Worker): µs per request,
// measured around each call with performance.now(). A call includes copying the body (bytes)
// into wasm memory, as the Worker does. Usage: node classify.mjs <dir with routeiq_edge.js>

import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

const dir = resolve(process.argv[2] ?? '.');
const wasm = createRequire(import.meta.url)(join(dir, 'routeiq_edge.js'));
const bodies = JSON.parse(wasm.bench_bodies_json());

const pct = (sorted, p) => sorted[Math.round((sorted.length - 1) * p)];
const time = (body, sign, n) => {
  const t = [];
  for (let i = 0; i < n + Math.ceil(n / 10); i++) {
    const a = performance.now();
    const out = wasm.classify_for_bench(body, sign);
    const b = performance.now();
    if (!out) throw new Error('not classified');
    if (i >= Math.ceil(n / 10)) t.push((b - a) * 1000);
  }
  return t.sort((x, y) => x - y);
};

console.log('wasm (node, V8), µs per request: classify = parse + features + model; +sign = also SHA-256 of the body and the HMAC');
console.log(`${'body'.padEnd(20)} ${'bytes'.padStart(9)} ${'p50'.padStart(9)} ${'p99'.padStart(9)} ${'mean'.padStart(9)} ${'+sign p50'.padStart(11)}`);
for (const [name, text] of bodies) {
  const body = new Uint8Array(Buffer.from(text));
  const n = body.length > 100_000 ? 200 : 2000;
  const t = time(body, false, n);
  const s = time(body, true, n);
  const mean = t.reduce((a, b) => a + b, 0) / t.length;
  const bytes = body.length;
  console.log(`${name.padEnd(20)} ${String(bytes).padStart(9)} ${pct(t, 0.5).toFixed(1).padStart(9)} ${pct(t, 0.99).toFixed(1).padStart(9)} ${mean.toFixed(1).padStart(9)} ${pct(s, 0.5).toFixed(1).padStart(11)}`);
}
