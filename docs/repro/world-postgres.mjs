// Minimal reproductions of the MUST rules @workflow/world-postgres@4.3.7 fails in docs/verdicts.md.
// Run against an empty database: npm install @workflow/world-postgres@4.3.7
//   WORKFLOW_POSTGRES_URL=postgres://... node node_modules/@workflow/world-postgres/bin/setup.js
//   WORKFLOW_POSTGRES_URL=postgres://... node world-postgres.mjs
// Each case prints what a caller observes; the comment above it says what the contract expects.
import { createServer } from 'node:http';
import { createWorld } from '@workflow/world-postgres';

// Queue deliveries are POSTed to WORKFLOW_LOCAL_BASE_URL: serve them with the World's own handler.
const deliveries = [];
let world;
const server = createServer(async (req, res) => {
  const body = [];
  for await (const c of req) body.push(c);
  const handler = world.createQueueHandler('__wkf_step_', async (message, meta) => {
    deliveries.push(meta.attempt);
    return deliveries.length === 1 ? { timeoutSeconds: 1 } : undefined; // reschedule once, then ack
  });
  const response = await handler(new Request(`http://x${req.url}`, { method: 'POST', headers: req.headers, body: Buffer.concat(body) }));
  res.writeHead(response.status).end(await response.text());
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
process.env.WORKFLOW_LOCAL_BASE_URL = `http://127.0.0.1:${server.address().port}`;
world = createWorld();
await world.start();

const show = (rule, what, value) => console.log(`${rule}: ${what} -> ${value}`);
const caught = async (fn) => {
  try {
    return `returned ${JSON.stringify(await fn())?.slice(0, 100)}`;
  } catch (e) {
    return `threw ${e.name} (status ${e.status}) "${e.message.slice(0, 160)}"`;
  }
};
const input = new Uint8Array([0, 1]);
const created = (eventData = {}) => ({ eventType: 'run_created', specVersion: 3, eventData: { deploymentId: 'd', workflowName: 'wf', input, ...eventData } });
const newRun = async () => {
  const runId = (await world.events.create(null, created())).run.runId;
  await world.events.create(runId, { eventType: 'run_started', specVersion: 3 });
  return runId;
};

// EV-2 (and the id format of §2): event ids are evnt_<ULID>.
const r2 = await newRun();
show('EV-2', 'eventId of a created event', (await world.events.list({ runId: r2 })).data[0].eventId.slice(0, 5) + '…');

// ER-1: a read miss is a typed not-found (status 404); step ids are per run, so two runs may use one.
show('ER-1', 'steps.get(run, "nope")', await caught(() => world.steps.get(r2, 'nope')));
const r1 = await newRun();
const step = { eventType: 'step_created', correlationId: 'same-step', specVersion: 3, eventData: { stepName: 's', input } };
await world.events.create(r1, step);
show('ER-1', 'step_created "same-step" in a second run', await caught(() => world.events.create(r2, step)));

// EV-6: run_started on a missing run without bootstrap data -> WorkflowRunNotFoundError.
show('EV-6', 'run_started on a missing run without bootstrap data', await caught(() =>
  world.events.create('wrun_01' + 'M'.repeat(24), { eventType: 'run_started', specVersion: 3 })));

// EV-8: step_started on a non-running step of a terminal run -> RunExpiredError (410).
const r8 = await newRun();
await world.events.create(r8, { ...step, correlationId: 's8' });
await world.events.create(r8, { eventType: 'run_cancelled', specVersion: 3 });
show('EV-8', 'step_started on a pending step of a cancelled run', await caught(() =>
  world.events.create(r8, { eventType: 'step_started', correlationId: 's8', specVersion: 3 })));

// HK-2: hook_created with a token held by another run's live hook appends a hook_conflict event.
const ra = await newRun();
const rb = await newRun();
await world.events.create(ra, { eventType: 'hook_created', correlationId: 'hook_a', specVersion: 3, eventData: { token: 'tok' } });
show('HK-2', 'hook_created with a token held by another run', await caught(() =>
  world.events.create(rb, { eventType: 'hook_created', correlationId: 'hook_b', specVersion: 3, eventData: { token: 'tok' } })));

// HK-4: two concurrent hook_disposed on one hook: one wins, the other is 409.
const rd = await newRun();
await world.events.create(rd, { eventType: 'hook_created', correlationId: 'hook_d', specVersion: 3, eventData: { token: 'tok-d' } });
const disposals = await Promise.allSettled([1, 2].map(() => world.events.create(rd, { eventType: 'hook_disposed', correlationId: 'hook_d', specVersion: 3 })));
show('HK-4', 'two concurrent hook_disposed', disposals.map((o) => (o.status === 'fulfilled' ? 'ok' : `${o.reason.name} ${o.reason.status}`)).join(', '));

// PL-1: identifiers are arbitrary strings, NUL included.
const rp = await newRun();
show('PL-1', 'step_created with step name "a\\u0000b"', await caught(() =>
  world.events.create(rp, { eventType: 'step_created', correlationId: 'p1', specVersion: 3, eventData: { stepName: 'a\u0000b', input } })));

// RD-1: resolveData "none" strips input/output/error from the result of events.create too.
show('RD-1', 'events.create(run_created, {resolveData: "none"}).run.input', (await world.events.create(null, created(), { resolveData: 'none' })).run.input);

// the same idempotencyKey while the first is unacknowledged yields the same messageId.
const ids = [];
for (let i = 0; i < 2; i++) ids.push((await world.queue('__wkf_step_idem', { __healthCheck: true, correlationId: 'q3' }, { idempotencyKey: 'k', delaySeconds: 60 })).messageId);
show('Q-3', 'two queue() with idempotencyKey "k"', ids[0] === ids[1] ? 'same messageId' : `different messageIds ${ids.join(' ')}`);

// after the handler answers {timeoutSeconds: 1} the message is delivered again with attempt + 1.
await world.queue('__wkf_step_resched', { __healthCheck: true, correlationId: 'q4' });
for (let i = 0; i < 100 && deliveries.length < 2; i++) await new Promise((r) => setTimeout(r, 100));
show('Q-4', 'attempts seen by the handler (rescheduled once)', deliveries.join(', '));

// ST-1: chunks come back exactly, the empty one included.
for (const chunk of [new Uint8Array([0, 255]), new Uint8Array(0), 'x']) await world.writeToStream('s1', 'wrun_s', chunk);
await world.closeStream('s1', 'wrun_s');
const read = [];
for await (const c of await world.readFromStream('s1')) read.push(Array.from(c).join(' '));
show('ST-1', 'chunks written [00 ff] [] "x", read back', read.map((c) => `[${c}]`).join(' '));

// PL-1: an empty eventData object is data, not "no data".
const rq = await newRun();
const rq2 = (await world.events.create(null, created())).run.runId;
await world.events.create(rq2, { eventType: 'run_started', specVersion: 3, eventData: {} });
const startedData = (await world.events.list({ runId: rq2 })).data.find((e) => e.eventType === 'run_started').eventData;
show('PL-1', 'run_started with eventData {}, eventData listed back', JSON.stringify(startedData));

// QO-1: queue() refuses a negative delay and an empty idempotency key with a validation error (400).
show('QO-1', 'queue(..., {delaySeconds: -1})', await caught(() => world.queue('__wkf_step_qo', { __healthCheck: true, correlationId: 'qo' }, { delaySeconds: -1 })));
show('QO-1', 'queue(..., {idempotencyKey: ""})', await caught(() => world.queue('__wkf_step_qo', { __healthCheck: true, correlationId: 'qo' }, { idempotencyKey: '' })));

// EV-12: a hook event names a hook of its own run; run B's hook is not found from run A (404), A's log untouched.
const eb = await newRun();
await world.events.create(eb, { eventType: 'hook_created', correlationId: 'hook_eb', specVersion: 3, eventData: { token: 'tok-eb' } });
show('EV-12', "hook_disposed in run A on run B's hook", await caught(() =>
  world.events.create(rq, { eventType: 'hook_disposed', correlationId: 'hook_eb', specVersion: 3 })));
show('EV-12', "run B's hook after that", await caught(() => world.hooks.get('hook_eb')));

// EV-11: sortOrder 'asc' and 'desc' list runs in opposite orders.
const order = async (sortOrder) => (await world.runs.list({ pagination: { limit: 3, sortOrder } })).data.map((r) => r.runId.slice(-4));
show('EV-11', "runs.list sortOrder 'asc' / 'desc' (first three ids)", `${(await order('asc')).join(',')} / ${(await order('desc')).join(',')}`);

await world.close();
server.close();
process.exit(0);
