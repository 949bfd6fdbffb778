// A small in-repo JS World for the bridge's own tests: upstream's world-local, wrapped.
//
// WORLDS_TEST_LOCAL_ENTRY is the path of world-local's entry module (installed by the
// test from the bridge's lockfile). With WORLDS_TEST_BREAK=payloads the World corrupts
// the last byte of every run's input as it stores it -- a deliberately broken World the
// suite must fail on PL-1. Two run ids always misbehave, for the error tests:
// 'wrun_throws' throws a TypeError, 'wrun_sleeps' never answers.

export async function createWorld() {
  const { createLocalWorld } = await import(process.env.WORLDS_TEST_LOCAL_ENTRY);
  const world = createLocalWorld();
  const get = world.runs.get.bind(world.runs);
  world.runs.get = async (id, params) => {
    if (id === 'wrun_throws') throw new TypeError('the wrapped World crashed on purpose');
    if (id === 'wrun_sleeps') return await new Promise(() => {});
    return await get(id, params);
  };
  if (process.env.WORLDS_TEST_BREAK === 'payloads') {
    const create = world.events.create.bind(world.events);
    world.events.create = async (runId, data, params) => {
      const input = data?.eventData?.input;
      if (data?.eventType === 'run_created' && input instanceof Uint8Array && input.length > 0) {
        const corrupted = new Uint8Array(input);
        corrupted[corrupted.length - 1] ^= 0x01;
        data = { ...data, eventData: { ...data.eventData, input: corrupted } };
      }
      return await create(runId, data, params);
    };
  }
  return world;
}
