// Minimal reproduction of the MUST rule @workflow-worlds/starter@0.2.1 fails in docs/verdicts.md (spec-2 profile).
// Run: npm install @workflow-worlds/starter@0.2.1 && node workflow-worlds-starter.mjs
// The case prints what a caller observes; the comment above it says what the contract expects.
import { createWorld } from '@workflow-worlds/starter';

const world = createWorld();
const show = (rule, what, value) => console.log(`${rule}: ${what} -> ${value}`);
const input = new Uint8Array([0, 1]);
const { run } = await world.events.create(null, { eventType: 'run_created', specVersion: 2, eventData: { deploymentId: 'd', workflowName: 'wf', input } });
await world.events.create(run.runId, { eventType: 'run_started', specVersion: 2 });

// EV-11: a reader that reached the end of a run's events keeps a cursor, and a later read from that cursor
// returns exactly the events appended since (the runtime reads a run's log incrementally this way).
const first = await world.events.list({ runId: run.runId, pagination: { limit: 2 } });
show('EV-11', 'events.list limit 2 on a run with 2 events: data, hasMore, cursor', `${first.data.length}, ${first.hasMore}, ${first.cursor}`);
await world.events.create(run.runId, { eventType: 'step_created', correlationId: 'late', specVersion: 2, eventData: { stepName: 's', input } });
const again = await world.events.list({ runId: run.runId, pagination: { limit: 2, cursor: first.cursor ?? undefined } });
show('EV-11', 'the next read (with that cursor, null: from the start): event types', again.data.map((e) => e.eventType).join(', '));
process.exit(0);
