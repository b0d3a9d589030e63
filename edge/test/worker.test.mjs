// The Worker alone, in front of an origin that records what it receives: what is forwarded,
// what is signed, and what is left alone.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  SECRET, TIERS, chat, parseHint, startRecorder, startWorker, verify,
} from './harness.mjs';

const EDGE = 'http://edge.test';
const MIB = 1024 * 1024;

describe('edge worker in front of a recording origin', () => {
  let origin;
  let mf;
  let mfNoSecret;

  before(async () => {
    origin = await startRecorder((req, body, res) => {
      if (req.url.startsWith('/sse')) {
        // Four events 300 ms apart; each one's send time goes in the event.
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        let i = 0;
        const tick = () => {
          res.write(`data: {"i":${i},"sent":${Date.now()}}\n\n`);
          if (++i < 4) setTimeout(tick, 300);
          else res.end('data: [DONE]\n\n');
        };
        return tick();
      }
      if (req.url.startsWith('/teapot')) {
        res.writeHead(418, { 'x-origin': 'yes', 'content-type': 'text/plain' });
        return res.end('short and stout');
      }
      if (req.url.startsWith('/moved')) {
        res.writeHead(302, { location: 'https://elsewhere.example/' });
        return res.end();
      }
      res.setHeader('content-type', 'application/json');
      res.end('{"ok":true}');
    });
    const vars = {
      ROUTEIQ_ORIGIN_URL: origin.url,
      ROUTEIQ_TIER_MODELS: 'simple=small,medium=mid,complex=big,reasoning=thinker',
      ROUTEIQ_EDGE_REGIONS: 'us-east-1,eu-central-1,ap-southeast-1',
      ROUTEIQ_ROUTING_PROFILE: 'auto',
    };
    mf = await startWorker({ ...vars, ROUTEIQ_HINT_SECRET: SECRET });
    mfNoSecret = await startWorker(vars);
  });

  after(async () => {
    await mf?.dispose();
    await mfNoSecret?.dispose();
    await origin?.close();
  });

  it('signs a hint over the exact body and forwards it unchanged, path and query kept', async () => {
    // Odd spacing and key order: the origin must get these exact bytes.
    const body = '{ "messages":[{"role":"user","content":"Write a Rust function that merges two sorted vectors."}],  "model":"chat" }';
    const res = await mf.dispatchFetch(`${EDGE}/v1/chat/completions?trace=1&x=%20y`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-client', 'x-request-id': 'req-1' },
      body,
      cf: { country: 'DE', continent: 'EU', latitude: '50.11', longitude: '8.68', colo: 'FRA' },
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { ok: true });
    const got = origin.last();
    assert.equal(got.method, 'POST');
    assert.equal(got.url, '/v1/chat/completions?trace=1&x=%20y');
    assert.equal(got.body.toString(), body);
    assert.equal(got.headers.authorization, 'Bearer sk-client');
    assert.equal(got.headers['x-request-id'], 'req-1');
    assert.equal(got.headers['content-type'], 'application/json');
    const hint = got.headers['x-routeiq-hint'];
    assert.ok(hint, 'hint header set');
    const h = parseHint(hint);
    assert.equal(h.version, 'v1');
    assert.ok(TIERS.includes(h.tier), hint);
    assert.ok(Number(h.conf) >= 0 && Number(h.conf) <= 1, hint);
    assert.equal(h.model, { simple: 'small', medium: 'mid', complex: 'big', reasoning: 'thinker' }[h.tier]);
    assert.equal(h.profile, 'auto');
    assert.equal(h.region, 'eu-central-1', 'region from cf coordinates');
    assert.equal(h.colo, 'FRA');
    assert.equal(verify(SECRET, hint, got.headers['x-routeiq-hint-signature'], got.body), null);
  });

  it('strips client-sent X-RouteIQ-Hint* headers and signs its own', async () => {
    const body = chat('hello there');
    await mf.dispatchFetch(`${EDGE}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'X-RouteIQ-Hint': 'v1;tier=reasoning;conf=1.00;model=most-expensive',
        'X-RouteIQ-Hint-Signature': 't=1;s=forged',
        'X-RouteIQ-Hint-Debug': 'yes',
      },
      body,
    });
    const got = origin.last();
    assert.equal(got.headers['x-routeiq-hint-debug'], undefined);
    assert.notEqual(got.headers['x-routeiq-hint'], 'v1;tier=reasoning;conf=1.00;model=most-expensive');
    assert.equal(verify(SECRET, got.headers['x-routeiq-hint'], got.headers['x-routeiq-hint-signature'], Buffer.from(body)), null);
  });

  it('forwards GET and HEAD unclassified', async () => {
    let res = await mf.dispatchFetch(`${EDGE}/v1/models?limit=5`, {
      headers: { 'x-routeiq-hint': 'v1;tier=simple;conf=0.5' },
    });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    let got = origin.last();
    assert.equal(got.method, 'GET');
    assert.equal(got.url, '/v1/models?limit=5');
    assert.equal(got.headers['x-routeiq-hint'], undefined, 'client hint stripped, none added');
    res = await mf.dispatchFetch(`${EDGE}/health/liveliness`, { method: 'HEAD' });
    assert.equal(res.status, 200);
    got = origin.last();
    assert.equal(got.method, 'HEAD');
    assert.equal(got.url, '/health/liveliness');
  });

  it('forwards what it cannot classify unchanged and unsigned', async () => {
    const cases = [
      ['malformed JSON', '{"model":"chat","messages":[{"role":"user","content":"hi"}'],
      ['not a chat or completion', JSON.stringify({ model: 'emb', input: 'embed me' })],
      ['not JSON at all', 'model=chat&prompt=hi'],
      ['empty', ''],
    ];
    for (const [name, body] of cases) {
      const res = await mf.dispatchFetch(`${EDGE}/v1/chat/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body,
      });
      assert.equal(res.status, 200, name);
      await res.arrayBuffer();
      const got = origin.last();
      assert.equal(got.body.toString(), body, name);
      assert.equal(got.headers['x-routeiq-hint'], undefined, name);
      assert.equal(got.headers['x-routeiq-hint-signature'], undefined, name);
    }
  });

  it('forwards a body over 1 MiB intact and unclassified', async () => {
    const filler = 'lorem ipsum '.repeat(Math.ceil((1.5 * MIB) / 12));
    const body = Buffer.from(chat(filler));
    assert.ok(body.length > MIB);
    const res = await mf.dispatchFetch(`${EDGE}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body,
    });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    const got = origin.last();
    assert.equal(got.body.length, body.length);
    assert.ok(got.body.equals(body), 'byte-identical');
    assert.equal(got.headers['x-routeiq-hint'], undefined);
  });

  it('reads a body of unknown length (chunked) bounded: small ones are classified, big ones pass intact', async () => {
    const stream = (buf, pieces) => new ReadableStream({
      start(c) {
        const step = Math.ceil(buf.length / pieces);
        for (let i = 0; i < buf.length; i += step) c.enqueue(new Uint8Array(buf.subarray(i, i + step)));
        c.close();
      },
    });
    const small = Buffer.from(chat('What is the capital of France?'));
    let res = await mf.dispatchFetch(`${EDGE}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: stream(small, 3), duplex: 'half',
    });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    let got = origin.last();
    assert.ok(got.body.equals(small));
    assert.equal(verify(SECRET, got.headers['x-routeiq-hint'], got.headers['x-routeiq-hint-signature'], got.body), null);

    const big = Buffer.from(chat('x'.repeat(2 * MIB)));
    res = await mf.dispatchFetch(`${EDGE}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: stream(big, 40), duplex: 'half',
    });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    got = origin.last();
    assert.equal(got.body.length, big.length);
    assert.ok(got.body.equals(big), 'byte-identical');
    assert.equal(got.headers['x-routeiq-hint'], undefined);
  });

  it('streams SSE through as it arrives', async () => {
    const res = await mf.dispatchFetch(`${EDGE}/sse`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: chat('stream please', { stream: true }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /text\/event-stream/);
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let text = '';
    const firstEventAt = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      const complete = text.slice(0, text.lastIndexOf('\n\n') + 1);
      for (const m of complete.matchAll(/"i":(\d+),"sent":(\d+)\}/g)) {
        if (firstEventAt[m[1]] === undefined) firstEventAt[m[1]] = { sent: Number(m[2]), got: Date.now() };
      }
    }
    assert.ok(text.endsWith('data: [DONE]\n\n'), text);
    assert.equal(firstEventAt.length, 4, text);
    // Each event arrives well before the next one is even sent (300 ms later): not buffered.
    for (const { sent, got } of firstEventAt) assert.ok(got - sent < 250, JSON.stringify(firstEventAt));
    assert.ok(firstEventAt[0].got < firstEventAt[3].sent, 'first event before the last was sent');
  });

  it('passes the origin status, headers and redirects back untouched', async () => {
    let res = await mf.dispatchFetch(`${EDGE}/teapot`, { method: 'POST', body: chat('hi') });
    assert.equal(res.status, 418);
    assert.equal(res.headers.get('x-origin'), 'yes');
    assert.equal(await res.text(), 'short and stout');
    res = await mf.dispatchFetch(`${EDGE}/moved`, { redirect: 'manual' });
    assert.equal(res.status, 302);
    assert.equal(res.headers.get('location'), 'https://elsewhere.example/');
    await res.arrayBuffer();
  });

  it('without the secret forwards with no hint (never an error)', async () => {
    for (let i = 0; i < 2; i++) {
      const body = chat('hello');
      const res = await mfNoSecret.dispatchFetch(`${EDGE}/v1/chat/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json', 'x-routeiq-hint': 'v1;tier=simple;conf=0.9' }, body,
      });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
      const got = origin.last();
      assert.equal(got.body.toString(), body);
      assert.equal(got.headers['x-routeiq-hint'], undefined);
      assert.equal(got.headers['x-routeiq-hint-signature'], undefined);
    }
  });
});

describe('edge worker misconfigured', () => {
  it('answers 502 with an OpenAI-shaped error when ROUTEIQ_ORIGIN_URL is missing or bad', async () => {
    for (const bindings of [{}, { ROUTEIQ_ORIGIN_URL: 'gateway.example.com' }]) {
      const mf = await startWorker({ ...bindings, ROUTEIQ_HINT_SECRET: SECRET });
      try {
        const res = await mf.dispatchFetch(`${EDGE}/v1/models`);
        assert.equal(res.status, 502);
        const body = await res.json();
        assert.match(body.error.message, /ROUTEIQ_ORIGIN_URL/);
        assert.equal(body.error.code, 'edge_misconfigured');
      } finally {
        await mf.dispose();
      }
    }
  });

  it('answers 502 with an OpenAI-shaped error when the origin does not answer', async () => {
    const closed = await startRecorder();
    await closed.close(); // a port nothing listens on
    const mf = await startWorker({ ROUTEIQ_ORIGIN_URL: closed.url, ROUTEIQ_HINT_SECRET: SECRET });
    try {
      const res = await mf.dispatchFetch(`${EDGE}/v1/chat/completions`, { method: 'POST', body: chat('hi') });
      assert.equal(res.status, 502);
      const body = await res.json();
      assert.equal(body.error.code, 'edge_origin_unreachable');
    } finally {
      await mf.dispose();
    }
  });

  it('a bad ROUTEIQ_TIER_MODELS forwards unclassified rather than failing', async () => {
    const origin = await startRecorder();
    const mf = await startWorker({ ROUTEIQ_ORIGIN_URL: origin.url, ROUTEIQ_HINT_SECRET: SECRET, ROUTEIQ_TIER_MODELS: 'hard=x' });
    try {
      const res = await mf.dispatchFetch(`${EDGE}/v1/chat/completions`, { method: 'POST', body: chat('hi') });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
      assert.equal(origin.last().headers['x-routeiq-hint'], undefined);
    } finally {
      await mf.dispose();
      await origin.close();
    }
  });
});
