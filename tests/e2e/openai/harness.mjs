// Test harness for the openai e2e suite: starts `arle serve` (or arle_scripted_server) on port 0,
// parses its "listening on" line, waits for /health, and stops it with SIGTERM checking a graceful
// exit; plus raw HTTP, Prometheus parsing, /metrics polling and the OpenAI error envelope check.
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';

export const ARLE_BIN = process.env.ARLE_BIN;
export const SCRIPTED_BIN = process.env.ARLE_SCRIPTED_SERVER;
if (!ARLE_BIN || !SCRIPTED_BIN) {
  throw new Error('set ARLE_BIN and ARLE_SCRIPTED_SERVER (ctest does: tests/e2e/openai/CMakeLists.txt)');
}

// "arle serve: listening on http://HOST:PORT (model NAME)"
const LISTENING = /arle serve: listening on (http:\/\/([^\s:]+|\[[^\]]+\]):(\d+)) \(model (.+)\)/;

const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');  // a failed test must not leak servers
});

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A running server. `stderr` accumulates its log (printed when a test fails to start it).
export class Server {
  constructor(child, match, label) {
    this.child = child;
    this.url = match[1];
    this.host = match[2];
    this.port = Number(match[3]);
    this.model = match[4];
    this.baseURL = `${this.url}/v1`;
    this.label = label;
    this.stderr = '';
    this.exit = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  // An official client for this server; no retries (a 503 must reach the test).
  client(options = {}) {
    return new OpenAI({ baseURL: this.baseURL, apiKey: 'sk-unused', maxRetries: 0, timeout: 120_000, ...options });
  }

  // SIGTERM, then asserts a graceful exit (status 0) within `graceMs`.
  async stop(graceMs = 8000) {
    if (this.child.exitCode !== null || this.child.signalCode !== null) {
      running.delete(this.child);
      assert.fail(`${this.label} died before stop(): ${this.child.exitCode ?? this.child.signalCode}\n${this.stderr}`);
    }
    this.child.kill('SIGTERM');
    const timer = sleep(graceMs).then(() => 'timeout');
    const result = await Promise.race([this.exit, timer]);
    running.delete(this.child);
    if (result === 'timeout') {
      this.child.kill('SIGKILL');
      assert.fail(`${this.label} did not exit within ${graceMs} ms of SIGTERM\n${this.stderr.slice(-4000)}`);
    }
    assert.deepEqual(result, { code: 0, signal: null },
      `${this.label} must exit 0 on SIGTERM (graceful shutdown)\n${this.stderr.slice(-4000)}`);
  }
}

// Starts `binary args...` (which must print the "listening on" line on stderr), waits for it and
// for GET /health to answer 200.
export async function startServer(binary, args, { label = binary, timeoutMs = 60_000 } = {}) {
  const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  running.add(child);
  let log = '';
  const match = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label}: no "listening on" line within ${timeoutMs} ms\n${log}`)), timeoutMs);
    child.stderr.setEncoding('utf8');
    const onData = (chunk) => {
      log += chunk;
      const m = LISTENING.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    child.stderr.on('data', onData);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${label} exited (${code ?? signal}) before listening: ${binary} ${args.join(' ')}\n${log}`));
    });
  });
  const server = new Server(child, match, label);
  server.stderr = log;
  child.stderr.on('data', (chunk) => {
    server.stderr += chunk;
    if (server.stderr.length > 1 << 20) server.stderr = server.stderr.slice(-(1 << 19));
  });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(`${server.url}/health`);
      if (res.status === 200) break;
    } catch {
      // not accepting yet
    }
    if (Date.now() > deadline) throw new Error(`${label}: /health never answered 200\n${server.stderr}`);
    await sleep(50);
  }
  return server;
}

// `arle serve` on port 0 with extra flags (the built-in stories260K model unless --model is given).
export function startArle(args = [], options = {}) {
  return startServer(ARLE_BIN, ['serve', '--host', '127.0.0.1', '--port', '0', ...args],
    { label: 'arle serve', ...options });
}

export function startScripted(args = [], options = {}) {
  return startServer(SCRIPTED_BIN, ['--host', '127.0.0.1', '--port', '0', ...args],
    { label: 'arle_scripted_server', ...options });
}

// A temporary directory removed when the process exits.
export function tempDir(prefix = 'arle-e2e-') {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// A random-weight tiny Qwen3 (with the real Qwen3 tokenizer and chat template).
export function makeTinyQwen3() {
  const dir = join(tempDir(), 'tiny-qwen3');
  execFileSync(ARLE_BIN, ['model', 'init', '--arch', 'qwen3', '--preset', 'tiny', '--out', dir],
    { stdio: ['ignore', 'ignore', 'inherit'] });
  return dir;
}

// One HTTP request without the openai client (for malformed bodies, wrong methods, raw SSE).
// Resolves with {status, headers, body}; a server that answers before reading the whole body
// (413) may reset the upload, so a response that arrived wins over a write error.
export function rawRequest(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers } });
    let answered = false;
    req.on('response', (res) => {
      answered = true;
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { data += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: data }));
      res.on('error', reject);
    });
    req.on('error', (err) => { if (!answered) reject(err); });
    if (body !== undefined) req.write(body);
    req.end();
  });
}

export async function postJson(server, path, body, headers = {}) {
  const res = await rawRequest(`${server.url}${path}`, {
    method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { ...res, json: parseJsonOrNull(res.body) };
}

export async function getJson(server, path, headers = {}) {
  const res = await rawRequest(`${server.url}${path}`, { headers });
  return { ...res, json: parseJsonOrNull(res.body) };
}

function parseJsonOrNull(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

// Asserts OpenAI's error envelope {"error": {"message", "type", "param", "code"}} and returns the
// inner object. `param` and `code`: the expected values when given (null = must be null).
export function assertErrorEnvelope(res, status, { param, code, type } = {}) {
  assert.equal(res.status, status, `HTTP status (body: ${res.body})`);
  assert.match(String(res.headers['content-type']), /^application\/json/, 'an error is JSON');
  const body = JSON.parse(res.body);
  assert.deepEqual(Object.keys(body), ['error'], `envelope: ${res.body}`);
  const e = body.error;
  assert.deepEqual(Object.keys(e).sort(), ['code', 'message', 'param', 'type'], `error fields: ${res.body}`);
  assert.equal(typeof e.message, 'string');
  assert.ok(e.message.length > 0, 'a non-empty message');
  assert.equal(typeof e.type, 'string');
  assert.ok(e.param === null || typeof e.param === 'string');
  assert.ok(e.code === null || typeof e.code === 'string');
  if (param !== undefined) assert.equal(e.param, param, `param: ${res.body}`);
  if (code !== undefined) assert.equal(e.code, code, `code: ${res.body}`);
  if (type !== undefined) assert.equal(e.type, type, `type: ${res.body}`);
  return e;
}

// Runs `fn` (an openai client call) expecting an APIError of `status`; returns the error.
export async function expectApiError(fn, status, { param, code } = {}) {
  let error;
  try {
    await fn();
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof OpenAI.APIError, `expected an APIError ${status}, got ${error}`);
  assert.equal(error.status, status, `status of: ${error.message}`);
  assert.equal(typeof error.error?.message, 'string', 'error.error is the envelope\'s inner object');
  if (param !== undefined) assert.equal(error.param, param, `param of: ${error.message}`);
  if (code !== undefined) assert.equal(error.code, code, `code of: ${error.message}`);
  return error;
}

// Parses Prometheus text format 0.0.4 strictly (every line must be a comment, blank, or a valid
// sample). Returns [{name, labels, value}] and checks that every sample's metric family has a
// TYPE line before it.
export function parsePrometheus(text) {
  const samples = [];
  const types = new Map();
  const sampleRe = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$/;
  const labelRe = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)/;
  for (const [i, line] of text.split('\n').entries()) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) ?(.*)$/.exec(line);
      if (m && m[1] === 'TYPE') {
        assert.match(m[3], /^(counter|gauge|histogram|summary|untyped)$/, `line ${i + 1}: ${line}`);
        types.set(m[2], m[3]);
      }
      continue;
    }
    const m = sampleRe.exec(line);
    assert.ok(m, `line ${i + 1} is not a Prometheus sample: ${JSON.stringify(line)}`);
    const labels = {};
    let rest = m[3] ?? '';
    while (rest.length > 0) {
      const l = labelRe.exec(rest);
      assert.ok(l, `line ${i + 1}: bad labels ${JSON.stringify(m[3])}`);
      labels[l[1]] = l[2];
      rest = rest.slice(l[0].length);
    }
    const value = m[4] === '+Inf' ? Infinity : m[4] === '-Inf' ? -Infinity : Number(m[4]);
    assert.ok(m[4] === 'NaN' || !Number.isNaN(value), `line ${i + 1}: bad value ${m[4]}`);
    const family = m[1].replace(/_(bucket|sum|count)$/, '');
    assert.ok(types.has(m[1]) || types.has(family), `line ${i + 1}: no # TYPE for ${m[1]}`);
    samples.push({ name: m[1], labels, value });
  }
  return samples;
}

// The value of the sample `name` whose labels include `labels` (0 when absent: counters by
// label, such as requests by status, only appear once counted).
export function metricValue(samples, name, labels = {}) {
  const found = samples.filter((s) => s.name === name &&
    Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  assert.ok(found.length <= 1, `several samples match ${name} ${JSON.stringify(labels)}`);
  return found.length ? found[0].value : 0;
}

export async function metrics(server) {
  const res = await rawRequest(`${server.url}/metrics`);
  assert.equal(res.status, 200);
  return parsePrometheus(res.body);
}

// Polls /metrics until `predicate(samples)` holds; fails after `timeoutMs` with the last values.
export async function waitForMetrics(server, predicate, what, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  let samples;
  for (;;) {
    samples = await metrics(server);
    if (predicate(samples)) return samples;
    if (Date.now() > deadline) {
      const show = samples.filter((s) => !s.name.endsWith('_bucket'))
        .map((s) => `${s.name}${JSON.stringify(s.labels)} ${s.value}`).join('\n');
      assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}; /metrics:\n${show}`);
    }
    await sleep(50);
  }
}

// Token count of a text or chat prompt through the server's /tokenize.
export async function tokenCount(server, body) {
  const res = await postJson(server, '/tokenize', body);
  assert.equal(res.status, 200, `/tokenize: ${res.body}`);
  assert.equal(res.json.count, res.json.tokens.length);
  return res.json.count;
}

// Reads a chat stream into {chunks, choices: [{content, reasoning, toolCalls, finish, logprobs}],
// usage}, checking the invariants every chunk must hold.
export async function collectChatStream(stream) {
  const chunks = [];
  const choices = [];
  let usage = null;
  for await (const chunk of stream) {
    chunks.push(chunk);
    assert.equal(chunk.object, 'chat.completion.chunk');
    assert.equal(chunk.id, chunks[0].id, 'one id per stream');
    if (chunk.usage) {
      assert.equal(usage, null, 'one usage chunk');
      assert.deepEqual(chunk.choices, [], 'the usage chunk has no choices');
      usage = chunk.usage;
      continue;
    }
    assert.equal(usage, null, 'the usage chunk is the last one');
    for (const c of chunk.choices) {
      const acc = (choices[c.index] ??= { content: '', reasoning: '', toolCalls: [], finish: null, logprobs: [], role: null, nChunks: 0 });
      acc.nChunks++;
      assert.equal(acc.finish, null, `choice ${c.index} got a chunk after its finish_reason`);
      if (c.delta.role) {
        assert.equal(acc.role, null, 'role only in the first chunk');
        acc.role = c.delta.role;
      }
      if (typeof c.delta.content === 'string') acc.content += c.delta.content;
      if (typeof c.delta.reasoning_content === 'string') acc.reasoning += c.delta.reasoning_content;
      for (const t of c.delta.tool_calls ?? []) {
        const call = (acc.toolCalls[t.index] ??= { id: null, type: null, name: '', arguments: '' });
        if (t.id) call.id = t.id;
        if (t.type) call.type = t.type;
        if (t.function?.name) call.name += t.function.name;
        if (t.function?.arguments) call.arguments += t.function.arguments;
      }
      if (c.logprobs?.content) acc.logprobs.push(...c.logprobs.content);
      if (c.finish_reason) acc.finish = c.finish_reason;
    }
  }
  return { chunks, choices, usage };
}

export async function collectCompletionStream(stream) {
  const chunks = [];
  const choices = [];
  let usage = null;
  for await (const chunk of stream) {
    chunks.push(chunk);
    assert.equal(chunk.object, 'text_completion');
    assert.equal(chunk.id, chunks[0].id, 'one id per stream');
    if (chunk.usage) {
      assert.equal(usage, null, 'one usage chunk');
      assert.deepEqual(chunk.choices, [], 'the usage chunk has no choices');
      usage = chunk.usage;
      continue;
    }
    assert.equal(usage, null, 'the usage chunk is the last one');
    for (const c of chunk.choices) {
      const acc = (choices[c.index] ??= { text: '', finish: null });
      assert.equal(acc.finish, null, `choice ${c.index} got a chunk after its finish_reason`);
      acc.text += c.text;
      if (c.finish_reason) acc.finish = c.finish_reason;
    }
  }
  return { chunks, choices, usage };
}

// Reads `stream` until `onChunk(chunk)` returns true, then aborts `controller` and drains what the
// client still yields. The openai client ends an aborted stream's iteration quietly (or with an
// abort error, depending on timing); anything else is rethrown. Returns the chunks read.
export async function readThenAbort(stream, controller, onChunk) {
  const chunks = [];
  try {
    for await (const chunk of stream) {
      if (controller.signal.aborted) break;
      chunks.push(chunk);
      if (await onChunk(chunk)) controller.abort();
    }
  } catch (e) {
    if (!(e instanceof OpenAI.APIUserAbortError || e?.name === 'AbortError')) throw e;
  }
  assert.ok(controller.signal.aborted, 'the stream ended before it was aborted');
  return chunks;
}
