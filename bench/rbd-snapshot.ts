// bench:rbd — snapshots of an instance whose root disk is in Ceph RBD (Nova's images_type=rbd), side
// by side in one run on one single-node Ceph: a real guest with a 1 GiB RBD disk writes 256 MiB,
// then each case takes one snapshot of it. Each case is one function in CASES; a case whose feature
// this build lacks prints "not available on this build" in its row. The direct snapshot runs last,
// on an engine of its own over a real Keystone and a Glance on this cluster's `images` pool (two
// engines in one process would share the control task queue). Every image is compared with
// the disk at its point in time (qemu-img compare, the ext4 superblock masked, which a live
// snapshot's freeze rewrites) before its numbers count. Prints tables; asserts no timings.
// Columns: wall seconds; host bytes read (the OSD's count of bytes read by its clients, the guest
// idle meanwhile); bytes sent to the image store; time as a ratio of Nova-style's. Then issue 23's
// targets, each met or not with the measured reason.
// Run: npm run bench:rbd [-- --written 256 --changed 16]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { imageSpec, runCeph } from '../src/ceph';
import type { SnapshotResult } from '../src/contract';
import { RBD_CHECKPOINT_REFUSAL } from '../src/host/disk-source/rbd-source';
import { runTool } from '../src/process/tool-process';
import type { CephCluster } from '../src/testing/ceph/ceph-cluster';
import { rbdTarget } from '../src/testing/instance-lifecycle';
import { startEngine, type Engine } from '../test/support/engine-harness';
import { frozenCopy, guestWrites, imageMatchesFrozen, settle } from '../test/support/guest/chain-checks';
import { createRealGuest } from '../test/support/guest/real-guest-run';
import type { InstanceFixture } from '../test/support/instance-fixture';
import { startGlance } from '../test/support/openstack/glance';
import { startGlanceEngine } from '../test/support/openstack/glance-engine';
import { startKeystone } from '../test/support/openstack/keystone';
import { defineClusterSecret, rbdGuestsOn, rbdLeftovers } from '../test/support/rbd-guest';
import { parseArgs } from './support/args';
import { startBenchCeph } from './support/bench-ceph';
import { novaStyleExtractUpload } from './support/baselines';
import { osdBytesRead } from './support/ceph-counters';
import { onCleanup, runBench } from './support/cleanup';
import { countingImages, type SentBytes } from '../test/support/counting-images';
import type { ImageClient } from '../src/images/client';
import { machineFacts } from './support/machine';
import { mib, printTable, ratio, seconds, timed, type Row } from './support/table';
import { startBenchTemporal } from './support/temporal';

const MiB = 1024 ** 2;
/** Glance's pool in the cluster, as Nova's direct snapshot expects it */
const GLANCE_POOL = 'images';
const ArgsSchema = z.object({
  written: z.coerce.number().int().min(16).max(512).default(256),
  changed: z.coerce.number().int().min(1).max(256).default(16),
});

interface BenchContext {
  engine: Engine;
  /** stops `engine` (once): the direct case's engine takes over the control task queue */
  stopEngine(): Promise<void>;
  /** the host worker's settings for this cluster */
  hostEnv: Record<string, string>;
  cluster: CephCluster;
  fixture: InstanceFixture;
  uuid: string;
  workDir: string;
  /** what the host worker has sent to the image store so far */
  sent: SentBytes;
  changedMiB: number;
}

interface Measured {
  ms: number;
  hostBytesRead: number;
  bytesSent: number;
  imageId: string;
  note?: string;
  /** where the image is, when not in the main engine's image store */
  images?: ImageClient;
}

/** A case measures one snapshot, or says why this build cannot take it. */
type CaseOutcome = Measured | { unavailable: string };

interface BenchCase {
  name: string;
  run(ctx: BenchContext): Promise<CaseOutcome>;
}

const NOVA_STYLE = 'Nova-style: qemu-img convert from RBD to a file, then upload';
const ONE_PASS = 'one-pass live from RBD (the workflow)';
const DIRECT = 'direct snapshot (clone into the images pool, no byte through the host)';
const INCREMENTAL = 'incremental from rbd diff';

/** Runs `work` and measures what the host read from the cluster and sent to the image store meanwhile. */
async function measure(ctx: BenchContext, work: () => Promise<{ imageId: string; bytesSent?: number; note?: string }>): Promise<Measured> {
  const [readBefore, sentBefore] = [await osdBytesRead(ctx.cluster), ctx.sent.bytes];
  const { ms, value } = await timed(work);
  const hostBytesRead = (await osdBytesRead(ctx.cluster)) - readBefore;
  return { ms, hostBytesRead, bytesSent: value.bytesSent ?? ctx.sent.bytes - sentBefore, imageId: value.imageId, ...(value.note ? { note: value.note } : {}) };
}

async function workflowSnapshot(engine: Engine, uuid: string, tag: string): Promise<SnapshotResult> {
  const { result } = await engine.startSnapshot(uuid, `bench-rbd-${tag}`);
  const value = await result;
  if (value.status !== 'active') throw new Error(`snapshot ${tag} ended ${value.status}`);
  return value;
}

function rbdDisk(ctx: BenchContext) {
  const rbd = ctx.fixture.instance.rbd;
  if (rbd === null) throw new Error('the bench guest has no RBD disk');
  return rbd;
}

const CASES: BenchCase[] = [
  {
    // whichever live data path the build takes (with change tracking on, the run's own RBD
    // snapshot read by qemu-nbd; else the backup job), named in the note
    name: ONE_PASS,
    run: (ctx) =>
      measure(ctx, async () => {
        const r = await workflowSnapshot(ctx.engine, ctx.uuid, 'one-pass');
        if (r.mode !== 'live') throw new Error(`expected a live snapshot, got ${r.mode} over ${String(r.dataPath)}`);
        return { imageId: r.imageId, note: `live over ${String(r.dataPath)}, ${r.kind ?? 'full'}, ${r.quiesced ? 'quiesced' : 'not quiesced'}` };
      }),
  },
  {
    name: NOVA_STYLE,
    run: (ctx) =>
      measure(ctx, async () => {
        const out = join(ctx.workDir, 'nova-convert.raw');
        const r = await novaStyleExtractUpload(ctx.engine.images, out, 'raw', 'convert', (file) => runTool('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'raw', rbdTarget(rbdDisk(ctx)), file]));
        return { imageId: r.imageId, bytesSent: r.uploadedBytes, note: 'crash-consistent, not quiesced' };
      }),
  },
  {
    name: 'Nova-style: rbd export to a file, then upload',
    run: (ctx) =>
      measure(ctx, async () => {
        const disk = rbdDisk(ctx);
        const out = join(ctx.workDir, 'nova-export.raw');
        const conn = { confPath: disk.confPath, user: disk.user, timeoutMs: 600_000 };
        const r = await novaStyleExtractUpload(ctx.engine.images, out, 'raw', 'export', (file) => runCeph(conn, 'rbd', ['export', '--no-progress', imageSpec(disk), file]).then(() => undefined));
        return { imageId: r.imageId, bytesSent: r.uploadedBytes, note: 'crash-consistent, not quiesced' };
      }),
  },
  {
    // A base snapshot first (untimed; its RBD snapshot is the diff's start), the guest changes
    // `changedMiB`, then the timed incremental: over that base, carrying only the changes, and
    // leaving of ours only the RBD snapshot the chain records. A build without change tracking
    // answers with a full snapshot and says why.
    name: INCREMENTAL,
    run: async (ctx) => {
      const base = await workflowSnapshot(ctx.engine, ctx.uuid, 'incremental-base');
      await guestWrites(ctx.fixture, 'data-0.bin', ctx.changedMiB, 8);
      await settle(ctx.fixture);
      let result: SnapshotResult | undefined;
      const measured = await measure(ctx, async () => {
        result = await workflowSnapshot(ctx.engine, ctx.uuid, 'incremental');
        return { imageId: result.imageId, note: `${ctx.changedMiB} MiB changed` };
      });
      await ctx.engine.images.delete(base.imageId).catch(() => undefined);
      if (result?.kind !== 'incremental') {
        await ctx.engine.images.delete(measured.imageId);
        if (result?.fullReason === RBD_CHECKPOINT_REFUSAL) return { unavailable: 'not available on this build (RBD change tracking off)' };
        throw new Error(`expected an incremental, got a full snapshot: ${result?.fullReason ?? '?'}`);
      }
      if (result.parentImageId !== base.imageId) throw new Error(`the incremental's parent is ${String(result.parentImageId)}, not the base ${base.imageId}: the measurement is void`);
      const left = await rbdLeftovers(ctx.cluster, ctx.fixture, ctx.engine.store.chain);
      if (left.length > 0) throw new Error(`left in Ceph after the incremental: ${left.join(', ')}`);
      const changed = ctx.changedMiB * MiB;
      return { ...measured, note: `${ctx.changedMiB} MiB changed; ${(measured.bytesSent / changed).toFixed(2)}× the changed bytes sent` };
    },
  },
  {
    // Nova's Rbd.direct_snapshot into a real Glance whose store is this cluster's `images` pool,
    // on an engine of its own (SNAP_GLANCE_RBD_POOL); last, as it stops the main engine.
    name: DIRECT,
    run: async (ctx) => {
      await ctx.stopEngine();
      const keystone = await startKeystone();
      onCleanup('keystone', () => keystone.stop());
      const service = await keystone.createUser('snapshots', 'service', ['admin', 'service']);
      const glance = await startGlance(keystone, { rbd: { confPath: ctx.cluster.confPath, user: ctx.cluster.client.user, pool: GLANCE_POOL } });
      onCleanup('glance on rbd', () => glance.stop());
      const direct = await startGlanceEngine(keystone, service, glance, ctx.hostEnv, GLANCE_POOL);
      onCleanup('direct engine', () => direct.engine.stop());
      const uuid = (await direct.engine.register(ctx.fixture)).uuid;
      const measured = await measure(ctx, async () => {
        const sentBefore = direct.sent.bytes;
        const r = await workflowSnapshot(direct.engine, uuid, 'direct');
        if (r.dataPath !== 'rbd-direct') throw new Error(`expected a direct snapshot, got ${r.mode} over ${String(r.dataPath)}`);
        return { imageId: r.imageId, bytesSent: direct.sent.bytes - sentBefore, note: `${r.mode}, ${r.quiesced ? 'quiesced' : 'not quiesced'}; the OSD's reads are rbd flatten's (librbd on the host, as Nova's)` };
      });
      return { ...measured, images: direct.engine.images };
    },
  },
];

async function runCase(ctx: BenchContext, c: BenchCase): Promise<CaseOutcome> {
  process.stderr.write(`  ${c.name}…\n`);
  await settle(ctx.fixture);
  const frozen = await frozenCopy(ctx.fixture, 'bench-rbd');
  try {
    const outcome = await c.run(ctx);
    if ('unavailable' in outcome) return outcome;
    // an incremental case changed the disk after the copy: its own point in time is read again
    const reference = c.name === INCREMENTAL ? await frozenCopy(ctx.fixture, 'bench-rbd-incremental') : frozen;
    const images = outcome.images ?? ctx.engine.images;
    const { identical, output } = await imageMatchesFrozen(images, outcome.imageId, reference, ctx.workDir);
    if (!identical) throw new Error(`${c.name}: the image differs from the disk (${output}): the measurement is void`);
    await images.delete(outcome.imageId).catch(() => undefined);
    return outcome;
  } finally {
    await rm(frozen, { force: true });
  }
}

runBench('bench:rbd', async () => {
  const args = parseArgs(ArgsSchema);
  printTable('Machine', await machineFacts());
  const { cluster, facts } = await startBenchCeph();
  const secret = await defineClusterSecret(cluster);
  onCleanup('libvirt ceph secret', () => secret.remove());
  const rbd = rbdGuestsOn(cluster, secret.uuid);
  printTable('Ceph', facts);
  await startBenchTemporal();
  const sent: SentBytes = { bytes: 0 };
  const engine = await startEngine({ hostEnv: rbd.hostEnv, wrapImages: (images) => countingImages(images, sent) });
  const stopEngine = onCleanup('engine', () => engine.stop());
  const workDir = await mkdtemp(join(tmpdir(), 'snap-bench-rbd-'));
  onCleanup('bench work dir', () => rm(workDir, { recursive: true, force: true }));
  const fixture = await createRealGuest({ prefix: 'snapbenchrbd', diskSizeBytes: 1024 * MiB, memoryMiB: 256, linux: { workload: 'idle' }, ...rbd.guestOptions() });
  onCleanup(`guest ${fixture.instance.name}`, () => fixture.cleanup());
  const uuid = (await engine.register(fixture)).uuid;
  process.stderr.write(`bench:rbd: the guest writes ${args.written} MiB into its 1 GiB RBD disk…\n`);
  for (let i = 0; i < args.written / 64; i++) await guestWrites(fixture, `data-${i}.bin`, Math.min(64, args.written - i * 64));
  const ctx: BenchContext = { engine, stopEngine, hostEnv: rbd.hostEnv, cluster, fixture, uuid, workDir, sent, changedMiB: args.changed };

  const outcomes: [BenchCase, CaseOutcome][] = [];
  for (const c of CASES) outcomes.push([c, await runCase(ctx, c)]);
  const measuredOf = (name: string): Measured | undefined => {
    const o = outcomes.find(([c]) => c.name === name)?.[1];
    return o === undefined || 'unavailable' in o ? undefined : o;
  };
  const novaMs = measuredOf(NOVA_STYLE)?.ms ?? NaN;
  const rows: Row[] = outcomes.map(([c, o]) =>
    'unavailable' in o
      ? { case: c.name, seconds: o.unavailable, 'host bytes read (MiB)': '—', 'sent to the image store (MiB)': '—', 'time vs Nova-style': '—', note: '' }
      : { case: c.name, seconds: seconds(o.ms), 'host bytes read (MiB)': mib(o.hostBytesRead), 'sent to the image store (MiB)': mib(o.bytesSent), 'time vs Nova-style': ratio(o.ms, novaMs), note: o.note ?? '' },
  );
  printTable(`Snapshots of a 1 GiB RBD disk with ${args.written} MiB written (one run each)`, rows);
  printTable("Issue 23's targets", targets(measuredOf, novaMs, args.changed * MiB));
});

function verdict(target: string, m: Measured | undefined, met: (m: Measured) => boolean, why: (m: Measured) => string): Row {
  if (m === undefined) return { target, verdict: 'not measured', reason: 'the case did not run on this build' };
  return { target, verdict: met(m) ? 'met' : 'not met', reason: why(m) };
}

/** Each target of issue 23 §5, met or not, with the measured reason. */
function targets(measuredOf: (name: string) => Measured | undefined, novaMs: number, changedBytes: number): Row[] {
  const direct = measuredOf(DIRECT);
  return [
    verdict('direct snapshot: 0 bytes through the host (its stream)', direct, (m) => m.bytesSent === 0, (m) => `${mib(m.bytesSent)} MiB through the snapshot's stream to the image store; the OSD served ${mib(m.hostBytesRead)} MiB to rbd flatten's librbd on the host (as Nova's flatten)`),
    verdict('direct snapshot: time ≤ 0.2× Nova-style', direct, (m) => m.ms <= 0.2 * novaMs, (m) => `${seconds(m.ms)} s = ${ratio(m.ms, novaMs)} of Nova-style's ${seconds(novaMs)} s`),
    verdict('incremental: sends ≤ 1.1× the changed bytes', measuredOf(INCREMENTAL), (m) => m.bytesSent <= 1.1 * changedBytes, (m) => `${mib(m.bytesSent)} MiB sent for ${mib(changedBytes)} MiB changed (${(m.bytesSent / changedBytes).toFixed(2)}×)`),
    verdict('one-pass live from RBD ≤ Nova-style', measuredOf(ONE_PASS), (m) => m.ms <= novaMs, (m) => `${seconds(m.ms)} s against ${seconds(novaMs)} s (${ratio(m.ms, novaMs)})`),
  ];
}
