// Every error of the serve issue, in OpenAI's envelope {"error": {"message", "type", "param",
// "code"}} with the right HTTP status, seen raw and through the openai client's APIError: malformed
// JSON, wrong types, out-of-range values, unknown model/route, wrong method, API key, oversize
// body, too-long prompt and unsupported parameters. (Queue full: scripted.test.mjs.)
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import {
  assertErrorEnvelope, expectApiError, getJson, postJson, rawRequest, startArle, tokenCount,
} from './harness.mjs';

describe('arle serve errors (built-in model)', () => {
  let server;
  let client;
  const messages = [{ role: 'user', content: 'Hello' }];

  before(async () => {
    server = await startArle();
    client = server.client();
  });
  after(async () => {
    await server?.stop();
  });

  test('malformed JSON: 400 invalid_request_error', async () => {
    for (const path of ['/v1/chat/completions', '/v1/completions', '/v1/responses', '/tokenize', '/detokenize']) {
      const res = await postJson(server, path, '{"model": "x", "messages": [');
      assertErrorEnvelope(res, 400, { type: 'invalid_request_error' });
    }
    const notObject = await postJson(server, '/v1/chat/completions', '[1, 2]');
    assertErrorEnvelope(notObject, 400);
    const empty = await postJson(server, '/v1/chat/completions', '');
    assertErrorEnvelope(empty, 400);
  });

  test('wrong types: 400 naming the parameter', async () => {
    const cases = [
      [{ temperature: 'hot' }, 'temperature'],
      [{ max_tokens: 'ten' }, 'max_tokens'],
      [{ max_tokens: 2.5 }, 'max_tokens'],
      [{ n: true }, 'n'],
      [{ stream: 'yes' }, 'stream'],
      [{ stop: 42 }, 'stop'],
      [{ seed: 'abc' }, 'seed'],
      [{ logprobs: 'yes' }, 'logprobs'],
      [{ messages: 'hello' }, 'messages'],
      [{ tools: {} }, 'tools'],
      [{ stream_options: true }, 'stream_options'],
    ];
    for (const [extra, param] of cases) {
      const res = await postJson(server, '/v1/chat/completions', { model: server.model, messages, ...extra });
      const e = assertErrorEnvelope(res, 400, { param, type: 'invalid_request_error' });
      assert.ok(e.message.includes(param), `message names ${param}: ${e.message}`);
    }
    const err = await expectApiError(() => client.chat.completions.create({
      model: server.model, messages, temperature: 'hot',
    }), 400, { param: 'temperature' });
    assert.ok(err instanceof OpenAI.BadRequestError);
    assert.equal(err.type, 'invalid_request_error');
    assert.equal(err.code ?? null, null);
    const comp = await postJson(server, '/v1/completions', { model: server.model, prompt: 7 });
    assertErrorEnvelope(comp, 400, { param: 'prompt' });
    const missing = await postJson(server, '/v1/chat/completions', { model: server.model });
    assertErrorEnvelope(missing, 400, { param: 'messages' });
  });

  test('out-of-range values: 400 naming the parameter', async () => {
    const cases = [
      [{ temperature: -1 }, 'temperature'],
      [{ top_p: 1.5 }, 'top_p'],
      [{ top_p: 0 }, 'top_p'],
      [{ min_p: 2 }, 'min_p'],
      [{ presence_penalty: 3 }, 'presence_penalty'],
      [{ frequency_penalty: -2.5 }, 'frequency_penalty'],
      [{ max_tokens: 0 }, 'max_tokens'],
      [{ n: 0 }, 'n'],
      [{ n: 1000 }, 'n'],
      [{ logprobs: true, top_logprobs: 21 }, 'top_logprobs'],
      [{ logit_bias: { 99999999: 1 } }, 'logit_bias'],
      [{ stop_token_ids: [-1] }, 'stop_token_ids'],
    ];
    for (const [extra, param] of cases) {
      const res = await postJson(server, '/v1/chat/completions', { model: server.model, messages, ...extra });
      const e = assertErrorEnvelope(res, 400, { param });
      assert.ok(e.message.includes(param.split('.')[0]), `message names ${param}: ${e.message}`);
    }
    await expectApiError(() => client.completions.create({
      model: server.model, prompt: 'x', logprobs: 50,
    }), 400, { param: 'logprobs' });
    await expectApiError(() => client.chat.completions.create({
      model: server.model, messages, n: 0,
    }), 400, { param: 'n' });
  });

  test('unknown model: 404 model_not_found', async () => {
    const res = await postJson(server, '/v1/chat/completions', { model: 'no-such-model', messages });
    const e = assertErrorEnvelope(res, 404, { param: 'model', code: 'model_not_found' });
    assert.ok(e.message.includes('no-such-model'));
    const err = await expectApiError(() => client.completions.create({ model: 'gpt-17', prompt: 'x' }),
      404, { code: 'model_not_found' });
    assert.ok(err instanceof OpenAI.NotFoundError);
  });

  test('unknown route: 404; wrong method: 405 with Allow', async () => {
    assertErrorEnvelope(await getJson(server, '/v1/nope'), 404);
    assertErrorEnvelope(await postJson(server, '/v2/chat/completions', { model: server.model, messages }), 404);
    const wrong = await getJson(server, '/v1/chat/completions');
    assertErrorEnvelope(wrong, 405);
    assert.match(String(wrong.headers.allow), /POST/, 'Allow names the method');
    const wrong2 = await postJson(server, '/v1/models', {});
    assertErrorEnvelope(wrong2, 405);
    assert.match(String(wrong2.headers.allow), /GET/);
    const err = await expectApiError(() => client.get('/nothing-here'), 404);
    assert.ok(err instanceof OpenAI.NotFoundError);
  });

  test('body over the limit: 413', async () => {
    const big = JSON.stringify({ model: server.model, prompt: 'a'.repeat(9 << 20) });
    const res = await postJson(server, '/v1/completions', big);
    assertErrorEnvelope(res, 413);
    // The server still serves.
    const ok = await client.completions.create({ model: server.model, prompt: 'Hi', max_tokens: 2 });
    assert.equal(ok.choices.length, 1);
  });

  test('prompt longer than the context: 400 with both numbers', async () => {
    const models = await client.models.list();
    const context = models.data[0].max_model_len;
    assert.ok(Number.isInteger(context) && context > 0, `/v1/models max_model_len: ${context}`);
    const prompt = 'Once upon a time there was a dog. '.repeat(Math.ceil(context / 4));
    const n = await tokenCount(server, { model: server.model, prompt });
    assert.ok(n > context, `the prompt (${n} tokens) must exceed the context (${context})`);
    const res = await postJson(server, '/v1/completions', { model: server.model, prompt, max_tokens: 4 });
    const e = assertErrorEnvelope(res, 400);
    assert.ok(e.message.includes(String(n)), `message has the prompt length ${n}: ${e.message}`);
    assert.ok(e.message.includes(String(context)), `message has the context ${context}: ${e.message}`);
    await expectApiError(() => client.chat.completions.create({
      model: server.model, messages: [{ role: 'user', content: prompt }],
    }), 400);
  });

  test('unsupported parameters: 400 naming them', async () => {
    const chatCases = [
      [{ store: true }, 'store'],
      [{ parallel_tool_calls: false, tools: [{ type: 'function', function: { name: 'f' } }] }, 'parallel_tool_calls'],
      [{ response_format: { type: 'json_object' } }, 'response_format'],
      [{ functions: [{ name: 'f' }] }, 'functions'],
      [{ some_unknown_flag: 1 }, 'some_unknown_flag'],
      [{ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'http://x' } }] }] }, undefined],
    ];
    for (const [extra, param] of chatCases) {
      const res = await postJson(server, '/v1/chat/completions', { model: server.model, messages, max_tokens: 2, ...extra });
      const e = assertErrorEnvelope(res, 400, param === undefined ? {} : { param });
      if (param) assert.ok(e.message.includes(param), `message names ${param}: ${e.message}`);
    }
    await expectApiError(() => client.completions.create({
      model: server.model, prompt: 'x', suffix: 'y',
    }), 400, { param: 'suffix' });
    await expectApiError(() => client.chat.completions.create({
      model: server.model, messages, store: true,
    }), 400, { param: 'store' });
  });
});

describe('arle serve --api-key', () => {
  let server;
  const KEY = 'sk-test-0123456789';

  before(async () => {
    server = await startArle(['--api-key', KEY]);
  });
  after(async () => {
    await server?.stop();
  });

  test('missing or wrong key: 401; right key: 200; /health and /metrics open', async () => {
    const body = { model: server.model, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 };
    assertErrorEnvelope(await postJson(server, '/v1/chat/completions', body), 401);
    assertErrorEnvelope(await postJson(server, '/v1/chat/completions', body, { authorization: `Bearer ${KEY}x` }), 401);
    assertErrorEnvelope(await postJson(server, '/v1/chat/completions', body, { authorization: KEY }), 401);
    assertErrorEnvelope(await getJson(server, '/v1/models'), 401);
    const ok = await postJson(server, '/v1/chat/completions', body, { authorization: `Bearer ${KEY}` });
    assert.equal(ok.status, 200, ok.body);
    assert.equal((await rawRequest(`${server.url}/health`)).status, 200);
    assert.equal((await rawRequest(`${server.url}/metrics`)).status, 200);

    const wrong = server.client({ apiKey: 'sk-wrong' });
    const err = await expectApiError(() => wrong.chat.completions.create(body), 401);
    assert.ok(err instanceof OpenAI.AuthenticationError);
    const right = server.client({ apiKey: KEY });
    const res = await right.chat.completions.create(body);
    assert.equal(res.choices.length, 1);
    assert.equal((await right.models.list()).data[0].id, server.model);
  });
});
