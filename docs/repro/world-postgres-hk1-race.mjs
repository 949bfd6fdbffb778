// HK-1 for @workflow/world-postgres@4.3.7: a hook token has one owner, also when processes race for it.
// Setup as for world-postgres.mjs (npm install, bootstrap), then:
//   WORKFLOW_POSTGRES_URL=postgres://... node world-postgres-hk1-race.mjs
// Expected: 1 hook_created per round, the rest hook_conflict. Seen on 2026-11-29: the first round
// (children still connecting) 1, each later round 12 -- dist/storage.js reads the token, then
// inserts; the token index is not unique.
// Each of K processes creates a started run; then all send hook_created with one token at one instant.
import { fork } from 'node:child_process';
import { createWorld } from '@workflow/world-postgres';

if (process.argv[2] === 'child') {
  const world = createWorld();
  const input = new Uint8Array([0, 1]);
  process.on('message', async ({ token, at }) => {
    const runId = (await world.events.create(null, { eventType: 'run_created', specVersion: 3, eventData: { deploymentId: 'd', workflowName: 'wf', input } })).run.runId;
    await world.events.create(runId, { eventType: 'run_started', specVersion: 3 });
    await new Promise((r) => setTimeout(r, at - Date.now()));
    const result = await world.events.create(runId, { eventType: 'hook_created', correlationId: 'hook_race', specVersion: 3, eventData: { token } });
    process.send(result.event.eventType);
  });
} else {
  const K = 12, rounds = 5;
  const children = Array.from({ length: K }, () => fork(new URL(import.meta.url).pathname, ['child']));
  for (let i = 0; i < rounds; i++) {
    const token = `race-${Date.now()}-${i}`;
    const at = Date.now() + 1500;
    const types = await Promise.all(children.map((c) => new Promise((r) => { c.once('message', r); c.send({ token, at }); })));
    console.log(`HK-1: ${K} processes create a hook with one token at once -> ${types.filter((t) => t === 'hook_created').length} hook_created`);
  }
  children.forEach((c) => c.kill());
}
