// bench:snapshot — end-to-end snapshot of a 1 GiB disk with 256 MiB written, live and cold through
// the real engine (Temporal + host/control workers + libvirt + image service over HTTP), next to
// the floor (bare qemu-img convert + copy into the image store) and Nova's convert-then-upload
// without Temporal. Every produced image is checked with `qemu-img compare` against the disk: a
// bench that times a wrong result is worthless. Prints tables; asserts no timings.
// Run: npm run bench:snapshot [-- --reps 3]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { imagesIdentical } from '../src/host/qemu-img';
import type { SnapshotResult, SnapshotStep } from '../src/contract';
import { startEngine, type Engine } from '../test/support/engine-harness';
import { downloadImage } from '../test/support/image-bytes';
import { parseArgs } from './support/args';
import { bareConvertAndCopy, novaStyleConvertUpload } from './support/baselines';
import { onCleanup, runBench } from './support/cleanup';
import { createFilledGuest, GUEST_DISK_BYTES, type FilledGuest } from './support/filled-guest';
import { machineFacts } from './support/machine';
import { median, mib, printTable, ratio, seconds, timed, type Row } from './support/table';
import { startBenchTemporal } from './support/temporal';

const ArgsSchema = z.object({ reps: z.coerce.number().int().min(1).max(20).default(3) });

interface Sample {
  ms: number;
  size: number;
  steps?: SnapshotResult['steps'];
}

type Method = 'engine live' | 'engine cold' | 'bare convert + copy' | 'nova-style convert + upload';

/** Downloads the image and compares it with the live disk; throws when they differ. */
async function verifyImage(engine: Engine, imageId: string, guest: FilledGuest, workDir: string): Promise<void> {
  const file = await downloadImage(engine.images, imageId, workDir);
  try {
    await verifyFile(file, guest);
  } finally {
    await rm(file, { force: true });
  }
  await engine.images.delete(imageId);
}

async function verifyFile(file: string, guest: FilledGuest): Promise<void> {
  if (!(await imagesIdentical(file, guest.fixture.instance.overlayPath, { forceShare: true }))) {
    throw new Error(`${file} differs from the instance disk (qemu-img compare): the measurement is void`);
  }
}

async function engineSnapshot(engine: Engine, uuid: string, expectedMode: 'live' | 'cold', tag: string): Promise<{ sample: Sample; imageId: string }> {
  const { ms, value } = await timed(async () => {
    const { result } = await engine.startSnapshot(uuid, `bench-${expectedMode}-${tag}`);
    return result;
  });
  if (value.mode !== expectedMode || value.status !== 'active') throw new Error(`expected an active ${expectedMode} snapshot, got ${value.status} ${value.mode}`);
  return { sample: { ms, size: value.size, steps: value.steps }, imageId: value.imageId };
}

/** Runs the engine (one mode) and, in the live round, the two baselines, interleaved per repetition. */
async function measureRound(guest: FilledGuest, mode: 'live' | 'cold', reps: number, workDir: string, samples: Map<Method, Sample[]>): Promise<void> {
  const engine = await startEngine(mode === 'cold' ? { hostEnv: { SNAP_DISABLE_LIVE_SNAPSHOT: 'true' } } : {});
  const stopEngine = onCleanup(`engine (${mode})`, () => engine.stop());
  const instance = await engine.register(guest.fixture);
  const storeFiles = join(engine.dir, 'images', 'files');
  const disk = guest.fixture.instance.overlayPath;
  const push = (method: Method, s: Sample): void => {
    samples.set(method, [...(samples.get(method) ?? []), s]);
  };
  if (mode === 'live') {
    // warm-up, unmeasured: every measured run then reads the disk from the page cache alike
    const warm = await bareConvertAndCopy(disk, workDir, storeFiles, 'warmup');
    await rm(warm.storedPath, { force: true });
  }
  for (let rep = 1; rep <= reps; rep++) {
    const tag = `${mode}-${rep}`;
    process.stderr.write(`  ${mode} round ${rep}/${reps}…\n`);
    const run = await engineSnapshot(engine, instance.uuid, mode, tag);
    await verifyImage(engine, run.imageId, guest, workDir);
    push(mode === 'live' ? 'engine live' : 'engine cold', run.sample);
    if (mode !== 'live') continue;

    const bare = await bareConvertAndCopy(disk, workDir, storeFiles, tag);
    try {
      await verifyFile(bare.storedPath, guest);
    } finally {
      await rm(bare.storedPath, { force: true });
    }
    push('bare convert + copy', bare);

    const nova = await novaStyleConvertUpload(disk, workDir, engine.images, tag);
    await verifyImage(engine, nova.imageId, guest, workDir);
    push('nova-style convert + upload', nova);
  }
  await stopEngine();
}

function stepMedian(list: readonly Sample[], ...steps: SnapshotStep[]): number {
  return median(list.map((s) => steps.reduce((sum, step) => sum + (s.steps?.[step] ?? 0), 0)));
}

function report(samples: Map<Method, Sample[]>, guest: FilledGuest, reps: number): void {
  const med = (m: Method): number => median((samples.get(m) ?? []).map((s) => s.ms));
  const bare = med('bare convert + copy');
  const nova = med('nova-style convert + upload');
  const rows: Row[] = [];
  for (const [method, list] of samples) {
    const times = list.map((s) => s.ms);
    rows.push({
      method,
      runs: String(list.length),
      'median s': seconds(median(times)),
      'min s': seconds(Math.min(...times)),
      'max s': seconds(Math.max(...times)),
      'image MiB': mib(median(list.map((s) => s.size))),
      'MiB/s (written data)': ((guest.writtenBytes / 1024 ** 2) / (median(times) / 1000)).toFixed(0),
      '÷ bare': ratio(median(times), bare),
      '÷ nova-style': ratio(median(times), nova),
      'qemu-img compare': 'identical',
    });
  }
  printTable(`Snapshot of a ${mib(GUEST_DISK_BYTES)} MiB disk with ${mib(guest.writtenBytes)} MiB written (${mib(guest.baseBytes)} MiB in the base), median of ${reps}`, rows);

  const stepRows: Row[] = [];
  for (const method of ['engine live', 'engine cold'] as const) {
    const list = samples.get(method) ?? [];
    const sumSteps = (s: Sample): number => Object.values(s.steps ?? {}).reduce((a, b) => a + b, 0);
    stepRows.push({
      mode: method,
      'before extract ms': stepMedian(list, 'create_image', 'task_state_image_snapshot', 'power_state', 'notify_start', 'lookup_domain', 'choose_mode').toFixed(0),
      'prepare_cold ms': stepMedian(list, 'prepare_cold').toFixed(0),
      'extract ms': stepMedian(list, 'extract').toFixed(0),
      'restore_guest ms': stepMedian(list, 'restore_guest').toFixed(0),
      'upload ms': stepMedian(list, 'upload').toFixed(0),
      'task states + notify ms': stepMedian(list, 'task_state_pending_upload', 'task_state_uploading', 'task_state_none', 'notify_end').toFixed(0),
      'end to end ms': median(list.map((s) => s.ms)).toFixed(0),
      'outside steps ms': median(list.map((s) => s.ms - sumSteps(s))).toFixed(0),
    });
  }
  printTable('Engine steps (workflow result `steps`, medians)', stepRows);

  const cold = samples.get('engine cold') ?? [];
  const downtime = cold.map((s) => (s.steps?.prepare_cold ?? 0) + (s.steps?.extract ?? 0) + (s.steps?.restore_guest ?? 0));
  printTable('Cold snapshot guest downtime (prepare_cold + extract + restore_guest, from the workflow result)', [
    { runs: String(downtime.length), 'median s': seconds(median(downtime)), 'min s': seconds(Math.min(...downtime)), 'max s': seconds(Math.max(...downtime)), 'live guest downtime': '0 (guest keeps running; block copy)' },
  ]);
}

runBench('bench:snapshot', async () => {
  const args = parseArgs(ArgsSchema);
  printTable('Machine', await machineFacts());
  await startBenchTemporal();
  const workDir = await mkdtemp(join(tmpdir(), 'snap-bench-work-'));
  onCleanup('bench work dir', () => rm(workDir, { recursive: true, force: true }));
  process.stderr.write('bench:snapshot: preparing a 1 GiB guest with 256 MiB written…\n');
  const guest = await createFilledGuest();
  const samples = new Map<Method, Sample[]>();
  await measureRound(guest, 'live', args.reps, workDir, samples);
  await measureRound(guest, 'cold', args.reps, workDir, samples);
  report(samples, guest, args.reps);
});
