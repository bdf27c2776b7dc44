// The long-run memory check in test size (issue 12; `npm run soak` is the 10,000-step bench): 300 steps of the demo's
// UNet recipe at reduced width and size, with its DataLoader, GPU augmentations and run-folder checkpoints, sampled
// every 50 steps. After warm-up, live tensors and bytes in use must be exactly constant: a leak of one tensor per
// step, or even per sample interval, moves the live count, and that is the sharp test. RSS only has a loose bound here
// (200 steps are too few to tell a slow leak from the allocator settling); the bench fits its slope over 9,000 steps.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { judge, soak } from '../bench/soak.mjs';
import { setup, vg } from './helpers.mjs';

test.before(setup);

const WARMUP = 100;
// MB per 1,000 steps: 30 MB over the 200 steps after warm-up, far above what the loop settles to, far below what
// leaking a batch per step costs (32² × 4 images and labels, plus their lavapipe buffers)
const TEST_RSS_SLOPE_MB = 150;

test('300 training steps of unet-phantom hold live tensors and bytes in use exactly, pool and RSS bounded', async () => {
  const { samples } = await soak({ steps: 300, every: 50, checkpointEvery: 100 });
  assert.equal(samples.map((s) => s.step), [50, 100, 150, 200, 250, 300]);
  const verdict = judge(samples, { warmup: WARMUP, rssSlopeLimitMB: TEST_RSS_SLOPE_MB });
  assert.equal(verdict.failures, [], JSON.stringify(samples));
  // after training the recipe has released everything it made: model, optimizer state, data, batches
  assert.is(vg.memory().liveTensors, 0, `live tensors left after training: ${vg.memory().liveTensors}`);
});

test('the check catches a leak of one tensor per sample interval', async () => {
  // 1,024 elements: tensors of up to 128 live on the host and hold no GPU bytes, so only the live count would move
  const leaked = [];
  const { samples } = await soak({ steps: 30, every: 10, checkpointEvery: 100, log: () => leaked.push(vg.zeros([1024])) });
  const verdict = judge(samples, { warmup: 10, rssSlopeLimitMB: Infinity });
  for (const t of leaked) t.dispose();
  const base = samples[0].liveTensors;
  assert.equal(
    verdict.failures.filter((f) => f.startsWith('live tensors')),
    [`live tensors ${base} at step 10 but ${base + 1} at step 20`, `live tensors ${base} at step 10 but ${base + 2} at step 30`],
  );
  assert.equal(verdict.failures.filter((f) => f.startsWith('bytes in use')).map((f) => f.replace(/.* at step /, '')), ['20', '30']);
});

test.run();
