// bench:incremental — full vs incremental snapshots of a real writing guest through the whole engine,
// side by side in one run, on a 1 GiB and a 4 GiB disk (the same data, the same change): the guest
// writes 256 MiB, a full snapshot, then `reps` times 16 MiB changed by the guest and an incremental.
// What each read and sent, what the chunk store grew by, how fast each image downloads, where each
// snapshot's time went (the run's own per-step timings, `SnapshotResult.steps`), and whether the
// incremental's cost follows the change (4 GiB ÷ 1 GiB). Then a chain (change 16 MiB, snapshot) on
// the first disk. Every image is compared with the frozen copy of the disk at its point in time.
// Prints tables; asserts no timings.
// Run: npm run bench:incremental [-- --disks 1024,4096 --reps 3 --steps 10 --changed 16 --written 256]
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { SNAPSHOT_STEPS, type SnapshotResult, type SnapshotStep } from '../src/contract';
import { startEngine, type Engine } from '../test/support/engine-harness';
import { frozenCopy, guestWrites, imageMatchesFrozen, settle } from '../test/support/guest/chain-checks';
import { createRealGuest } from '../test/support/guest/real-guest-run';
import type { InstanceFixture } from '../test/support/instance-fixture';
import { parseArgs } from './support/args';
import { onCleanup, runBench } from './support/cleanup';
import { machineFacts } from './support/machine';
import { median, mib, printTable, ratio, seconds, type Row } from './support/table';
import { startBenchTemporal } from './support/temporal';

const MiB = 1024 ** 2;
const ArgsSchema = z.object({
  disks: z
    .string()
    .regex(/^\d+(,\d+)*$/)
    .default('1024,4096'),
  reps: z.coerce.number().int().min(1).max(20).default(3),
  steps: z.coerce.number().int().min(0).max(50).default(10),
  changed: z.coerce.number().int().min(1).max(256).default(16),
  written: z.coerce.number().int().min(16).max(512).default(256),
});
type Args = z.infer<typeof ArgsSchema>;

async function bytesUnder(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

interface Step {
  result: SnapshotResult;
  ms: number;
  storeGrowth: number;
  indexGrowth: number;
  identical: boolean;
}

async function snapshotStep(engine: Engine, fixture: InstanceFixture, uuid: string, label: string): Promise<Step> {
  await settle(fixture);
  const frozen = await frozenCopy(fixture, label);
  const chunks = join(engine.dir, 'images', 'chunks');
  const indexes = join(engine.dir, 'images', 'indexes');
  const [chunksBefore, indexesBefore] = [await bytesUnder(chunks), await bytesUnder(indexes)];
  const started = process.hrtime.bigint();
  const { result } = await engine.startSnapshot(uuid, `bench-${label}`);
  const value = await result;
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const storeGrowth = (await bytesUnder(chunks)) - chunksBefore;
  const indexGrowth = (await bytesUnder(indexes)) - indexesBefore;
  const { identical } = await imageMatchesFrozen(engine.images, value.imageId, frozen, fixture.dir);
  if (!identical) throw new Error(`image ${value.imageId} (${label}) differs from the disk at its point in time: the measurement is void`);
  return { result: value, ms, storeGrowth, indexGrowth, identical };
}

interface Rate {
  ms: number;
  bytes: number;
}

async function downloadRate(engine: Engine, imageId: string): Promise<Rate> {
  const started = process.hrtime.bigint();
  let bytes = 0;
  for await (const chunk of await engine.images.download(imageId)) bytes += (chunk as Buffer).length;
  return { ms: Number(process.hrtime.bigint() - started) / 1e6, bytes };
}

interface DiskRun {
  diskMiB: number;
  full: Step;
  incrementals: Step[];
  fullDownload: Rate;
  incDownload: Rate;
}

/** One guest with a disk of `diskMiB`: the data written, a full snapshot, then `reps` incrementals over the same change. */
async function measureDisk(engine: Engine, args: Args, diskMiB: number, chainSteps: number): Promise<{ run: DiskRun; chain: Step[] }> {
  const fixture = await createRealGuest({ prefix: `snapbenchinc${diskMiB}`, diskSizeBytes: diskMiB * MiB, memoryMiB: 256, linux: { workload: 'idle' } });
  const removeGuest = onCleanup(`guest ${fixture.instance.name}`, () => fixture.cleanup());
  const uuid = (await engine.register(fixture)).uuid;
  process.stderr.write(`bench:incremental: a ${diskMiB} MiB disk, the guest writes ${args.written} MiB…\n`);
  const files = Math.max(1, args.written / 64);
  for (let i = 0; i < args.written / 64; i++) await guestWrites(fixture, `data-${i}.bin`, Math.min(64, args.written - i * 64));
  process.stderr.write('  full snapshot…\n');
  const full = await snapshotStep(engine, fixture, uuid, 'full');
  const incrementals: Step[] = [];
  for (let rep = 1; rep <= args.reps; rep++) {
    await guestWrites(fixture, 'data-0.bin', args.changed, 8);
    process.stderr.write(`  incremental ${rep}/${args.reps}…\n`);
    const inc = await snapshotStep(engine, fixture, uuid, `incremental-${rep}`);
    if (inc.result.kind !== 'incremental') throw new Error(`expected an incremental, got ${String(inc.result.kind)} (${String(inc.result.fullReason)})`);
    incrementals.push(inc);
  }
  if (full.result.kind !== 'full') throw new Error(`expected a full snapshot first, got ${String(full.result.kind)}`);
  const fullDownload = await downloadRate(engine, full.result.imageId);
  const last = incrementals.at(-1) as Step;
  const incDownload = await downloadRate(engine, last.result.imageId);
  const chain: Step[] = [];
  for (let step = 1; step <= chainSteps; step++) {
    process.stderr.write(`  chain step ${step}/${chainSteps}…\n`);
    await guestWrites(fixture, `data-${step % files}.bin`, args.changed, 16 + step * args.changed);
    chain.push(await snapshotStep(engine, fixture, uuid, `chain-${step}`));
  }
  await removeGuest();
  return { run: { diskMiB, full, incrementals, fullDownload, incDownload }, chain };
}

/** The median incremental by wall time: its own steps and bytes, not a mix of several runs'. */
function medianStep(steps: readonly Step[]): Step {
  const sorted = [...steps].sort((a, b) => a.ms - b.ms);
  return sorted[Math.ceil(sorted.length / 2) - 1] as Step;
}

const rate = (d: Rate): number => d.bytes / MiB / (d.ms / 1000);

function sizeRows(runs: readonly DiskRun[]): Row[] {
  return runs.flatMap((r) => {
    const row = (name: string, s: Step, d: Rate, n: number): Row => ({
      disk: `${(r.diskMiB / 1024).toFixed(0)} GiB`,
      snapshot: name,
      runs: String(n),
      time: seconds(s.ms),
      'stream step': seconds(s.result.steps.upload ?? 0),
      'guest data read + sent': mib(s.result.changedBytes ?? 0),
      'store growth (chunks)': mib(s.storeGrowth),
      index: `${(s.indexGrowth / 1024).toFixed(1)} KiB`,
      'image size': mib(s.result.size),
      download: `${rate(d).toFixed(0)} MiB/s`,
    });
    const inc = medianStep(r.incrementals);
    return [row('full', r.full, r.fullDownload, 1), { ...row('incremental (median)', inc, r.incDownload, r.incrementals.length), time: `${seconds(inc.ms)} (${r.incrementals.map((s) => seconds(s.ms)).join(', ')})` }];
  });
}

/** Per workflow step, ms: the full snapshot and the median of the incrementals, per disk; the steps no run took are left out. */
function stepRows(runs: readonly DiskRun[]): Row[] {
  const taken = SNAPSHOT_STEPS.filter((step) => runs.some((r) => [r.full, ...r.incrementals].some((s) => (s.result.steps[step] ?? 0) > 0)));
  const cells = (ms: (step: SnapshotStep) => number, wall: number): Row => {
    const row: Row = {};
    for (const step of taken) row[step] = ms(step).toFixed(0);
    const inSteps = taken.reduce((sum, step) => sum + ms(step), 0);
    row['Σ steps'] = inSteps.toFixed(0);
    row['outside the steps'] = (wall - inSteps).toFixed(0);
    row['wall (client)'] = wall.toFixed(0);
    return row;
  };
  return runs.flatMap((r) => [
    { disk: `${(r.diskMiB / 1024).toFixed(0)} GiB`, snapshot: 'full', ...cells((step) => r.full.result.steps[step] ?? 0, r.full.ms) },
    {
      disk: `${(r.diskMiB / 1024).toFixed(0)} GiB`,
      snapshot: `incremental (median of ${r.incrementals.length} per step)`,
      ...cells((step) => median(r.incrementals.map((s) => s.result.steps[step] ?? 0)), median(r.incrementals.map((s) => s.ms))),
    },
  ]);
}

function targetRows(runs: readonly DiskRun[], changed: number): Row[] {
  const rows: Row[] = [];
  for (const r of runs) {
    const inc = medianStep(r.incrementals);
    const disk = `${(r.diskMiB / 1024).toFixed(0)} GiB`;
    rows.push(
      { disk, target: 'incremental time ≤ 0.1× full', measured: ratio(inc.ms, r.full.ms) },
      { disk, target: 'incremental stream step ≤ 0.1× full stream step', measured: ratio(inc.result.steps.upload ?? 0, r.full.result.steps.upload ?? 1) },
      { disk, target: 'read + sent ≤ 1.1× changed', measured: ratio(inc.result.changedBytes ?? 0, changed) },
      { disk, target: 'store growth ≤ 1.1× changed (+ index)', measured: `${ratio(inc.storeGrowth, changed)} (+ ${(inc.indexGrowth / 1024).toFixed(1)} KiB index)` },
      { disk, target: 'incremental download ≥ 0.9× full download speed', measured: ratio(rate(r.incDownload), rate(r.fullDownload)) },
    );
  }
  const [small, ...larger] = runs;
  if (small === undefined) return rows;
  for (const r of larger) {
    const ms = (run: DiskRun) => medianStep(run.incrementals).ms;
    const upload = (run: DiskRun) => median(run.incrementals.map((s) => s.result.steps.upload ?? 0));
    const name = `the same incremental on ${(r.diskMiB / 1024).toFixed(0)} GiB ≤ 1.2× on ${(small.diskMiB / 1024).toFixed(0)} GiB`;
    rows.push({ disk: 'both', target: name, measured: `${ratio(ms(r), ms(small))} (${seconds(ms(r))} s / ${seconds(ms(small))} s); stream step ${ratio(upload(r), upload(small))}` });
  }
  return rows;
}

runBench('bench:incremental', async () => {
  const args = parseArgs(ArgsSchema);
  printTable('Machine', await machineFacts());
  await startBenchTemporal();
  const engine = await startEngine();
  onCleanup('engine', () => engine.stop());
  const runs: DiskRun[] = [];
  let chain: Step[] = [];
  for (const [index, diskMiB] of args.disks.split(',').map(Number).entries()) {
    const measured = await measureDisk(engine, args, diskMiB, index === 0 ? args.steps : 0);
    runs.push(measured.run);
    if (index === 0) chain = measured.chain;
  }
  printTable(`Full vs incremental: ${args.written} MiB written, then ${args.changed} MiB changed by the guest, ${args.reps} incrementals per disk`, sizeRows(runs));
  printTable('Where the time went: per workflow step, ms (the run result `steps`; workflow clock)', stepRows(runs));
  printTable('Targets', targetRows(runs, args.changed * MiB));
  if (chain.length === 0) return;
  printTable(
    `A ${chain.length}-step chain on the ${(runs[0]?.diskMiB ?? 0) / 1024} GiB disk: change ${args.changed} MiB, snapshot`,
    chain.map((s, i) => ({
      step: String(i + 1),
      kind: s.result.kind ?? '?',
      time: seconds(s.ms),
      'stream step': seconds(s.result.steps.upload ?? 0),
      sent: mib(s.result.changedBytes ?? 0),
      'store growth': mib(s.storeGrowth),
      'identical to its point in time': s.identical ? 'yes' : 'NO',
    })),
  );
});
