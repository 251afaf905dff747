// bench:incremental — full vs incremental snapshots of a real writing guest through the whole engine,
// side by side in one run: a 1 GiB disk with 256 MiB written by the guest, a full snapshot, 16 MiB
// changed by the guest, an incremental one; what each read and sent, what the chunk store grew by,
// and how fast each image downloads. Then a 10-step chain (change 16 MiB, snapshot), the time of
// every step, and every image compared with the frozen copy of the disk at its point in time.
// Prints tables; asserts no timings. Run: npm run bench:incremental [-- --steps 10 --changed 16]
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { SnapshotResult } from '../src/contract';
import { startEngine, type Engine } from '../test/support/engine-harness';
import { frozenCopy, guestWrites, imageMatchesFrozen, settle } from '../test/support/guest/chain-checks';
import { createRealGuest } from '../test/support/guest/real-guest-run';
import type { InstanceFixture } from '../test/support/instance-fixture';
import { parseArgs } from './support/args';
import { onCleanup, runBench } from './support/cleanup';
import { machineFacts } from './support/machine';
import { mib, printTable, ratio, seconds } from './support/table';
import { startBenchTemporal } from './support/temporal';

const MiB = 1024 ** 2;
const ArgsSchema = z.object({
  steps: z.coerce.number().int().min(1).max(50).default(10),
  changed: z.coerce.number().int().min(1).max(256).default(16),
  written: z.coerce.number().int().min(16).max(512).default(256),
});

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

async function downloadRate(engine: Engine, imageId: string): Promise<{ ms: number; bytes: number }> {
  const started = process.hrtime.bigint();
  let bytes = 0;
  for await (const chunk of await engine.images.download(imageId)) bytes += (chunk as Buffer).length;
  return { ms: Number(process.hrtime.bigint() - started) / 1e6, bytes };
}

runBench('bench:incremental', async () => {
  const args = parseArgs(ArgsSchema);
  printTable('Machine', await machineFacts());
  await startBenchTemporal();
  const engine = await startEngine();
  onCleanup('engine', () => engine.stop());
  const fixture = await createRealGuest({ prefix: 'snapbenchinc', diskSizeBytes: 1024 * MiB, memoryMiB: 256, linux: { workload: 'idle' } });
  onCleanup(`guest ${fixture.instance.name}`, () => fixture.cleanup());
  const uuid = (await engine.register(fixture)).uuid;
  process.stderr.write(`bench:incremental: the guest writes ${args.written} MiB…\n`);
  for (let i = 0; i < args.written / 64; i++) await guestWrites(fixture, `data-${i}.bin`, Math.min(64, args.written - i * 64));

  process.stderr.write('  full snapshot…\n');
  const full = await snapshotStep(engine, fixture, uuid, 'full');
  await guestWrites(fixture, 'data-0.bin', args.changed, 8);
  process.stderr.write('  incremental snapshot…\n');
  const inc = await snapshotStep(engine, fixture, uuid, 'incremental');
  if (full.result.kind !== 'full' || inc.result.kind !== 'incremental') throw new Error(`expected full then incremental, got ${full.result.kind} then ${inc.result.kind}`);
  const fullDownload = await downloadRate(engine, full.result.imageId);
  const incDownload = await downloadRate(engine, inc.result.imageId);
  const changed = args.changed * MiB;
  const row = (name: string, s: Step, d: { ms: number; bytes: number }) => ({
    snapshot: name,
    time: seconds(s.ms),
    'stream step': seconds(s.result.steps.upload ?? 0),
    'guest data read + sent': mib(s.result.changedBytes ?? 0),
    'store growth (chunks)': mib(s.storeGrowth),
    index: `${(s.indexGrowth / 1024).toFixed(1)} KiB`,
    'image size': mib(s.result.size),
    download: `${((d.bytes / MiB) / (d.ms / 1000)).toFixed(0)} MiB/s`,
  });
  printTable(`Full vs incremental: 1 GiB disk, ${args.written} MiB written, then ${args.changed} MiB changed by the guest`, [row('full', full, fullDownload), row('incremental', inc, incDownload)]);
  printTable('Targets', [
    { target: 'incremental time ≤ 0.1× full', measured: ratio(inc.ms, full.ms) },
    { target: 'incremental stream step ≤ 0.1× full stream step', measured: ratio(inc.result.steps.upload ?? 0, full.result.steps.upload ?? 1) },
    { target: 'read + sent ≤ 1.1× changed', measured: ratio(inc.result.changedBytes ?? 0, changed) },
    { target: 'store growth ≤ 1.1× changed (+ index)', measured: `${ratio(inc.storeGrowth, changed)} (+ ${(inc.indexGrowth / 1024).toFixed(1)} KiB index)` },
    { target: 'incremental download ≥ 0.9× full download speed', measured: ratio(incDownload.bytes / incDownload.ms, fullDownload.bytes / fullDownload.ms) },
  ]);

  const chain: Step[] = [];
  for (let step = 1; step <= args.steps; step++) {
    process.stderr.write(`  chain step ${step}/${args.steps}…\n`);
    await guestWrites(fixture, `data-${step % Math.max(1, args.written / 64)}.bin`, args.changed, 16 + step * args.changed);
    chain.push(await snapshotStep(engine, fixture, uuid, `chain-${step}`));
  }
  printTable(
    `A ${args.steps}-step chain: change ${args.changed} MiB, snapshot`,
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
