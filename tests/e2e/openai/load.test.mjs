// Bounded load test (label slow): 64 concurrent streaming clients against `arle serve` (built-in
// model), 3 requests each; all complete without errors, the KV blocks in use return to their idle
// value and the request counters match.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { collectChatStream, collectCompletionStream, metricValue, metrics, startArle, waitForMetrics } from './harness.mjs';

const N_CLIENTS = 64;
const N_REQUESTS = 3;
const MAX_TOKENS = 16;

describe('load: 64 concurrent streaming clients', () => {
  let server;

  before(async () => {
    server = await startArle();
  });
  after(async () => {
    await server?.stop();
  });

  test(`${N_CLIENTS} clients x ${N_REQUESTS} streamed requests`, { timeout: 60_000 }, async () => {
    const before = await metrics(server);
    const started = Date.now();
    const errors = [];
    let generated = 0;
    const runClient = async (i) => {
      // One client (connection pool) per simulated user, as separate processes would have.
      const client = server.client();
      for (let r = 0; r < N_REQUESTS; r++) {
        try {
          // A shared system-like prefix plus a per-client tail: the prefix cache is exercised too.
          const prompt = `Once upon a time, in a small town, there lived child number ${i} and turn ${r}.`;
          if ((i + r) % 2 === 0) {
            const s = await collectChatStream(await client.chat.completions.create({
              model: server.model, messages: [{ role: 'user', content: prompt }], max_tokens: MAX_TOKENS,
              ignore_eos: true, temperature: 0.8, seed: i * 10 + r, stream: true,
              stream_options: { include_usage: true },
            }));
            assert.equal(s.choices.length, 1);
            assert.equal(s.choices[0].finish, 'length');
            assert.equal(s.usage.completion_tokens, MAX_TOKENS);
            generated += s.usage.completion_tokens;
          } else {
            const s = await collectCompletionStream(await client.completions.create({
              model: server.model, prompt, max_tokens: MAX_TOKENS, ignore_eos: true, stream: true,
              stream_options: { include_usage: true },
            }));
            assert.equal(s.choices[0].finish, 'length');
            assert.equal(s.usage.completion_tokens, MAX_TOKENS);
            generated += s.usage.completion_tokens;
          }
        } catch (e) {
          errors.push(`client ${i} request ${r}: ${e?.stack ?? e}`);
        }
      }
    };
    await Promise.all(Array.from({ length: N_CLIENTS }, (_, i) => runClient(i)));
    const seconds = (Date.now() - started) / 1000;
    assert.deepEqual(errors, [], `${errors.length} failed requests`);
    const total = N_CLIENTS * N_REQUESTS;
    assert.equal(generated, total * MAX_TOKENS);

    const after = await waitForMetrics(server, (s) => metricValue(s, 'arle_num_requests_running') === 0 &&
      metricValue(s, 'arle_kv_blocks_used') === metricValue(before, 'arle_kv_blocks_used'),
    'no blocks in use after the load', 5000);
    const ok = { status: '200' };
    assert.equal(metricValue(after, 'arle_requests_total', ok) - metricValue(before, 'arle_requests_total', ok), total);
    for (const status of ['400', '499', '500', '503']) {
      assert.equal(metricValue(after, 'arle_requests_total', { status }), metricValue(before, 'arle_requests_total', { status }),
        `no ${status} responses`);
    }
    assert.equal(metricValue(after, 'arle_generation_tokens_total') - metricValue(before, 'arle_generation_tokens_total'),
      total * MAX_TOKENS);
    assert.equal(metricValue(after, 'arle_num_requests_waiting'), 0);
    assert.ok(metricValue(after, 'arle_kv_blocks_used') <= metricValue(after, 'arle_kv_blocks_total'));
    console.log(`load: ${total} streamed requests, ${total * MAX_TOKENS} tokens in ${seconds.toFixed(1)} s`);
  });
});
