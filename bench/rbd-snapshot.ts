// bench:rbd — snapshots of an instance whose root disk is in Ceph RBD (Nova's images_type=rbd), side
// by side in one run on one single-node Ceph: a real guest with a 1 GiB RBD disk writes 256 MiB,
// then each case takes one snapshot of it. Each case is one function in CASES; a case whose feature
// this build lacks prints "not available on this build" in its row. Every image is compared with
// the disk at its point in time (qemu-img compare, the ext4 superblock masked, which a live
// snapshot's freeze rewrites) before its numbers count. Prints tables; asserts no timings.
// Columns: wall seconds; host bytes read (the OSD's count of bytes read by its clients, the guest
// idle meanwhile); bytes sent to the image store; time as a ratio of Nova-style's.
// Run: npm run bench:rbd [-- --written 256 --changed 16]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { imageSpec, runCeph } from '../src/ceph';
import type { SnapshotResult } from '../src/contract';
import { RBD_CHECKPOINT_REFUSAL } from '../src/host/disk-source/rbd-source';
import { runTool, runToolOutput } from '../src/process/tool-process';
import { startCephCluster, type CephCluster } from '../src/testing/ceph/ceph-cluster';
import { rbdTarget } from '../src/testing/instance-lifecycle';
import { startEngine, type Engine } from '../test/support/engine-harness';
import { frozenCopy, guestWrites, imageMatchesFrozen, settle } from '../test/support/guest/chain-checks';
import { createRealGuest } from '../test/support/guest/real-guest-run';
import type { InstanceFixture } from '../test/support/instance-fixture';
import { defineClusterSecret, rbdGuestsOn } from '../test/support/rbd-guest';
import { parseArgs } from './support/args';
import { novaStyleExtractUpload } from './support/baselines';
import { osdBytesRead } from './support/ceph-counters';
import { onCleanup, runBench } from './support/cleanup';
import { countingImages, type SentBytes } from '../test/support/counting-images';
import { machineFacts } from './support/machine';
import { mib, printTable, ratio, seconds, timed, type Row } from './support/table';
import { startBenchTemporal } from './support/temporal';

const MiB = 1024 ** 2;
const ArgsSchema = z.object({
  written: z.coerce.number().int().min(16).max(512).default(256),
  changed: z.coerce.number().int().min(1).max(256).default(16),
});

interface BenchContext {
  engine: Engine;
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
}

/** A case measures one snapshot, or says why this build cannot take it. */
type CaseOutcome = Measured | { unavailable: string };

interface BenchCase {
  name: string;
  run(ctx: BenchContext): Promise<CaseOutcome>;
}

const NOVA_STYLE = 'Nova-style: qemu-img convert from RBD to a file, then upload';

/** Runs `work` and measures what the host read from the cluster and sent to the image store meanwhile. */
async function measure(ctx: BenchContext, work: () => Promise<{ imageId: string; bytesSent?: number; note?: string }>): Promise<Measured> {
  const [readBefore, sentBefore] = [await osdBytesRead(ctx.cluster), ctx.sent.bytes];
  const { ms, value } = await timed(work);
  const hostBytesRead = (await osdBytesRead(ctx.cluster)) - readBefore;
  return { ms, hostBytesRead, bytesSent: value.bytesSent ?? ctx.sent.bytes - sentBefore, imageId: value.imageId, ...(value.note ? { note: value.note } : {}) };
}

async function workflowSnapshot(ctx: BenchContext, tag: string): Promise<SnapshotResult> {
  const { result } = await ctx.engine.startSnapshot(ctx.uuid, `bench-rbd-${tag}`);
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
    name: 'one-pass live from RBD (backup job, the workflow)',
    run: (ctx) =>
      measure(ctx, async () => {
        const r = await workflowSnapshot(ctx, 'one-pass');
        if (r.mode !== 'live' || r.dataPath !== 'backup-job') throw new Error(`expected a live backup-job snapshot, got ${r.mode} over ${String(r.dataPath)}`);
        return { imageId: r.imageId, note: `${r.kind ?? 'full'}, ${r.quiesced ? 'quiesced' : 'not quiesced'}` };
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
    // Nova's Rbd.direct_snapshot needs an image backend that stores images in this cluster's
    // `images` pool (a Glance on RBD); this build has none to hand it to.
    name: 'direct snapshot (clone into the images pool, no byte through the host)',
    run: async () => ({ unavailable: 'not available on this build' }),
  },
  {
    // Detected by running it: the guest changes 16 MiB and the workflow snapshots again; a build
    // without RBD change tracking answers with a full snapshot and says why.
    name: 'incremental from rbd diff, 16 MiB changed',
    run: async (ctx) => {
      await guestWrites(ctx.fixture, 'data-0.bin', ctx.changedMiB, 8);
      await settle(ctx.fixture);
      let result: SnapshotResult | undefined;
      const measured = await measure(ctx, async () => {
        result = await workflowSnapshot(ctx, 'incremental');
        return { imageId: result.imageId, note: `${ctx.changedMiB} MiB changed` };
      });
      if (result?.kind !== 'incremental') {
        await ctx.engine.images.delete(measured.imageId);
        const why = result?.fullReason === RBD_CHECKPOINT_REFUSAL ? '' : ` (a full one: ${result?.fullReason ?? '?'})`;
        return { unavailable: `not available on this build${why}` };
      }
      return measured;
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
    const reference = c.name.startsWith('incremental') ? await frozenCopy(ctx.fixture, 'bench-rbd-incremental') : frozen;
    const { identical, output } = await imageMatchesFrozen(ctx.engine.images, outcome.imageId, reference, ctx.workDir);
    if (!identical) throw new Error(`${c.name}: the image differs from the disk (${output}): the measurement is void`);
    await ctx.engine.images.delete(outcome.imageId).catch(() => undefined);
    return outcome;
  } finally {
    await rm(frozen, { force: true });
  }
}

runBench('bench:rbd', async () => {
  const args = parseArgs(ArgsSchema);
  printTable('Machine', await machineFacts());
  const cluster = await startCephCluster();
  onCleanup('ceph cluster', () => cluster.stop());
  const secret = await defineClusterSecret(cluster);
  onCleanup('libvirt ceph secret', () => secret.remove());
  const rbd = rbdGuestsOn(cluster, secret.uuid);
  printTable('Ceph', [
    { fact: 'ceph', value: (await runToolOutput('ceph', ['--version'])).stdout.trim() },
    { fact: 'cluster', value: `1 mon, 1 mgr, 1 OSD (BlueStore in a sparse file), loopback; HEALTH_OK in ${(cluster.startMs / 1000).toFixed(1)} s` },
  ]);
  await startBenchTemporal();
  const sent: SentBytes = { bytes: 0 };
  const engine = await startEngine({ hostEnv: rbd.hostEnv, wrapImages: (images) => countingImages(images, sent) });
  onCleanup('engine', () => engine.stop());
  const workDir = await mkdtemp(join(tmpdir(), 'snap-bench-rbd-'));
  onCleanup('bench work dir', () => rm(workDir, { recursive: true, force: true }));
  const fixture = await createRealGuest({ prefix: 'snapbenchrbd', diskSizeBytes: 1024 * MiB, memoryMiB: 256, linux: { workload: 'idle' }, ...rbd.guestOptions() });
  onCleanup(`guest ${fixture.instance.name}`, () => fixture.cleanup());
  const uuid = (await engine.register(fixture)).uuid;
  process.stderr.write(`bench:rbd: the guest writes ${args.written} MiB into its 1 GiB RBD disk…\n`);
  for (let i = 0; i < args.written / 64; i++) await guestWrites(fixture, `data-${i}.bin`, Math.min(64, args.written - i * 64));
  const ctx: BenchContext = { engine, cluster, fixture, uuid, workDir, sent, changedMiB: args.changed };

  const outcomes: [BenchCase, CaseOutcome][] = [];
  for (const c of CASES) outcomes.push([c, await runCase(ctx, c)]);
  const nova = outcomes.find(([c]) => c.name === NOVA_STYLE)?.[1];
  const novaMs = nova !== undefined && !('unavailable' in nova) ? nova.ms : NaN;
  const rows: Row[] = outcomes.map(([c, o]) =>
    'unavailable' in o
      ? { case: c.name, seconds: o.unavailable, 'host bytes read (MiB)': '—', 'sent to the image store (MiB)': '—', 'time vs Nova-style': '—', note: '' }
      : { case: c.name, seconds: seconds(o.ms), 'host bytes read (MiB)': mib(o.hostBytesRead), 'sent to the image store (MiB)': mib(o.bytesSent), 'time vs Nova-style': ratio(o.ms, novaMs), note: o.note ?? '' },
  );
  printTable(`Snapshots of a 1 GiB RBD disk with ${args.written} MiB written (one run each)`, rows);
});
