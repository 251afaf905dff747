// bench:load:snapshots — 100 snapshots in flight at once on one host through the real engine, with
// the host worker's per-host limits on concurrent extracts and uploads. The workflow id is
// `snapshot-<instance uuid>` and a second run for the same instance is refused, so "100 in flight"
// means 100 instances (small 64 MiB guests, 16 MiB disks). All must end active with images
// identical to their disks (qemu-img compare); reports total time and, from each run's history,
// the orchestration overhead (workflow time minus the sum of activity execution times).
// Run: npm run bench:load:snapshots [-- --instances 100 --extracts 2 --uploads 2 --snapshots 5 --guests shutoff|running]
import os from 'node:os';
import { rm } from 'node:fs/promises';
import { z } from 'zod';
import { Libvirt } from '../src/libvirt';
import { removeInstance } from '../src/testing/instance-lifecycle';
import { imagesIdentical } from '../src/host/qemu-img';
import { POWER_STATE_RUNNING, POWER_STATE_SHUTDOWN, snapshotWorkflowId } from '../src/contract';
import { startEngine } from '../test/support/engine-harness';
import { downloadImage } from '../test/support/image-bytes';
import { createInstanceFixture, DEFAULT_TEST_URI, type InstanceFixture } from '../test/support/instance-fixture';
import { parseArgs } from './support/args';
import { onCleanup, runBench } from './support/cleanup';
import { fetchRunTiming, largestGaps, type RunTiming } from './support/history-timing';
import { machineFacts } from './support/machine';
import { mapPool } from './support/pool';
import { median, printTable, quantile, seconds, timed, type Row } from './support/table';
import { startBenchTemporal } from './support/temporal';

const limit = z.coerce.number().int().min(1).max(64);
const ArgsSchema = z.object({
  instances: z.coerce.number().int().min(10).max(200).default(100),
  extracts: limit.default(2),
  uploads: limit.default(2),
  snapshots: limit.default(5),
  /**
   * shutoff (default): defined, not running — snapshots are cold without managedSave, so the run
   * measures the engine rather than 100 idle QEMUs competing for the CPUs (on a 2-core machine 100
   * running guests alone saturate it). running: live snapshots of running guests.
   */
  guests: z.enum(['shutoff', 'running']).default('shutoff'),
});

/** Roughly what one idle 64 MiB guest costs (QEMU + guest RAM); refuse to start what will not fit. */
const BYTES_PER_GUEST = 160 * 1024 ** 2;

/**
 * Guests share one connection while they are made; their cleanup opens a fresh one, because under
 * this load the shared connection can be the thing that died (libvirtd keepalive timeout), and a
 * bench must not leave 100 domains behind because of it.
 */
async function createGuests(client: Libvirt, count: number, start: boolean): Promise<InstanceFixture[]> {
  const guests: InstanceFixture[] = [];
  onCleanup('guests', async () => {
    const fresh = await Libvirt.connect(DEFAULT_TEST_URI);
    try {
      await mapPool(guests, 4, async (g) => {
        await removeInstance(fresh, g.instance).catch((e: unknown) => process.stderr.write(`remove ${g.instance.name}: ${String(e)}\n`));
        await rm(g.dir, { recursive: true, force: true });
      });
    } finally {
      await fresh.close();
    }
  });
  await mapPool(Array.from({ length: count }, (_, i) => i), 4, async () => {
    guests.push(await createInstanceFixture({ client, memoryMiB: 64, prefix: 'snapload', start }));
  });
  return guests;
}

function ms(values: readonly number[], q: number): string {
  return quantile(values, q).toFixed(0);
}

function timingRows(timings: readonly RunTiming[]): Row[] {
  const pick = (label: string, f: (t: RunTiming) => number): Row => {
    const v = timings.map(f);
    return { 'per snapshot': label, 'p50 ms': ms(v, 0.5), 'p90 ms': ms(v, 0.9), 'max ms': ms(v, 1), 'mean ms': (v.reduce((a, b) => a + b, 0) / v.length).toFixed(0) };
  };
  return [
    pick('workflow time (started → completed)', (t) => t.workflowMs),
    pick('activity execution (Σ started → completed)', (t) => t.activityExecMs),
    pick('activity queueing (Σ scheduled → started)', (t) => t.activityQueueMs),
    pick('overhead = workflow − Σ activity execution', (t) => t.overheadMs),
    pick('pure orchestration = overhead − queueing', (t) => t.orchestrationMs),
    pick('orchestration per activity', (t) => t.orchestrationMs / Math.max(1, t.activities)),
  ];
}

runBench('bench:load:snapshots', async () => {
  const args = parseArgs(ArgsSchema);
  printTable('Machine', await machineFacts());
  if (args.instances * BYTES_PER_GUEST > os.freemem() * 0.8) throw new Error(`${args.instances} guests need about ${(args.instances * BYTES_PER_GUEST) / 1024 ** 3} GiB; lower --instances`);
  await startBenchTemporal();
  const client = await Libvirt.connect(DEFAULT_TEST_URI);
  onCleanup('libvirt connection', () => client.close());

  process.stderr.write(`bench:load:snapshots: creating ${args.instances} guests (${args.guests})…\n`);
  const setup = await timed(() => createGuests(client, args.instances, args.guests === 'running'));
  const guests = setup.value;
  const engine = await startEngine({
    hostEnv: { SNAP_MAX_CONCURRENT_EXTRACTS: String(args.extracts), SNAP_MAX_CONCURRENT_UPLOADS: String(args.uploads), SNAP_MAX_CONCURRENT_SNAPSHOTS: String(args.snapshots) },
  });
  onCleanup('engine', () => engine.stop());
  const instances = await mapPool(guests, 8, (g) => engine.register(g, args.guests === 'running' ? POWER_STATE_RUNNING : POWER_STATE_SHUTDOWN));

  process.stderr.write(`bench:load:snapshots: ${instances.length} snapshots at once…\n`);
  const freeBefore = os.freemem();
  const run = await timed(async () => {
    const started = await Promise.all(instances.map((i) => engine.startSnapshot(i.uuid, `load-${i.uuid.slice(0, 8)}`)));
    return Promise.allSettled(started.map((s) => s.result));
  });
  const results = run.value;
  const failed = results.filter((r) => r.status === 'rejected');
  const done = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const active = done.filter((r) => r.status === 'active').length;

  process.stderr.write('bench:load:snapshots: verifying every image and reading histories…\n');
  let identical = 0;
  await mapPool(results, 4, async (settled, index) => {
    const guest = guests[index];
    if (!guest || settled.status !== 'fulfilled') return;
    const result = settled.value;
    const file = await downloadImage(engine.images, result.imageId, guest.dir);
    try {
      if (await imagesIdentical(file, guest.instance.overlayPath, { forceShare: true })) identical++;
    } finally {
      await rm(file, { force: true });
    }
  });
  const timings = await mapPool(instances, 8, (i) => fetchRunTiming(engine.client, snapshotWorkflowId(i.uuid)));
  const modes = new Set(done.map((r) => r.mode));

  printTable(`${args.instances} snapshots in flight at once on one host, guests ${args.guests} (per-host limits: ${args.snapshots} snapshots / ${args.extracts} extracts / ${args.uploads} uploads)`, [
    {
      instances: String(instances.length),
      'guest setup s': seconds(setup.ms),
      'total s (first start → last result)': seconds(run.ms),
      'snapshots/s': (done.length / (run.ms / 1000)).toFixed(2),
      active: `${active}/${results.length}`,
      failed: String(failed.length),
      'qemu-img compare identical': `${identical}/${done.length}`,
      modes: [...modes].join(', '),
      'median activities/run': String(median(timings.map((t) => t.activities))),
      'free memory before, GiB': (freeBefore / 1024 ** 3).toFixed(1),
    },
  ]);
  printTable('Where each snapshot’s time went (from its workflow history; server event times)', timingRows(timings));
  const slowest = instances.reduce((a, b, i) => ((timings[i]?.orchestrationMs ?? 0) > (timings[instances.indexOf(a)]?.orchestrationMs ?? 0) ? b : a));
  const gaps = await largestGaps(engine.client, snapshotWorkflowId(slowest.uuid), 8);
  printTable('Longest pauses between history events, run with the most orchestration time', gaps.map((g) => ({ from: g.from, to: g.to, ms: g.ms.toFixed(0) })));
  for (const f of failed.slice(0, 5)) process.stderr.write(`failed: ${f.status === 'rejected' ? String(f.reason) : ''}\n`);
  if (active !== results.length || identical !== done.length) throw new Error(`${results.length - active} snapshots not active, ${done.length - identical} images differ`);
});
