// Minimal reproductions of the MUST rules @workflow/world-local@4.4.1 fails in docs/verdicts.md.
// Run: npm install @workflow/world-local@4.4.1 && node world-local.mjs
// Each case prints what a caller observes; the comment above it says what the contract expects.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalWorld } from '@workflow/world-local';

const world = createLocalWorld({ dataDir: mkdtempSync(join(tmpdir(), 'repro-')) });
await world.start?.();
const show = (rule, what, value) => console.log(`${rule}: ${what} -> ${value}`);
const caught = async (fn) => {
  try {
    return `returned ${JSON.stringify(await fn())?.slice(0, 120)}`;
  } catch (e) {
    return `threw ${e.name} (status ${e.status}) "${e.message}"`;
  }
};
const input = new Uint8Array([0, 1]);
const newRun = async () =>
  (await world.events.create(null, { eventType: 'run_created', specVersion: 3, eventData: { deploymentId: 'd', workflowName: 'wf', input } })).run.runId;

// ER-1: a read miss is a typed not-found (status 404).
const r1 = await newRun();
show('ER-1', 'steps.get(run, "nope")', await caught(() => world.steps.get(r1, 'nope')));

// EV-3: a malformed client run id and a non-run_created event without a run id are validation errors (400).
show('EV-3', 'run_created with runId "wrun_not-a-ulid"', await caught(() =>
  world.events.create('wrun_not-a-ulid', { eventType: 'run_created', specVersion: 3, eventData: { deploymentId: 'd', workflowName: 'wf', input } })));
show('EV-3', 'run_started with runId null', await caught(() => world.events.create(null, { eventType: 'run_started', specVersion: 3 })));

// EV-5: concurrent run_started on a pending run appends exactly one run_started.
const r5 = await newRun();
await Promise.all(Array.from({ length: 8 }, () => world.events.create(r5, { eventType: 'run_started', specVersion: 3 }).catch(() => {})));
const started = (await world.events.list({ runId: r5 })).data.filter((e) => e.eventType === 'run_started').length;
show('EV-5', '8 concurrent run_started on one pending run, run_started events appended', started);

// EV-6: run_started on a missing run with bootstrap data appends a synthetic run_created *before* run_started;
// without bootstrap data it is WorkflowRunNotFoundError.
const missing = 'wrun_01' + 'K'.repeat(24);
await world.events.create(missing, { eventType: 'run_started', specVersion: 3, eventData: { deploymentId: 'd', workflowName: 'wf', input } });
show('EV-6', 'event order after resilient start', (await world.events.list({ runId: missing })).data.map((e) => e.eventType).join(', '));
show('EV-6', 'run_started on a missing run without bootstrap data', await caught(() =>
  world.events.create('wrun_01' + 'M'.repeat(24), { eventType: 'run_started', specVersion: 3 })));

// EV-8: event on an unknown step -> StepNotFoundError (404); duplicate step_created -> 409.
const r8 = await newRun();
await world.events.create(r8, { eventType: 'run_started', specVersion: 3 });
show('EV-8', 'step_started on unknown step', await caught(() => world.events.create(r8, { eventType: 'step_started', correlationId: 'missing', specVersion: 3 })));
const step = { eventType: 'step_created', correlationId: 's1', specVersion: 3, eventData: { stepName: 's', input } };
const twice = await Promise.allSettled([world.events.create(r8, step), world.events.create(r8, step)]);
show('EV-8', 'two concurrent step_created for one step id, outcomes', twice.map((o) => o.status).join(', '));

// EV-9: wait_completed on an unknown wait -> WaitNotFoundError (404).
show('EV-9', 'wait_completed on unknown wait', await caught(() => world.events.create(r8, { eventType: 'wait_completed', correlationId: 'nope', specVersion: 3 })));

// EV-10: a run from a newer spec than the World's (specVersion 99) -> RunNotSupportedError.
show('EV-10', 'run_created with specVersion 99', await caught(() =>
  world.events.create(null, { eventType: 'run_created', specVersion: 99, eventData: { deploymentId: 'd', workflowName: 'wf', input } })));

// HK-3: a run reaching a terminal state disposes its waits; completing one afterwards is WaitNotFoundError (404).
const r3 = await newRun();
await world.events.create(r3, { eventType: 'run_started', specVersion: 3 });
await world.events.create(r3, { eventType: 'wait_created', correlationId: 'w1', specVersion: 3, eventData: { resumeAt: new Date(Date.now() + 60_000) } });
await world.events.create(r3, { eventType: 'run_completed', specVersion: 3, eventData: { output: input } });
show('HK-3', 'wait_completed on the disposed wait of a completed run', await caught(() =>
  world.events.create(r3, { eventType: 'wait_completed', correlationId: 'w1', specVersion: 3 })));

// RD-1: resolveData "none" strips hook metadata.
const rh = await newRun();
await world.events.create(rh, { eventType: 'run_started', specVersion: 3 });
await world.events.create(rh, { eventType: 'hook_created', correlationId: 'h1', specVersion: 3, eventData: { token: 't-' + rh, metadata: new Uint8Array([0, 109]) } });
show('RD-1', 'hooks.get(h1, {resolveData: "none"}).metadata', (await world.hooks.get('h1', { resolveData: 'none' })).metadata);
show('RD-1', 'hooks.getByToken(token, {resolveData: "none"}).metadata', (await world.hooks.getByToken('t-' + rh, { resolveData: 'none' })).metadata);

// QN-1: an invalid queue name is a validation error (400).
show('QN-1', 'queue("orders", ...)', await caught(() => world.queue('orders', { runId: 'x' })));

// ST-1: chunks come back exactly, the empty one included.
for (const chunk of [new Uint8Array([0, 255]), new Uint8Array(0), 'x']) await world.writeToStream('s1', 'wrun_s', chunk);
await world.closeStream('s1', 'wrun_s');
const read = [];
for await (const c of await world.readFromStream('s1')) read.push(Array.from(c).join(' ') || '<empty>');
show('ST-1', 'chunks written [00 ff] [] "x", read back', read.map((c) => `[${c}]`).join(' '));

// PL-1: user data comes back as it was given; an empty eventData object is data, not "no data".
const rp = await newRun();
await world.events.create(rp, { eventType: 'run_started', specVersion: 3, eventData: {} });
const startedData = (await world.events.list({ runId: rp })).data.find((e) => e.eventType === 'run_started').eventData;
show('PL-1', 'run_started with eventData {}, eventData listed back', JSON.stringify(startedData));

// QO-1: queue() refuses a negative delay and an empty idempotency key (or deployment id) with a validation error (400).
show('QO-1', 'queue(..., {delaySeconds: -1})', await caught(() => world.queue('__wkf_step_qo', { runId: 'x' }, { delaySeconds: -1 })));
show('QO-1', 'queue(..., {idempotencyKey: ""})', await caught(() => world.queue('__wkf_step_qo', { runId: 'x' }, { idempotencyKey: '' })));
show('QO-1', 'queue(..., {deploymentId: ""})', await caught(() => world.queue('__wkf_step_qo', { runId: 'x' }, { deploymentId: '' })));

// EV-12: a hook event names a hook of its own run; run B's hook is not found from run A (404), A's log untouched.
const ea = await newRun(), eb = await newRun();
for (const r of [ea, eb]) await world.events.create(r, { eventType: 'run_started', specVersion: 3 });
await world.events.create(eb, { eventType: 'hook_created', correlationId: 'hook_b', specVersion: 3, eventData: { token: 'tok-b-' + eb } });
show('EV-12', "hook_received in run A on run B's hook", await caught(() =>
  world.events.create(ea, { eventType: 'hook_received', correlationId: 'hook_b', specVersion: 3, eventData: { payload: input } })));
show('EV-12', "hook_disposed in run A on run B's hook", await caught(() =>
  world.events.create(ea, { eventType: 'hook_disposed', correlationId: 'hook_b', specVersion: 3 })));

await world.close?.();
process.exit(0);
