// The Node side of the bridge: loads one npm World and serves it over JSON lines.
//
// stdin carries requests from Python, one JSON object per line; replies and
// notifications go to stdout the same way. Everything the World itself prints
// to stdout is moved to stderr first, so the channel carries protocol lines
// only. Values use worlds_sdk.codec's tags: {"$b": base64} is a Uint8Array,
// {"$t": iso} a Date, {"$o": {...}} an object whose keys start with "$".
//
// argv: [node, shim.mjs, <install dir>, <package name>, <factory export or "">]

import { AsyncLocalStorage } from 'node:async_hooks';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';

const protocolWrite = process.stdout.write.bind(process.stdout);
process.stdout.write = process.stderr.write.bind(process.stderr);
console.log = console.error;
console.info = console.error;
console.debug = console.error;

const [installDir, packageName, factoryName] = process.argv.slice(2);
const ENVELOPE = '__worlds';

function send(message) {
  protocolWrite(`${JSON.stringify(message)}\n`);
}

function toWire(value) {
  if (value === undefined || value === null) return null;
  if (value instanceof Uint8Array) return { $b: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  if (value instanceof Date) return { $t: value.toISOString() };
  if (Array.isArray(value)) return value.map(toWire);
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'object') {
    const out = {};
    let tagged = false;
    for (const [key, inner] of Object.entries(value)) {
      if (inner === undefined || typeof inner === 'function') continue;
      out[key] = toWire(inner);
      if (key.startsWith('$')) tagged = true;
    }
    return tagged ? { $o: out } : out;
  }
  return value;
}

function fromWire(value) {
  if (Array.isArray(value)) return value.map(fromWire);
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value);
    if (keys.length === 1) {
      if (keys[0] === '$b') return new Uint8Array(Buffer.from(value.$b, 'base64'));
      if (keys[0] === '$t') return new Date(value.$t);
      if (keys[0] === '$o') return Object.fromEntries(Object.entries(value.$o).map(([k, v]) => [k, fromWire(v)]));
    }
    return Object.fromEntries(keys.map((k) => [k, fromWire(value[k])]));
  }
  return value;
}

function describeError(error) {
  if (!(error instanceof Error)) {
    return { name: 'NonError', message: String(error), stack: null };
  }
  const described = { name: error.name, message: error.message, stack: error.stack ?? null };
  for (const key of ['status', 'retryAfter', 'code', 'runSpecVersion', 'worldSpecVersion']) {
    if (error[key] !== undefined) described[key] = toWire(error[key]);
  }
  if (error.constructor && error.constructor.name && error.constructor.name !== error.name) {
    described.className = error.constructor.name;
  }
  return described;
}

async function loadWorld() {
  const require = createRequire(join(installDir, 'package.json'));
  let entry;
  try {
    entry = require.resolve(packageName);
  } catch {
    entry = join(installDir, 'node_modules', packageName);
  }
  const mod = await import(pathToFileURL(entry).href);
  // As upstream's runtime loads a World: a factory named by our overlay (world-local's
  // createLocalWorld is built into upstream's runtime), else createWorld, else the default export.
  const candidates = [factoryName && mod[factoryName], mod.createWorld, mod.default?.createWorld, mod.default];
  const factory = candidates.find((candidate) => typeof candidate === 'function');
  if (!factory) {
    throw new Error(`${packageName} exports neither createWorld nor a default function`);
  }
  return await factory();
}

// --- queue deliveries -------------------------------------------------------

const pendingDeliveries = new Map();
let deliverySeq = 0;
const httpHandlers = new Map(); // prefix -> (Request) => Promise<Response>
// The World's queue handler passes only attempt/queueName/messageId to the handler; the
// headers a producer set travel on the delivery request, so keep them for the handler here.
const deliveryHeaders = new AsyncLocalStorage();

// What Node's fetch (undici) adds to every request it sends: a World that delivers with fetch did not
// get these from the producer, so they are not the message's headers.
const FETCH_DEFAULTS = { accept: '*/*', 'accept-language': '*', 'sec-fetch-mode': 'cors', 'user-agent': 'node' };

function withHeaders(handler) {
  return (request) => {
    const headers = {};
    for (const [key, value] of request.headers.entries()) {
      if (key === 'content-type' || key === 'content-length' || key.startsWith('x-vqs-')) continue;
      if (FETCH_DEFAULTS[key] === value) continue;
      headers[key] = value;
    }
    return deliveryHeaders.run(headers, () => handler(request));
  };
}

function pythonHandler(prefix) {
  return (message, meta) =>
    new Promise((resolve, reject) => {
      const id = ++deliverySeq;
      pendingDeliveries.set(id, { resolve, reject });
      const wrapped = message !== null && typeof message === 'object' && ENVELOPE in message;
      send({
        deliver: id,
        prefix,
        // A message of the World's own (a run re-enqueued by start()) is upstream's payload, not ours.
        own: !wrapped,
        message: toWire(wrapped ? message[ENVELOPE] : message),
        meta: {
          messageId: meta.messageId,
          queueName: meta.queueName,
          attempt: meta.attempt,
          headers: deliveryHeaders.getStore() ?? {},
        },
      });
    });
}

function settleDelivery({ delivered, outcome }) {
  const pending = pendingDeliveries.get(delivered);
  if (!pending) return;
  pendingDeliveries.delete(delivered);
  if (outcome.error !== undefined) pending.reject(new Error(outcome.error));
  else if (outcome.timeoutSeconds !== undefined) pending.resolve({ timeoutSeconds: outcome.timeoutSeconds });
  else pending.resolve(undefined);
}

let server = null;

async function startHttpServer() {
  // Worlds that deliver over HTTP POST each job to $WORKFLOW_LOCAL_BASE_URL (or localhost:$PORT)/{flow,step}:
  // answer with the World's own createQueueHandler, so the reply format is its own.
  server = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const queueName = req.headers['x-vqs-queue-name'] ?? '';
    const prefix = [...httpHandlers.keys()].find((p) => queueName.startsWith(p));
    if (!prefix) {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: `no handler registered for ${queueName}` }));
      return;
    }
    // Headers the HTTP transport added, not the World: the handler sees what a direct call would.
    const transport = new Set(['host', 'connection', 'keep-alive', 'transfer-encoding', 'content-length', 'accept-encoding']);
    const request = new Request(`http://127.0.0.1${req.url}`, {
      method: req.method,
      headers: Object.entries(req.headers).filter(([k, v]) => typeof v === 'string' && !transport.has(k)),
      body: Buffer.concat(chunks),
    });
    try {
      const response = await httpHandlers.get(prefix)(request);
      res.writeHead(response.status, Object.fromEntries(response.headers.entries()));
      res.end(Buffer.from(await response.arrayBuffer()));
    } catch (error) {
      res.writeHead(500);
      res.end(String(error));
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  process.env.WORKFLOW_LOCAL_BASE_URL = `http://127.0.0.1:${server.address().port}`;
  // Upstream's other default is http://localhost:$PORT (the app's own port): the community starter uses only that.
  process.env.PORT = String(server.address().port);
}

// --- streams ----------------------------------------------------------------

const readers = new Map();

async function pump(streamId, stream) {
  const reader = stream.getReader();
  readers.set(streamId, reader);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const bytes = typeof value === 'string' ? new TextEncoder().encode(value) : value;
      send({ stream: streamId, chunk: toWire(bytes) });
    }
    send({ stream: streamId, end: true });
  } catch (error) {
    send({ stream: streamId, error: describeError(error) });
  } finally {
    readers.delete(streamId);
  }
}

// --- requests ---------------------------------------------------------------

let world = null;

function target(path) {
  const parts = path.split('.');
  let owner = world;
  for (const part of parts.slice(0, -1)) owner = owner?.[part];
  const fn = owner?.[parts.at(-1)];
  if (typeof fn !== 'function') throw new Error(`the World has no method ${path}`);
  return fn.bind(owner);
}

const special = {
  async open() {
    await startHttpServer();
    world = await loadWorld();
    return {
      specVersion: world.specVersion ?? null,
      writeToStreamMulti: typeof world.writeToStreamMulti === 'function',
      directHandlers: typeof world.registerHandler === 'function',
      node: process.version,
    };
  },
  async ping() {
    return null;
  },
  async register(prefix) {
    const handler = withHeaders(world.createQueueHandler(prefix, pythonHandler(prefix)));
    if (typeof world.registerHandler === 'function') world.registerHandler(prefix, handler);
    httpHandlers.set(prefix, handler);
    return null;
  },
  async send(queueName, message, opts) {
    // Upstream types queue messages (QueuePayload) and some Worlds validate them on delivery;
    // the suite's message rides in an extra field of a valid step payload.
    const envelope = { workflowName: 'worlds', workflowRunId: 'wrun_worlds', workflowStartedAt: 0, stepId: 'worlds', [ENVELOPE]: message };
    return await world.queue(queueName, envelope, opts ?? {});
  },
  async read(streamId, name, startIndex) {
    const stream = await world.readFromStream(name, startIndex);
    pump(streamId, stream);
    return null;
  },
  async cancel(streamId) {
    await readers.get(streamId)?.cancel();
    return null;
  },
  async start() {
    if (typeof world.start === 'function') await world.start();
    return null;
  },
  async close() {
    if (world && typeof world.close === 'function') await world.close();
    server?.close();
    return null;
  },
};

async function handle({ id, method, args }) {
  try {
    const decoded = fromWire(args ?? []);
    const fn = method.startsWith('bridge.') ? special[method.slice(7)] : target(method);
    if (!fn) throw new Error(`unknown bridge method ${method}`);
    const result = await fn(...decoded);
    send({ id, result: toWire(result) });
  } catch (error) {
    send({ id, error: describeError(error) });
  }
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (!line.trim()) return;
  const message = JSON.parse(line);
  if (message.delivered !== undefined) settleDelivery(message);
  else handle(message);
});
lines.on('close', () => process.exit(0));
process.on('unhandledRejection', (error) => {
  console.error('[worlds bridge] unhandled rejection in the World:', error);
});
