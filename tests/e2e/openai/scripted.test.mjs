// Against arle_scripted_server (the real routes over ScriptedBatchModel, scripted_model.h): a
// prompt holding SCRIPT<<text>>SCRIPT makes the model emit exactly `text` then <|im_end|>. Tests
// tool calls (whole and streamed, tool_choice none, the tool-result follow-up), reasoning, exact
// text and usage, logprob values, stop strings across tokens, n=2, the Responses API, an aborted
// slow stream, the queue-full 503 with Retry-After (and that exactly --max-queue requests may
// wait), and SIGTERM cancelling a long stream.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import {
  assertErrorEnvelope, collectChatStream, collectCompletionStream, metricValue, metrics, postJson,
  readThenAbort, startScripted, tokenCount, waitForMetrics,
} from './harness.mjs';

const script = (text) => `SCRIPT<<${text}>>SCRIPT`;
const TOOL_CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>';
const TOOLS = [{
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
}];

describe('scripted server', () => {
  let server;
  let client;
  const ask = (content, extra = {}) => client.chat.completions.create({
    model: server.model, messages: [{ role: 'user', content }], ...extra,
  });

  before(async () => {
    server = await startScripted();
    client = server.client();
  });
  after(async () => {
    await server?.stop();
  });

  test('exact scripted text, finish_reason stop, usage (script tokens + EOS)', async () => {
    const text = 'Hello, world! The answer is 42.';
    const content = `Please answer. ${script(text)}`;
    const res = await ask(content, { temperature: 1 });
    assert.equal(res.choices[0].message.content, text);
    assert.equal(res.choices[0].finish_reason, 'stop');
    const scriptTokens = await tokenCount(server, { prompt: text, add_special_tokens: false });
    assert.equal(res.usage.completion_tokens, scriptTokens + 1, 'the script tokens and the EOS');
    const promptTokens = await tokenCount(server, { messages: [{ role: 'user', content }] });
    assert.equal(res.usage.prompt_tokens, promptTokens);
    const comp = await client.completions.create({ model: server.model, prompt: `Say it: ${script(text)}`, max_tokens: 100 });
    assert.equal(comp.choices[0].text, text);
    assert.equal(comp.choices[0].finish_reason, 'stop');
    // Without a marker: letters until max_tokens.
    const letters = await client.completions.create({ model: server.model, prompt: 'no marker here', max_tokens: 10 });
    assert.match(letters.choices[0].text, /^[a-zA-Z]+$/);
    assert.equal(letters.choices[0].finish_reason, 'length');
  });

  test('logprobs of a scripted token: ~0 for it, ~-40 for the runner-up', async () => {
    const res = await ask(script('Yes'), { logprobs: true, top_logprobs: 2 });
    const [first] = res.choices[0].logprobs.content;
    assert.equal(first.token, 'Yes');
    assert.ok(first.logprob > -1e-4 && first.logprob <= 0, `logprob ${first.logprob}`);
    assert.equal(first.top_logprobs[0].token, 'Yes');
    // Every other token has logit 0 against 40: log p = -40 - log(1 + (V - 1) e^-40) ~ -40.
    assert.ok(Math.abs(first.top_logprobs[1].logprob + 40) < 1e-2, `runner-up ${first.top_logprobs[1].logprob}`);
  });

  test('tool call, not streamed: finish_reason tool_calls and message.tool_calls', async () => {
    const res = await ask(`What is the weather in Paris? ${script(TOOL_CALL)}`, { tools: TOOLS });
    const [c] = res.choices;
    assert.equal(c.finish_reason, 'tool_calls');
    assert.ok(c.message.content === null || c.message.content === '', `content: ${JSON.stringify(c.message.content)}`);
    assert.equal(c.message.tool_calls.length, 1);
    const [call] = c.message.tool_calls;
    assert.equal(typeof call.id, 'string');
    assert.ok(call.id.length > 0);
    assert.equal(call.type, 'function');
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });
  });

  test('tool call, streamed: the deltas assemble (id, name, arguments)', async () => {
    const stream = await ask(`What is the weather in Paris? ${script(TOOL_CALL)}`, { tools: TOOLS, stream: true });
    const { choices } = await collectChatStream(stream);
    const [c] = choices;
    assert.equal(c.finish, 'tool_calls');
    assert.equal(c.content, '');
    assert.equal(c.toolCalls.length, 1);
    const [call] = c.toolCalls;
    assert.ok(call.id, 'the first tool-call delta has the id');
    assert.equal(call.type, 'function');
    assert.equal(call.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.arguments), { city: 'Paris' });

    // The official client's own accumulator agrees.
    const runner = client.chat.completions.stream({
      model: server.model, tools: TOOLS,
      messages: [{ role: 'user', content: `Weather? ${script(TOOL_CALL)}` }],
    });
    const final = await runner.finalChatCompletion();
    assert.equal(final.choices[0].finish_reason, 'tool_calls');
    assert.equal(final.choices[0].message.tool_calls[0].function.name, 'get_weather');
    assert.deepEqual(JSON.parse(final.choices[0].message.tool_calls[0].function.arguments), { city: 'Paris' });
  });

  test('tool_choice none: the same text stays content, no tool calls', async () => {
    const res = await ask(`What is the weather? ${script(TOOL_CALL)}`, { tools: TOOLS, tool_choice: 'none' });
    const [c] = res.choices;
    assert.equal(c.finish_reason, 'stop');
    assert.ok(!c.message.tool_calls || c.message.tool_calls.length === 0);
    assert.ok(c.message.content.includes('"get_weather"'), `content: ${c.message.content}`);
  });

  test('follow-up with the assistant tool_calls message and a tool result', async () => {
    const first = await ask(`What is the weather in Paris? ${script(TOOL_CALL)}`, { tools: TOOLS });
    const call = first.choices[0].message.tool_calls[0];
    const answer = 'It is sunny in Paris, 22 degrees.';
    const messages = [
      { role: 'user', content: `What is the weather in Paris? ${script(TOOL_CALL)}` },
      { role: 'assistant', content: null, tool_calls: [call] },
      { role: 'tool', tool_call_id: call.id, content: `{"temp": 22, "sky": "sunny"} ${script(answer)}` },
    ];
    const res = await client.chat.completions.create({ model: server.model, messages, tools: TOOLS });
    assert.equal(res.choices[0].finish_reason, 'stop');
    assert.equal(res.choices[0].message.content, answer);
    const promptTokens = await tokenCount(server, { messages, tools: TOOLS });
    assert.equal(res.usage.prompt_tokens, promptTokens, 'the tool turn is rendered as /tokenize renders it');
  });

  test('reasoning: <think>plan</think>answer -> reasoning_content and content', async () => {
    const text = '<think>plan</think>answer';
    const res = await ask(script(text));
    assert.equal(res.choices[0].message.reasoning_content, 'plan');
    assert.equal(res.choices[0].message.content, 'answer');
    assert.equal(res.choices[0].finish_reason, 'stop');
    const { choices } = await collectChatStream(await ask(script(text), { stream: true }));
    assert.equal(choices[0].reasoning, 'plan');
    assert.equal(choices[0].content, 'answer');
    assert.equal(choices[0].finish, 'stop');
  });

  test('stop string across tokens: exact cut, finish_reason stop (chat, completions, streamed)', async () => {
    const text = 'The quick brown fox jumps over the lazy dog';
    const stop = 'own fox ju';  // spans " brown", " fox" and " jumps"
    const pieces = await postJson(server, '/tokenize', { prompt: text, add_special_tokens: false, return_token_strs: true });
    assert.ok(pieces.json.count >= 8, 'the script is several tokens');
    const res = await ask(script(text), { stop });
    assert.equal(res.choices[0].message.content, 'The quick br');
    assert.equal(res.choices[0].finish_reason, 'stop');
    const s = await collectChatStream(await ask(script(text), { stop: ['zzz', stop], stream: true }));
    assert.equal(s.choices[0].content, 'The quick br');
    assert.equal(s.choices[0].finish, 'stop');
    const comp = await collectCompletionStream(await client.completions.create({
      model: server.model, prompt: script(text), stop: 'lazy', stream: true,
    }));
    assert.equal(comp.choices[0].text, 'The quick brown fox jumps over the ');
    assert.equal(comp.choices[0].finish, 'stop');
  });

  test('n=2 with a script: both samples follow it', async () => {
    const res = await ask(script('same for both'), { n: 2, temperature: 1 });
    assert.deepEqual(res.choices.map((c) => [c.index, c.message.content, c.finish_reason]),
      [[0, 'same for both', 'stop'], [1, 'same for both', 'stop']]);
  });

  test('responses API on a script: exact text and event order', async () => {
    const plain = await client.responses.create({ model: server.model, input: script('Hello there') });
    assert.equal(plain.status, 'completed');
    assert.equal(plain.output_text, 'Hello there');
    const stream = await client.responses.create({ model: server.model, input: script('Hello there'), stream: true });
    const types = [];
    let text = '';
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'response.output_text.delta') text += event.delta;
    }
    assert.equal(types[0], 'response.created');
    assert.equal(types.at(-1), 'response.completed');
    assert.ok(types.indexOf('response.output_text.delta') > 0);
    assert.equal(text, 'Hello there');
    const reasoning = await client.responses.create({ model: server.model, input: script('<think>hmm</think>ok') });
    assert.equal(reasoning.output_text, 'ok');
  });
});

describe('scripted server, slow steps (--step-delay-ms)', () => {
  let server;
  let client;

  before(async () => {
    server = await startScripted(['--max-seqs', '1', '--max-queue', '1', '--step-delay-ms', '25']);
    client = server.client();
  });
  after(async () => {
    await server?.stop();
  });

  test('an aborted stream is cancelled at once and frees its KV blocks', async () => {
    const idle = await metrics(server);
    const usedBefore = metricValue(idle, 'arle_kv_blocks_used');
    const abortsBefore = metricValue(idle, 'arle_request_finish_total', { finish_reason: 'abort' });
    const controller = new AbortController();
    // 2000 tokens at 25 ms a step would take 50 s: only a cancellation ends it in time.
    const stream = await client.completions.create({
      model: server.model, prompt: 'no marker, letters', max_tokens: 2000, stream: true,
    }, { signal: controller.signal });
    let n = 0;
    let sawBlocks = false;
    await readThenAbort(stream, controller, async (chunk) => {
      if (chunk.choices[0]?.text) n++;
      if (n < 3) return false;
      sawBlocks = metricValue(await metrics(server), 'arle_kv_blocks_used') > usedBefore;
      return true;
    });
    assert.ok(sawBlocks, 'the running stream held KV blocks');
    await waitForMetrics(server, (s) => metricValue(s, 'arle_kv_blocks_used') === usedBefore &&
      metricValue(s, 'arle_num_requests_running') === 0, `arle_kv_blocks_used back to ${usedBefore}`, 3000);
    const after = await waitForMetrics(server,
      (s) => metricValue(s, 'arle_request_finish_total', { finish_reason: 'abort' }) === abortsBefore + 1,
      'one more abort finish');
    assert.equal(metricValue(after, 'arle_requests_total', { status: '499' }) >= 1, true, 'counted as 499');
    const res = await client.completions.create({ model: server.model, prompt: script('still here'), max_tokens: 20 });
    assert.equal(res.choices[0].text, 'still here');
  });

  test('queue full: 503 with Retry-After, in the envelope and as the client\'s APIError', async () => {
    // A runs (max-seqs 1), B waits (max-queue 1), C is refused.
    const controller = new AbortController();
    const a = await client.completions.create({
      model: server.model, prompt: 'letters', max_tokens: 400, stream: true,
    }, { signal: controller.signal });
    const aIter = a[Symbol.asyncIterator]();
    await aIter.next();  // A has produced a token: it is running
    const b = client.completions.create({ model: server.model, prompt: script('B done'), max_tokens: 20 });
    await waitForMetrics(server, (s) => metricValue(s, 'arle_num_requests_waiting') === 1, 'B queued');
    const body = { model: server.model, prompt: 'C', max_tokens: 2 };
    const raw = await postJson(server, '/v1/completions', body);
    const e = assertErrorEnvelope(raw, 503);
    assert.ok(/queue|capacity|busy|overloaded/i.test(e.message), `message says why: ${e.message}`);
    assert.match(String(raw.headers['retry-after']), /^\d+$/, 'Retry-After in seconds');
    let err;
    try {
      await client.chat.completions.create({ model: server.model, messages: [{ role: 'user', content: 'C' }], max_tokens: 2 });
    } catch (x) {
      err = x;
    }
    assert.ok(err instanceof OpenAI.APIError, `expected an APIError, got ${err}`);
    assert.equal(err.status, 503);
    assert.match(String(err.headers.get('retry-after')), /^\d+$/);
    assert.equal(typeof err.error.message, 'string');
    controller.abort();
    await aIter.next().catch(() => {});
    const bRes = await b;
    assert.equal(bRes.choices[0].text, 'B done', 'the queued request runs once A is gone');
  });
});

describe('scripted server, --max-queue 2 (100 ms steps)', () => {
  let server;
  let client;

  before(async () => {
    server = await startScripted(['--max-seqs', '1', '--max-queue', '2', '--step-delay-ms', '100']);
    client = server.client();
  });
  after(async () => {
    await server?.stop();
  });

  test('exactly --max-queue requests wait; the next one gets 503', async () => {
    const controller = new AbortController();
    const a = await client.completions.create({
      model: server.model, prompt: 'letters', max_tokens: 400, stream: true,
    }, { signal: controller.signal });
    const aIter = a[Symbol.asyncIterator]();
    await aIter.next();  // A is running
    // B and C arrive together, within one engine step: both fit in a queue of 2.
    const bc = ['B', 'C'].map((x) => client.completions.create({ model: server.model, prompt: script(x), max_tokens: 5 }));
    const refused = Promise.race(bc.map((p) => p.then(() => new Promise(() => {}), (e) => ({ refused: e }))));
    const queued = waitForMetrics(server, (s) => metricValue(s, 'arle_num_requests_waiting') === 2, 'B and C queued', 5000)
      .then(() => ({ queued: true }), (e) => ({ timeout: e }));
    const first = await Promise.race([refused, queued]);
    if (!first.queued) {
      controller.abort();
      await Promise.allSettled(bc);
      assert.fail(first.refused ? `B or C was refused with only 2 waiting (max-queue 2): ${first.refused}` : first.timeout);
    }
    const d = await postJson(server, '/v1/completions', { model: server.model, prompt: 'D', max_tokens: 2 });
    assertErrorEnvelope(d, 503);
    controller.abort();
    await aIter.next().catch(() => {});
    const [b, c] = await Promise.all(bc);
    assert.equal(b.choices[0].text, 'B');
    assert.equal(c.choices[0].text, 'C');
  });
});

describe('scripted server shutdown', () => {
  test('SIGTERM cancels a long stream cleanly (finish_reason abort) and exits 0', async () => {
    const server = await startScripted(['--step-delay-ms', '25']);
    const client = server.client();
    const stream = await client.chat.completions.create({
      model: server.model, messages: [{ role: 'user', content: 'no marker' }], max_tokens: 2000, stream: true,
    });
    const it = stream[Symbol.asyncIterator]();
    await it.next();
    const started = Date.now();
    const stopped = server.stop();
    let finish = null;
    for (;;) {
      const { value, done } = await it.next();
      if (done) break;
      finish = value.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(finish, 'abort');
    await stopped;
    assert.ok(Date.now() - started < 5000, 'the 50 s stream did not hold up the shutdown');
  });
});
