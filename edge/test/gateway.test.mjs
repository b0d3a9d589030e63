// End to end: client -> the built Worker (miniflare) -> the gateway binary (edge hints in
// `trust` mode) -> the mock upstream. The gateway says what it did with a hint in
// `x-routeiq-hint-status` (`used` | `advisory` | `ignored:<reason>`, absent when none was
// sent); `x-routeiq-model` is the deployment that answered. (`x-routeiq-tier` is an ML
// strategy's header; this config routes without ML, so a used hint shows in the model.)

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  SECRET, chat, sign, sseData, startGateway, startMockUpstream, startWorker, stopProcess,
} from './harness.mjs';

const EDGE = 'http://edge.test';

// One model group, three deployments at the mock upstream; simple-shuffle (no ML) picks at
// random, so a hint naming `chat-b` is visible when the gateway trusts it.
const config = (mock) => `
model_list:
  - model_name: chat
    litellm_params: {model: openai/chat-a, api_base: "${mock}/v1", api_key: k}
    model_info: {id: chat-a, input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}
  - model_name: chat
    litellm_params: {model: openai/chat-b, api_base: "${mock}/v1", api_key: k}
    model_info: {id: chat-b, input_cost_per_token: 0.000003, output_cost_per_token: 0.000006}
  - model_name: chat
    litellm_params: {model: openai/chat-c, api_base: "${mock}/v1", api_key: k}
    model_info: {id: chat-c, input_cost_per_token: 0.00001, output_cost_per_token: 0.00002}
router_settings:
  routing_strategy: simple-shuffle
  num_retries: 0
`;

describe('worker -> gateway -> mock upstream', () => {
  let mock;
  let gateway;
  let mf;

  before(async () => {
    mock = await startMockUpstream();
    gateway = await startGateway(config(mock.url), {
      ROUTEIQ_EDGE_HINT: 'trust',
      ROUTEIQ_EDGE_HINT_SECRET: SECRET,
    });
    mf = await startWorker({
      ROUTEIQ_ORIGIN_URL: gateway.url,
      ROUTEIQ_HINT_SECRET: SECRET,
      // Every tier suggests deployment chat-b.
      ROUTEIQ_TIER_MODELS: 'simple=chat-b,medium=chat-b,complex=chat-b,reasoning=chat-b',
    });
  });

  after(async () => {
    await mf?.dispose();
    await stopProcess(gateway?.proc);
    await stopProcess(mock?.proc);
  });

  const viaEdge = (body, headers = {}) => mf.dispatchFetch(`${EDGE}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body,
  });
  const direct = (body, headers = {}) => fetch(`${gateway.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body,
  });

  it('a request through the worker reaches the gateway with a valid signed hint, and the gateway uses it', async () => {
    const prompts = [
      'What is the capital of France?',
      'Write a Rust function that merges two sorted vectors without allocating.',
      'Prove that the square root of 2 is irrational, step by step.',
      'Translate "good morning" into Japanese.',
      'Summarise the plot of Hamlet in two sentences.',
      'Solve 3x + 7 = 22.',
      'hi',
      'Design a rate limiter for a distributed API gateway and discuss trade-offs.',
    ];
    const answered = {};
    for (const p of prompts) {
      const res = await viaEdge(chat(p));
      const body = await res.json();
      assert.equal(res.status, 200, JSON.stringify(body));
      assert.equal(res.headers.get('x-routeiq-hint-status'), 'used', p);
      const model = res.headers.get('x-routeiq-model');
      answered[model] = (answered[model] ?? 0) + 1;
      assert.equal(body.object, 'chat.completion');
    }
    // simple-shuffle alone would pick chat-b for all 8 with probability (1/3)^8.
    assert.deepEqual(answered, { 'chat-b': prompts.length });
  });

  it('a client-forged hint sent through the worker is replaced by the worker\'s own', async () => {
    const res = await viaEdge(chat('hello'), {
      'x-routeiq-hint': 'v1;tier=reasoning;conf=1.00;model=chat-c',
      'x-routeiq-hint-signature': sign('wrong-secret', 'v1;tier=reasoning;conf=1.00;model=chat-c', Math.floor(Date.now() / 1000), Buffer.from(chat('hello'))),
    });
    await res.json();
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-routeiq-hint-status'), 'used');
    assert.equal(res.headers.get('x-routeiq-model'), 'chat-b');
  });

  it('a forged hint sent straight to the gateway is ignored', async () => {
    const body = chat('hello');
    const now = Math.floor(Date.now() / 1000);
    const hint = 'v1;tier=reasoning;conf=0.99;model=chat-c';
    const cases = [
      ['bad-signature', { 'x-routeiq-hint': hint, 'x-routeiq-hint-signature': sign('not-the-secret', hint, now, Buffer.from(body)) }],
      ['missing-signature', { 'x-routeiq-hint': hint }],
      ['malformed-signature', { 'x-routeiq-hint': hint, 'x-routeiq-hint-signature': 'sig=trust-me' }],
      // Signed with the right secret, but over another body (a replay).
      ['bad-signature', { 'x-routeiq-hint': hint, 'x-routeiq-hint-signature': sign(SECRET, hint, now, Buffer.from(chat('another prompt'))) }],
      ['expired', { 'x-routeiq-hint': hint, 'x-routeiq-hint-signature': sign(SECRET, hint, now - 3600, Buffer.from(body)) }],
      ['future', { 'x-routeiq-hint': hint, 'x-routeiq-hint-signature': sign(SECRET, hint, now + 3600, Buffer.from(body)) }],
    ];
    for (const [reason, headers] of cases) {
      const res = await direct(body, headers);
      await res.json();
      assert.equal(res.status, 200, reason);
      assert.equal(res.headers.get('x-routeiq-hint-status'), `ignored:${reason}`, reason);
      assert.equal(res.headers.get('x-routeiq-tier'), null, `${reason}: no tier applied`);
    }
    // No hint at all: no status header.
    const res = await direct(body);
    await res.json();
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-routeiq-hint-status'), null);
    // The same hint signed with the shared secret over this body is used (the signature
    // format the worker writes is the one the gateway checks).
    const ok = await direct(body, { 'x-routeiq-hint': hint, 'x-routeiq-hint-signature': sign(SECRET, hint, now, Buffer.from(body)) });
    await ok.json();
    assert.equal(ok.headers.get('x-routeiq-hint-status'), 'used');
    assert.equal(ok.headers.get('x-routeiq-model'), 'chat-c');
  });

  it('streaming passes through the worker', async () => {
    const res = await viaEdge(chat('Count from one to five.', { stream: true }));
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /text\/event-stream/);
    assert.equal(res.headers.get('x-routeiq-hint-status'), 'used');
    assert.equal(res.headers.get('x-routeiq-model'), 'chat-b');
    const data = await sseData(res);
    assert.equal(data.at(-1), '[DONE]');
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    assert.ok(chunks.length >= 2, JSON.stringify(data));
    assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk'), JSON.stringify(data));
    const text = chunks.map((c) => c.choices?.[0]?.delta?.content ?? '').join('');
    assert.ok(text.length > 0, JSON.stringify(data));
  });

  it('GET /v1/models and health go through the worker unclassified', async () => {
    let res = await mf.dispatchFetch(`${EDGE}/v1/models`);
    assert.equal(res.status, 200);
    const models = await res.json();
    assert.ok(models.data.some((m) => m.id === 'chat'), JSON.stringify(models));
    assert.equal(res.headers.get('x-routeiq-hint-status'), null);
    res = await mf.dispatchFetch(`${EDGE}/health/liveliness`);
    assert.equal(res.status, 200);
    await res.arrayBuffer();
  });

  it('the gateway\'s errors come back through the worker as they are', async () => {
    // Malformed JSON: forwarded unclassified; the gateway gives the real 400.
    let res = await viaEdge('{"model":"chat","messages":[');
    assert.equal(res.status, 400);
    let body = await res.json();
    assert.equal(typeof body.error.message, 'string');
    assert.equal(res.headers.get('x-routeiq-hint-status'), null);
    // A valid request for a model group that does not exist: classified, then the gateway's 404.
    res = await viaEdge(JSON.stringify({ model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] }));
    assert.equal(res.status, 404);
    body = await res.json();
    assert.match(body.error.message, /chat/);
  });
});
