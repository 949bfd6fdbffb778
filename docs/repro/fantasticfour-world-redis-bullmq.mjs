// Minimal reproductions of MUST rules @fantasticfour/world-redis-bullmq@2.5.0 fails in docs/verdicts.md (spec 3).
// Run, with a Redis server on localhost:6379:
//   npm install @fantasticfour/world-redis-bullmq@2.5.0 && node fantasticfour-world-redis-bullmq.mjs
// Each case prints what a caller observes; the comment above it says what the contract expects.
import { createWorld } from '@fantasticfour/world-redis-bullmq';

const prefix = `repro${Date.now()}`;
const world = createWorld({ redis: process.env.WORKFLOW_REDIS_URL ?? 'redis://127.0.0.1:6379/9', keyPrefix: `${prefix}:`, jobPrefix: `${prefix}_` });
const show = (rule, what, value) => console.log(`${rule}: ${what} -> ${value}`);
const caught = async (fn) => {
  try {
    const got = await fn();
    return `returned ${JSON.stringify(got?.run?.runId ?? got)?.slice(0, 80)}`;
  } catch (e) {
    return `threw ${e.name} (status ${e.status}) "${e.message}"`;
  }
};
const input = new Uint8Array([0, 1]);
const runCreated = { eventType: 'run_created', specVersion: 3, eventData: { deploymentId: 'd', workflowName: 'wf', input } };

// EV-3: a client-supplied run id must be wrun_ + a ULID from the last 24 h (not 5 min ahead): else 400.
show('EV-3', 'run_created with runId "wrun_not-a-ulid"', await caught(() => world.events.create('wrun_not-a-ulid', runCreated)));

// the same idempotency key, enqueued twice before the first is acknowledged, is one message: one messageId.
// (No handler runs here, so neither message is acknowledged.)
const payload = { workflowName: 'wf', workflowRunId: 'wrun_x', workflowStartedAt: 0, stepId: 's' };
const first = await world.queue('__wkf_step_repro', payload, { idempotencyKey: 'one-key' });
const second = await world.queue('__wkf_step_repro', payload, { idempotencyKey: 'one-key' });
show('Q-3', 'messageId of two queue() calls with one idempotencyKey', `${first.messageId} / ${second.messageId}`);

// ST-1: readFromStream(name, -3) on a closed 10-chunk stream starts 3 chunks before the end.
for (let i = 0; i < 10; i++) await world.writeToStream('s', 'wrun_x', new Uint8Array([i]));
await world.closeStream('s', 'wrun_x');
const read = [];
const reader = (await world.readFromStream('s', -3)).getReader();
for (;;) {
  const { done, value } = await reader.read();
  if (done) break;
  read.push(...value);
}
show('ST-1', 'readFromStream("s", -3) of chunks 0..9', JSON.stringify(read));

await world.close?.();
process.exit(0);
