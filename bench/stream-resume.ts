// bench:stream — the one-pass stream with the host worker as its own process (as deployed):
//  1. the host worker's memory while it streams a 4 GiB disk (2 GiB written): VmRSS sampled every
//     100 ms (its peak and median while the snapshot runs), and the process's peak (VmHWM) at the end;
//  2. resume: kill -9 of the host worker at about half of a 1 GiB stream, the worker back 2 s later;
//     the offset the service had acknowledged, where the retry resumed, how long from the worker's
//     return until the stream moved again, and the image compared with the disk.
// The guests run no OS, so their disks never change and every image must equal its disk.
// Prints tables; asserts no timings. Run: npm run bench:stream [-- --parts rss,resume]
import { readFile, rm } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { imagesIdentical } from '../src/host/qemu-img';
import type { SnapshotResult } from '../src/contract';
import { startFaultStack, type FaultStack } from '../test/support/fault-stack';
import { downloadImage } from '../test/support/image-bytes';
import { parseArgs } from './support/args';
import { onCleanup, runBench } from './support/cleanup';
import { createFilledGuest, type FilledGuest } from './support/filled-guest';
import { machineFacts } from './support/machine';
import { median, mib, printTable, seconds } from './support/table';

const MiB = 1024 ** 2;
const GiB = 1024 * MiB;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ArgsSchema = z.object({
  parts: z
    .string()
    .regex(/^(rss|resume)(,(rss|resume))*$/)
    .default('rss,resume'),
});

async function procStatusKiB(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return m?.[1] === undefined ? NaN : Number(m[1]);
}

async function verify(stack: FaultStack, imageId: string, guest: FilledGuest, dir: string): Promise<string> {
  const file = await downloadImage(stack.images, imageId, dir);
  try {
    if (!(await imagesIdentical(file, guest.fixture.instance.overlayPath, { forceShare: true }))) throw new Error(`image ${imageId} differs from the disk: the measurement is void`);
    return 'identical';
  } finally {
    await rm(file, { force: true });
    await stack.images.delete(imageId);
  }
}

async function memoryWhileStreaming(stack: FaultStack, dir: string): Promise<void> {
  process.stderr.write('bench:stream: a 4 GiB disk with 2 GiB written…\n');
  const guest = await createFilledGuest({ diskBytes: 4 * GiB, writtenBytes: 2 * GiB, prefix: 'snapbench-rss' });
  const instance = await stack.register(guest.fixture);
  const pid = stack.hostWorker.pid;
  if (pid === undefined) throw new Error('host worker not running');
  const rssBefore = await procStatusKiB(pid, 'VmRSS');
  const rssSamples: number[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const rss = await procStatusKiB(pid, 'VmRSS').catch(() => NaN);
      if (Number.isFinite(rss)) rssSamples.push(rss);
      await sleep(100);
    }
  })();
  const started = Date.now();
  const snap = await stack.startSnapshot(instance.uuid);
  const result: SnapshotResult = await stack.client.workflow.getHandle(snap.workflowId).result();
  const ms = Date.now() - started;
  sampling = false;
  await sampler;
  const hwm = await procStatusKiB(pid, 'VmHWM');
  const compare = await verify(stack, snap.imageId, guest, dir);
  printTable('Host worker memory while streaming (one-pass live, host worker as its own process)', [
    {
      disk: `${mib(guest.diskBytes)} MiB`,
      written: `${mib(guest.writtenBytes)} MiB`,
      'image MiB': mib(result.size),
      'end to end s': seconds(ms),
      'stream s': seconds(result.steps.upload ?? 0),
      'stream MiB/s': (result.size / MiB / ((result.steps.upload ?? 1) / 1000)).toFixed(0),
      'RSS before MiB': (rssBefore / 1024).toFixed(0),
      'RSS median while snapshotting MiB': (median(rssSamples) / 1024).toFixed(0),
      'RSS max while snapshotting MiB': (Math.max(rssBefore, ...rssSamples) / 1024).toFixed(0),
      samples: String(rssSamples.length),
      'VmHWM (process peak) MiB': (hwm / 1024).toFixed(0),
      'target MiB': '≤ 200',
      'qemu-img compare': compare,
    },
  ]);
  await guest.fixture.cleanup();
}

async function resumeAfterKill(stack: FaultStack, dir: string): Promise<void> {
  process.stderr.write('bench:stream: kill -9 of the host worker half-way through a 1 GiB stream…\n');
  const guest = await createFilledGuest({ diskBytes: 2 * GiB, writtenBytes: GiB, prefix: 'snapbench-resume' });
  const instance = await stack.register(guest.fixture);
  const started = Date.now();
  const snap = await stack.startSnapshot(instance.uuid);
  const handle = stack.client.workflow.getHandle(snap.workflowId);
  let acknowledged = 0;
  let size = 0;
  while (acknowledged < size / 2 || size === 0) {
    const staged = await stack.images.stagedUpload(snap.imageId).catch(() => null);
    if (staged !== null) ({ offset: acknowledged, size } = staged);
    if (Date.now() - started > 300_000) throw new Error('the stream never reached half-way');
    await sleep(20);
  }
  const killedAt = Date.now();
  await stack.hostWorker.kill();
  await sleep(2_000);
  const kept = (await stack.images.stagedUpload(snap.imageId))?.offset ?? 0;
  await stack.hostWorker.start();
  const backAt = Date.now();
  let movedAt = 0;
  while (movedAt === 0) {
    const staged = await stack.images.stagedUpload(snap.imageId).catch(() => null);
    if (staged === null || staged.offset > kept) movedAt = Date.now();
    else await sleep(20);
    if (Date.now() - backAt > 300_000) throw new Error('the stream never moved again');
  }
  const result: SnapshotResult = await handle.result();
  const compare = await verify(stack, snap.imageId, guest, dir);
  const resumedFrom = result.resumedFrom ?? 0;
  printTable('Resume after kill -9 of the host worker at ~50% of a 1 GiB stream (worker back after 2 s)', [
    {
      'image MiB': mib(result.size),
      'acknowledged at the kill MiB': mib(acknowledged),
      'kept by the service MiB': mib(kept),
      'retry resumed from MiB': mib(resumedFrom),
      're-sent beyond the acknowledged offset MiB': mib(Math.max(0, acknowledged - resumedFrom)),
      'target MiB': '≤ 64',
      'worker back → stream moving s': seconds(movedAt - backAt),
      'kill → result s': seconds(Date.now() - killedAt),
      'data path': String(result.dataPath),
      'qemu-img compare': compare,
    },
  ]);
  await guest.fixture.cleanup();
}

runBench('bench:stream', async () => {
  const parts = parseArgs(ArgsSchema).parts.split(',');
  printTable('Machine', await machineFacts());
  const dir = await mkdtemp(join(tmpdir(), 'snap-bench-stream-'));
  onCleanup('bench work dir', () => rm(dir, { recursive: true, force: true }));
  // Protocol 1 (the guest data staged): the resume is measured by the staged offset, which a named
  // upload does not have (its retry sends the chunks the service lacks: one-pass-resume.test.ts).
  const stack = await startFaultStack({ hostEnv: { SNAP_IMAGE_NAMED_UPLOADS: 'false' } });
  onCleanup('engine processes', () => stack.stop());
  if (parts.includes('rss')) await memoryWhileStreaming(stack, dir);
  if (parts.includes('resume')) await resumeAfterKill(stack, dir);
});
