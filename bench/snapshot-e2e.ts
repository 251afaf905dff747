// bench:snapshot — end-to-end snapshots through the real engine (Temporal + host/control workers +
// libvirt + image service over HTTP), side by side in one run, at 256 MiB and at 1 GiB written:
// the one-pass engine (libvirt backup job / qemu-nbd → NBD → streaming qcow2 writer → resumable
// upload, live and cold), today's file path (block copy / qemu-img convert, then upload), the
// floor (bare qemu-img convert + copy into the image store) and Nova's convert-then-upload
// without Temporal; each cold method's guest downtime beside managedSave + restore alone. Every
// produced image is checked with `qemu-img compare` against the disk: a bench that times a wrong
// result is worthless. Prints tables; asserts no timings.
// Run: npm run bench:snapshot [-- --reps 3 --written 256,1024 --methods all|cold|<names> --baselines true --service own-process]
// (`--methods cold`: the cold methods only, beside the floor, Nova-style and managedSave + restore;
// `--methods one-pass-live,convert-cold` runs only those engine variants, by their names with dashes;
// `--baselines false` leaves out the floor, Nova-style and managedSave + restore, e.g. under a profiler;
// `--service in-process` runs the image service inside the bench's process, sharing its main thread.)
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { imagesIdentical } from '../src/host/qemu-img';
import type { SnapshotResult } from '../src/contract';
import { startEngine, type Engine } from '../test/support/engine-harness';
import { downloadImage } from '../test/support/image-bytes';
import { parseArgs } from './support/args';
import { bareConvertAndCopy, novaStyleConvertUpload } from './support/baselines';
import { onCleanup, runBench } from './support/cleanup';
import { watchDowntime, saveAndRestore } from './support/downtime';
import { createFilledGuest, type FilledGuest } from './support/filled-guest';
import { machineFacts } from './support/machine';
import { printTable } from './support/table';
import { reportSnapshots, type Method, type Sample, type Samples } from './support/snapshot-report';
import { startBenchTemporal } from './support/temporal';

const MiB = 1024 ** 2;
const ArgsSchema = z.object({
  reps: z.coerce.number().int().min(1).max(20).default(3),
  written: z
    .string()
    .regex(/^\d+(,\d+)*$/)
    .default('256,1024'),
  methods: z
    .string()
    .regex(/^(all|[a-z-]+(,[a-z-]+)*)$/)
    .default('all'),
  baselines: z.enum(['true', 'false']).default('true'),
  /** where the image service runs: its own process, as `npm start` runs it, or inside the bench's */
  service: z.enum(['own-process', 'in-process']).default('own-process'),
});

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

async function engineSnapshot(engine: Engine, uuid: string, expected: Pick<SnapshotResult, 'mode' | 'dataPath'>, tag: string, guest: FilledGuest): Promise<{ sample: Sample; imageId: string }> {
  const watch = expected.mode === 'cold' ? await watchDowntime(guest.fixture.client, guest.fixture.instance.name) : null;
  const started = process.hrtime.bigint();
  const { result } = await engine.startSnapshot(uuid, `bench-${tag}`);
  const value = await result;
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const downtimeMs = (await watch?.stop()) ?? undefined;
  if (value.mode !== expected.mode || value.dataPath !== expected.dataPath || value.status !== 'active') {
    throw new Error(`expected an active ${expected.mode} snapshot over ${expected.dataPath}, got ${value.status} ${value.mode} over ${String(value.dataPath)}`);
  }
  return { sample: { ms, size: value.size, steps: value.steps, ...(downtimeMs !== undefined ? { downtimeMs } : {}) }, imageId: value.imageId };
}

interface EngineVariant {
  method: Method;
  mode: 'live' | 'cold';
  dataPath: NonNullable<SnapshotResult['dataPath']>;
  env: Record<string, string>;
}

const VARIANTS: EngineVariant[] = [
  { method: 'one-pass live', mode: 'live', dataPath: 'backup-job', env: {} },
  { method: 'block-copy live', mode: 'live', dataPath: 'block-copy', env: { SNAP_DISABLE_BACKUP_API: 'true' } },
  // The default: the saved guest restarted with a backup job holding the save, resumed before the stream.
  { method: 'one-pass cold', mode: 'cold', dataPath: 'backup-job', env: { SNAP_DISABLE_LIVE_SNAPSHOT: 'true' } },
  { method: 'one-pass cold, saved until read', mode: 'cold', dataPath: 'qemu-nbd', env: { SNAP_DISABLE_LIVE_SNAPSHOT: 'true', SNAP_COLD_RESUME_BEFORE_STREAM: 'false' } },
  { method: 'convert cold', mode: 'cold', dataPath: 'convert', env: { SNAP_DISABLE_LIVE_SNAPSHOT: 'true', SNAP_DISABLE_BACKUP_API: 'true' } },
];

const variantKey = (method: Method): string => method.replace(/\W+/g, '-');

function chosenVariants(methods: string): EngineVariant[] {
  if (methods === 'all') return VARIANTS;
  if (methods === 'cold') return VARIANTS.filter((v) => v.mode === 'cold');
  const keys = methods.split(',');
  const unknown = keys.filter((k) => !VARIANTS.some((v) => variantKey(v.method) === k));
  if (unknown.length > 0) throw new Error(`unknown --methods ${unknown.join(', ')} (known: ${VARIANTS.map((v) => variantKey(v.method)).join(', ')})`);
  return VARIANTS.filter((v) => keys.includes(variantKey(v.method)));
}

/** One engine per variant; the baselines run in the first round, interleaved per repetition. */
async function measureGuest(guest: FilledGuest, variants: readonly EngineVariant[], args: z.infer<typeof ArgsSchema>, workDir: string): Promise<Samples> {
  const baselines = args.baselines === 'true';
  const { reps } = args;
  const samples: Samples = new Map();
  const push = (method: Method, s: Sample): void => {
    samples.set(method, [...(samples.get(method) ?? []), s]);
  };
  const { overlayPath, basePath } = guest.fixture.instance;
  const disk = [{ path: overlayPath, format: 'qcow2' as const }, { path: basePath, format: 'qcow2' as const }];
  for (const [index, variant] of variants.entries()) {
    const engine = await startEngine({ hostEnv: variant.env, imageService: args.service });
    const stopEngine = onCleanup(`engine (${variant.method})`, () => engine.stop());
    const instance = await engine.register(guest.fixture);
    const storeFiles = join(engine.dir, 'images', 'files');
    if (index === 0) {
      // warm-up, unmeasured: every measured run then reads the disk from the page cache alike
      const warm = await bareConvertAndCopy(disk, workDir, storeFiles, 'warmup');
      await rm(warm.storedPath, { force: true });
    }
    for (let rep = 1; rep <= reps; rep++) {
      const tag = `${variantKey(variant.method)}-${rep}`;
      process.stderr.write(`  ${variant.method} ${rep}/${reps}…\n`);
      const run = await engineSnapshot(engine, instance.uuid, variant, tag, guest);
      await verifyImage(engine, run.imageId, guest, workDir);
      push(variant.method, run.sample);
      if (index !== 0 || !baselines) continue;
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
      const saveRestoreMs = await saveAndRestore(guest.fixture.client, guest.fixture.instance.name);
      push('managedSave + restore', { ms: saveRestoreMs, size: 0, downtimeMs: saveRestoreMs });
    }
    await stopEngine();
  }
  return samples;
}

runBench('bench:snapshot', async () => {
  const args = parseArgs(ArgsSchema);
  const variants = chosenVariants(args.methods);
  printTable('Machine', await machineFacts());
  process.stderr.write(`bench:snapshot: the image service runs ${args.service === 'own-process' ? 'in its own process, as npm start runs it' : 'inside the bench process'}\n`);
  await startBenchTemporal();
  const workDir = await mkdtemp(join(tmpdir(), 'snap-bench-work-'));
  onCleanup('bench work dir', () => rm(workDir, { recursive: true, force: true }));
  for (const writtenMiB of args.written.split(',').map(Number)) {
    const diskBytes = Math.max(1024, 2 * writtenMiB) * MiB;
    process.stderr.write(`bench:snapshot: a ${diskBytes / MiB} MiB guest disk with ${writtenMiB} MiB written…\n`);
    const guest = await createFilledGuest({ diskBytes, writtenBytes: writtenMiB * MiB });
    const samples = await measureGuest(guest, variants, args, workDir);
    reportSnapshots(samples, guest, args.reps);
    await guest.fixture.cleanup();
  }
});
