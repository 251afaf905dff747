// bench:volume — the freeze window and the total time of a volume-backed snapshot (Nova's
// snapshot_volume_backed), ours against Nova's order, with one and with four volumes, in one run on
// one single-node Ceph, one real Cinder (RBD driver) and one real guest booting from a Cinder volume
// with three more attached, writing to its first two in lockstep. Ours is the workflow's host step
// (snapshotVolumesAtOnePoint: every create call side by side under one freeze, the guest thawed once
// Cinder has taken them all, polled every 100 ms) and then the wait for `available`; Nova's order
// (bench/support/nova-volume-order.ts, a labelled baseline over the same client pieces) freezes, calls
// create_snapshot_force one volume after another and thaws only once each snapshot in turn has left
// `creating`, polled every 0.5 s. Freeze window: the freeze answered → the thaw answered. Total: the freeze asked → every
// snapshot `available`. The image's steps before and after (create, properties) are the same for
// both and not timed. Each rep runs both orders (alternating which goes first), each sample's
// snapshots are deleted before the next. Prints tables (median, min, max); asserts no timings.
// Run: npm run bench:volume [-- --reps 5 --rate 16]
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { errorMessage } from '../src/contract';
import { CinderError, deleteRunSnapshots, waitRunSnapshots, type RunVolume } from '../src/cinder';
import { snapshotVolumesAtOnePoint } from '../src/host/volume-snapshot';
import { defineCephSecret } from '../src/testing/ceph/libvirt-secret';
import { readConsole } from '../src/testing/guest/guest-console';
import { lastFsynced } from '../src/testing/guest/workload-verifiers';
import { dataVolumeTarget } from '../src/testing/instance-layout';
import { cinderAdmin, createVolumeGuest, projectCinder, type VolumeGuests } from '../test/support/cinder-guest';
import { waitForFsynced } from '../test/support/guest/real-guest-run';
import { DEFAULT_TEST_URI, type InstanceFixture } from '../test/support/instance-fixture';
import { cinderVersion, startCinder } from '../test/support/openstack/cinder';
import { parseArgs } from './support/args';
import { startBenchCeph } from './support/bench-ceph';
import { onCleanup, runBench } from './support/cleanup';
import { machineFacts } from './support/machine';
import { novaSequentialSnapshots } from './support/nova-volume-order';
import { median, printTable, seconds, type Row } from './support/table';

const ArgsSchema = z.object({
  reps: z.coerce.number().int().min(1).max(20).default(3),
  /** the guest's lockstep rate, KiB/s */
  rate: z.coerce.number().int().min(1).max(1024).default(16),
});
const VOLUME_COUNTS = [1, 4] as const;
const QUIESCE_TIMEOUT_MS = 10_000;
const DEADLINE_MS = 5 * 60_000;

type Order = 'ours' | 'nova';
const ORDER_LABEL: Record<Order, string> = {
  ours: 'ours: side by side under one freeze, thawed once all are taken',
  nova: "Nova's order (baseline): one after another, thawed once all left creating",
};

interface Sample {
  freezeMs: number;
  totalMs: number;
}

interface BenchContext {
  env: VolumeGuests;
  fixture: InstanceFixture;
  /** the guest's volumes, root first */
  volumes: RunVolume[];
}

async function takeOnce(ctx: BenchContext, order: Order, volumes: readonly RunVolume[]): Promise<Sample> {
  const cinder = projectCinder(ctx.env);
  const { client: libvirt, instance } = ctx.fixture;
  const runId = `bench-${randomUUID()}`;
  const imageName = `bench-${order}-${volumes.length}`;
  const started = performance.now();
  try {
    let freezeMs: number;
    let snapshotIds: string[];
    if (order === 'ours') {
      const cut = await snapshotVolumesAtOnePoint({ libvirt, dom: instance.domain, cinder, quiesce: { timeoutMs: QUIESCE_TIMEOUT_MS } }, { runId, imageName, volumes, running: true });
      if (cut.quiesce.freezeWindowMs === null) throw new Error(`the guest was not frozen: ${cut.quiesce.quiesceError ?? 'no reason given'}`);
      [freezeMs, snapshotIds] = [cut.quiesce.freezeWindowMs, cut.snapshots.map((s) => s.snapshotId)];
    } else {
      const out = await novaSequentialSnapshots({ libvirt, dom: instance.domain, cinder, quiesceTimeoutMs: QUIESCE_TIMEOUT_MS, deadlineMs: DEADLINE_MS }, { runId, imageName, volumes });
      [freezeMs, snapshotIds] = [out.freezeWindowMs, out.snapshotIds];
    }
    if (snapshotIds.length !== volumes.length) throw new Error(`${snapshotIds.length} snapshots for ${volumes.length} volumes`);
    // the workflow's wait, at its own poll interval
    await waitRunSnapshots(cinder, snapshotIds, { deadlineMs: DEADLINE_MS });
    return { freezeMs, totalMs: performance.now() - started };
  } finally {
    // the next sample starts from the same state: no snapshot of ours left on the volumes
    const deleted = await deleteRunSnapshots(cinder, runId, { deadlineMs: DEADLINE_MS });
    await Promise.all(deleted.map((id) => cinderAdmin(ctx.env).waitSnapshotGone(id)));
  }
}

const SAMPLE_ATTEMPTS = 3;

/**
 * One sample; a Cinder error (its API on SQLite answers 500 now and then under load) fails that
 * attempt, whose snapshots are deleted, and the sample is taken again: counted, and printed with the
 * API log's last errors.
 */
async function sampleWithRetries(ctx: BenchContext, order: Order, volumes: readonly RunVolume[], onRetry: () => void): Promise<Sample> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await takeOnce(ctx, order, volumes);
    } catch (err) {
      if (!(err instanceof CinderError) || attempt >= SAMPLE_ATTEMPTS) throw err;
      onRetry();
      const log = await readFile(join(ctx.env.cinder.dir, 'log', 'cinder-api.log'), 'utf8').catch(() => '');
      const errors = log.split('\n').filter((l) => / ERROR /.test(l)).slice(-3);
      process.stderr.write(`  ${order} with ${volumes.length} volume(s) failed (${errorMessage(err)}), taken again; cinder-api's last errors:\n${errors.join('\n')}\n`);
    }
  }
}

function stats(values: readonly number[], format: (n: number) => string): string {
  return `${format(median(values))} (${format(Math.min(...values))}–${format(Math.max(...values))})`;
}

runBench('bench:volume', async () => {
  const args = parseArgs(ArgsSchema);
  printTable('Machine', await machineFacts());
  const { cluster, facts } = await startBenchCeph();
  const cinder = await startCinder(cluster);
  onCleanup('cinder', () => cinder.stop());
  const secret = await defineCephSecret(DEFAULT_TEST_URI, cinder.cephUser, cinder.cephKey);
  onCleanup('libvirt ceph secret', () => secret.remove());
  printTable('Ceph and Cinder', [
    ...facts,
    { fact: 'cinder', value: `${await cinderVersion()} (PyPI): cinder-api, -scheduler, -volume (RBD driver, pool ${cinder.pool}), SQLite, RabbitMQ; ready in ${seconds(cinder.startMs.total)} s` },
  ]);

  const env: VolumeGuests = { cinder, cluster, secretUuid: secret.uuid, projectId: randomUUID().replace(/-/g, '') };
  const guest = await createVolumeGuest(env, { workload: 'lockstep', rateKiB: args.rate, dataVolumes: Math.max(...VOLUME_COUNTS) - 1 });
  onCleanup(`guest ${guest.fixture.instance.name}`, () => guest.fixture.cleanup());
  const volumes = guest.volumeIds.map((volumeId, i): RunVolume => ({ volumeId, device: i === 0 ? 'vda' : dataVolumeTarget(i - 1), root: i === 0, sizeGiB: 1 }));
  const ctx: BenchContext = { env, fixture: guest.fixture, volumes };
  process.stderr.write(`bench:volume: a guest booting from volume ${volumes[0]?.volumeId ?? '?'} with ${volumes.length - 1} more, lockstep at ${args.rate} KiB/s; ${args.reps} reps\n`);

  const samples = new Map<string, Sample[]>();
  let retried = 0;
  for (let rep = 0; rep < args.reps; rep++) {
    for (const count of VOLUME_COUNTS) {
      const orders: Order[] = rep % 2 === 0 ? ['ours', 'nova'] : ['nova', 'ours'];
      for (const order of orders) {
        const sample = await sampleWithRetries(ctx, order, volumes.slice(0, count), () => retried++);
        process.stderr.write(`  rep ${rep + 1} ${count} volume(s) ${order}: freeze ${sample.freezeMs} ms, total ${Math.round(sample.totalMs)} ms\n`);
        samples.set(`${count}/${order}`, [...(samples.get(`${count}/${order}`) ?? []), sample]);
      }
    }
  }

  // the guest was thawed every time: its lockstep log still grows
  const fsynced = lastFsynced(await readConsole(guest.fixture.instance.consolePath), 'lockstep');
  await waitForFsynced(guest.fixture.instance.consolePath, 'lockstep', fsynced + 1);
  const left = await projectCinder(env).listSnapshots({});
  if (left.length > 0) throw new Error(`Cinder snapshots left behind: ${left.map((s) => s.id).join(', ')}`);

  const ms = (n: number): string => String(Math.round(n));
  const rows: Row[] = [];
  for (const count of VOLUME_COUNTS) {
    const nova = samples.get(`${count}/nova`) ?? [];
    for (const order of ['ours', 'nova'] as const) {
      const s = samples.get(`${count}/${order}`) ?? [];
      rows.push({
        volumes: String(count),
        order: ORDER_LABEL[order],
        'freeze window, ms: median (min–max)': stats(s.map((x) => x.freezeMs), ms),
        'total, s: median (min–max)': stats(s.map((x) => x.totalMs), seconds),
        'freeze vs Nova (medians)': `${(median(s.map((x) => x.freezeMs)) / median(nova.map((x) => x.freezeMs))).toFixed(2)}×`,
      });
    }
  }
  printTable(`Volume-backed snapshot of a running guest writing in lockstep (${args.reps} reps each, one run; ${retried} sample(s) taken again after a Cinder error)`, rows);
});
