// The other routes of `arle serve` (built-in model): /v1/models and /v1/models/{id}, /health, /metrics (strict
// Prometheus parse), /v1/stats, /tokenize + /detokenize, /v1/responses plain and streamed, and an
// aborted stream whose KV blocks return to the pool while the server keeps serving.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import {
  getJson, metricValue, metrics, postJson, rawRequest, readThenAbort, startArle, waitForMetrics,
} from './harness.mjs';

describe('arle serve routes (built-in model)', () => {
  let server;
  let client;

  before(async () => {
    server = await startArle();
    client = server.client();
  });
  after(async () => {
    await server?.stop();
  });

  test('GET /v1/models lists the served model', async () => {
    const page = await client.models.list();
    assert.equal(page.data.length, 1);
    const [model] = page.data;
    assert.equal(model.id, server.model);
    assert.equal(model.object, 'model');
    assert.equal(typeof model.created, 'number');
    assert.equal(typeof model.owned_by, 'string');
    const raw = await getJson(server, '/v1/models');
    assert.equal(raw.json.object, 'list');
    const one = await client.models.retrieve(server.model);
    assert.deepEqual(one, model);
    const other = await client.models.retrieve('org/not-served').catch((e) => e);
    assert.ok(other instanceof OpenAI.NotFoundError, String(other));
    assert.equal(other.code, 'model_not_found');
  });

  test('GET /health', async () => {
    const res = await rawRequest(`${server.url}/health`);
    assert.equal(res.status, 200);
  });

  test('GET /metrics: Prometheus text that parses; counters move with a request', async () => {
    const res = await rawRequest(`${server.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    const before = await metrics(server);
    for (const name of ['arle_kv_blocks_used', 'arle_kv_blocks_total', 'arle_kv_blocks_cached',
      'arle_num_requests_waiting', 'arle_num_requests_running', 'arle_prompt_tokens_total',
      'arle_generation_tokens_total', 'arle_prefix_cache_queries_total', 'arle_prefix_cache_hits_total',
      'arle_preemptions_total', 'arle_time_to_first_token_seconds_count',
      'arle_e2e_request_latency_seconds_count', 'arle_inter_token_latency_seconds_count']) {
      assert.ok(before.some((s) => s.name === name), `/metrics has ${name}`);
    }
    assert.ok(metricValue(before, 'arle_kv_blocks_total') > 0);
    const buckets = before.filter((s) => s.name === 'arle_e2e_request_latency_seconds_bucket');
    assert.ok(buckets.some((s) => s.labels.le === '+Inf'), 'histograms end with le="+Inf"');

    const res2 = await client.completions.create({ model: server.model, prompt: 'Hello', max_tokens: 5, ignore_eos: true });
    const after = await metrics(server);
    const ok = { status: '200' };
    assert.equal(metricValue(after, 'arle_requests_total', ok), metricValue(before, 'arle_requests_total', ok) + 1);
    assert.equal(metricValue(after, 'arle_generation_tokens_total'),
      metricValue(before, 'arle_generation_tokens_total') + 5);
    assert.equal(metricValue(after, 'arle_prompt_tokens_total'),
      metricValue(before, 'arle_prompt_tokens_total') + res2.usage.prompt_tokens);
    assert.equal(metricValue(after, 'arle_e2e_request_latency_seconds_count'),
      metricValue(before, 'arle_e2e_request_latency_seconds_count') + 1);
    assert.equal(metricValue(after, 'arle_request_finish_total', { finish_reason: 'length' }),
      metricValue(before, 'arle_request_finish_total', { finish_reason: 'length' }) + 1);
    const bad = await postJson(server, '/v1/completions', { model: 'nope', prompt: 'x' });
    assert.equal(bad.status, 404);
    const after2 = await metrics(server);
    assert.equal(metricValue(after2, 'arle_requests_total', { status: '404' }),
      metricValue(after, 'arle_requests_total', { status: '404' }) + 1, 'errors are counted by status');
  });

  test('GET /v1/stats: the same numbers as JSON', async () => {
    const res = await getJson(server, '/v1/stats');
    assert.equal(res.status, 200);
    assert.equal(typeof res.json, 'object');
    const prom = await metrics(server);
    const text = JSON.stringify(res.json);
    assert.ok(text.includes('kv_blocks_total'), `stats mention kv_blocks_total: ${text}`);
    const find = (obj, key) => {
      if (obj && typeof obj === 'object') {
        if (key in obj) return obj[key];
        for (const v of Object.values(obj)) {
          const f = find(v, key);
          if (f !== undefined) return f;
        }
      }
      return undefined;
    };
    assert.equal(find(res.json, 'kv_blocks_total'), metricValue(prom, 'arle_kv_blocks_total'));
  });

  test('POST /tokenize and /detokenize round trip (text and chat)', async () => {
    const text = 'The little dog ran to the park.';
    const tok = await postJson(server, '/tokenize', { model: server.model, prompt: text, add_special_tokens: false });
    assert.equal(tok.status, 200, tok.body);
    assert.ok(Array.isArray(tok.json.tokens) && tok.json.tokens.length > 3);
    assert.equal(tok.json.count, tok.json.tokens.length);
    assert.ok(tok.json.max_model_len > 0);
    const detok = await postJson(server, '/detokenize', { model: server.model, tokens: tok.json.tokens });
    assert.equal(detok.status, 200, detok.body);
    assert.equal(detok.json.prompt, text);
    const withStrs = await postJson(server, '/tokenize', { prompt: text, return_token_strs: true });
    assert.equal(withStrs.json.token_strs.length, withStrs.json.tokens.length);
    const chat = await postJson(server, '/tokenize', { messages: [{ role: 'user', content: text }] });
    assert.equal(chat.status, 200, chat.body);
    assert.ok(chat.json.count >= tok.json.count);
    const badIds = await postJson(server, '/detokenize', { tokens: [1e9] });
    assert.equal(badIds.status, 400, 'an id outside the vocabulary is a 400');
  });

  test('POST /v1/responses, plain', async () => {
    const res = await client.responses.create({
      model: server.model, input: 'Once upon a time', max_output_tokens: 8, temperature: 0,
    });
    assert.equal(res.object, 'response');
    assert.match(res.id, /^resp_/);
    assert.ok(['completed', 'incomplete'].includes(res.status), res.status);
    assert.equal(typeof res.output_text, 'string');
    assert.ok(res.output_text.length > 0, 'some output text');
    const message = res.output.find((o) => o.type === 'message');
    assert.ok(message, 'a message output item');
    assert.equal(message.role, 'assistant');
    assert.equal(message.content[0].type, 'output_text');
    assert.ok(res.usage.output_tokens > 0 && res.usage.output_tokens <= 8);
    assert.equal(res.usage.total_tokens, res.usage.input_tokens + res.usage.output_tokens);
    if (res.status === 'incomplete') assert.equal(res.incomplete_details.reason, 'max_output_tokens');
  });

  test('POST /v1/responses, streamed: created, output_text.delta..., completed/incomplete', async () => {
    const stream = await client.responses.create({
      model: server.model, input: 'Once upon a time', max_output_tokens: 8, temperature: 0, stream: true,
    });
    const types = [];
    let text = '';
    let final;
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'response.output_text.delta') text += event.delta;
      if (event.type === 'response.completed' || event.type === 'response.incomplete') final = event.response;
    }
    assert.equal(types[0], 'response.created');
    assert.ok(types.includes('response.output_text.delta'));
    assert.ok(['response.completed', 'response.incomplete'].includes(types.at(-1)), types.at(-1));
    assert.equal(final.output_text ?? final.output.find((o) => o.type === 'message').content[0].text, text);
    const plain = await client.responses.create({
      model: server.model, input: 'Once upon a time', max_output_tokens: 8, temperature: 0,
    });
    assert.equal(text, plain.output_text, 'greedy stream = greedy response');
  });

  test('an aborted stream frees its KV blocks; the server keeps serving', async () => {
    const idle = await waitForMetrics(server, (s) => metricValue(s, 'arle_num_requests_running') === 0, 'idle');
    const usedBefore = metricValue(idle, 'arle_kv_blocks_used');
    const abortsBefore = metricValue(idle, 'arle_request_finish_total', { finish_reason: 'abort' });
    const controller = new AbortController();
    const stream = await client.chat.completions.create({
      model: server.model, messages: [{ role: 'user', content: 'Tell me a long story.' }],
      ignore_eos: true, stream: true,
    }, { signal: controller.signal });
    let n = 0;
    await readThenAbort(stream, controller, (chunk) => {
      if (chunk.choices[0]?.delta?.content) n++;
      return n === 3;
    });
    assert.equal(n, 3);
    await waitForMetrics(server, (s) => metricValue(s, 'arle_kv_blocks_used') === usedBefore &&
      metricValue(s, 'arle_num_requests_running') === 0, `arle_kv_blocks_used back to ${usedBefore}`, 5000);
    const after = await metrics(server);
    assert.equal(metricValue(after, 'arle_request_finish_total', { finish_reason: 'abort' }), abortsBefore + 1,
      'the request was cancelled mid-way, not finished');
    const res = await client.chat.completions.create({
      model: server.model, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4,
    });
    assert.equal(res.choices.length, 1);
  });
});

describe('arle serve graceful shutdown', () => {
  test('SIGTERM with streams in flight: every stream ends cleanly, exit 0, port closed', async () => {
    const server = await startArle();
    const client = server.client();
    // 16 streams of ~500 tokens outlast the 3 s grace on a small machine: some finish, the rest are
    // cancelled; either way each must end with a finish_reason.
    const streams = await Promise.all(Array.from({ length: 16 }, (_, i) => client.chat.completions.create({
      model: server.model, messages: [{ role: 'user', content: `Story ${i}` }], ignore_eos: true,
      stream: true, seed: i,
    })));
    const iterators = streams.map((s) => s[Symbol.asyncIterator]());
    await Promise.all(iterators.map((it) => it.next()));  // every stream has started
    const stopped = server.stop();  // SIGTERM; asserts exit 0 within its grace
    const endings = await Promise.all(iterators.map(async (it) => {
      let finish = null;
      for (;;) {
        const { value, done } = await it.next();
        if (done) return finish;
        finish = value.choices[0]?.finish_reason ?? finish;
      }
    }));
    console.log(`shutdown: streams ended with ${endings.join(', ')}`);
    for (const f of endings) assert.ok(['length', 'stop', 'abort'].includes(f), `a stream ended with ${f}`);
    await stopped;
    await assert.rejects(fetch(`${server.url}/health`), 'nothing listens after the exit');
  });
});
