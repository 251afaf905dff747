// bench:dedup — dedup across instances (issue #25 §2): two instances made from the same base image
// (Nova's image cache: the same base file on each, here a copy), each with changes of its own in
// its overlay, snapshotted live in turn through the real engine (Temporal, host and control
// workers as processes, the image service over HTTP). The first full snapshot of the first
// instance carries the base and its own chunks; the first full snapshot of the second carries only
// its own. "received" is what the image service received for the run (request bodies, counted by
// the proxy in front of it: chunks, names, questions); every image is compared with its disk
// (qemu-img compare) before its numbers count. Prints tables; asserts no timings.
// Run: npm run bench:dedup [-- --disk 1024 --base 512 --own 32]
import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import type { SnapshotResult } from '../src/contract';
import { imagesIdentical } from '../src/host/qemu-img';
import { NAMED_CHUNK_BYTES } from '../src/images/client';
import { runTool } from '../src/process/tool-process';
import { startFaultStack, type FaultStack } from '../test/support/fault-stack';
import { downloadImage } from '../test/support/image-bytes';
import { createInstanceFixture, type InstanceFixture } from '../test/support/instance-fixture';
import { parseArgs } from './support/args';
import { onCleanup, runBench } from './support/cleanup';
import { machineFacts } from './support/machine';
import { mib, printTable, ratio, seconds } from './support/table';

const MiB = 1024 ** 2;
const ArgsSchema = z.object({
  disk: z.coerce.number().int().min(64).max(8192).default(1024),
  base: z.coerce.number().int().min(1).default(512),
  own: z.coerce.number().int().min(1).max(63).default(32),
});

/** A qcow2 base of `diskBytes` whose first `dataBytes` are random (the rest unallocated zeros). */
async function writeRandomBase(file: string, diskBytes: number, dataBytes: number, dir: string): Promise<void> {
  const raw = join(dir, 'base.raw');
  const handle = await open(raw, 'w');
  try {
    for (let at = 0; at < dataBytes; at += 16 * MiB) await handle.write(randomBytes(Math.min(16 * MiB, dataBytes - at)), 0, undefined, at);
    await handle.truncate(diskBytes);
  } finally {
    await handle.close();
  }
  await runTool('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, file]);
  await rm(raw, { force: true });
}

/**
 * The instance's own changes: `chunks` (at most 255) whole 256 KiB chunks of its overlay, spread over
 * the disk (over the base's data too), each unlike any other: its first half one byte per chunk,
 * its second half the instance's `tag`.
 */
async function writeOwnChunks(overlay: string, diskBytes: number, chunks: number, tag: number): Promise<void> {
  const half = NAMED_CHUNK_BYTES / 2;
  const stride = Math.floor(diskBytes / NAMED_CHUNK_BYTES / chunks) * NAMED_CHUNK_BYTES;
  const writes = Array.from({ length: chunks }, (_, i) => ['-c', `write -P ${i + 1} ${i * stride} ${half}`, '-c', `write -P ${tag} ${i * stride + half} ${half}`]).flat();
  await runTool('qemu-io', ['-f', 'qcow2', ...writes, overlay]);
}

async function instance(prefix: string, diskBytes: number): Promise<InstanceFixture> {
  // defined but not started: the base and overlay are written first (qemu-io needs the write lock)
  const fixture = await createInstanceFixture({ diskSizeBytes: diskBytes, memoryMiB: 64, start: false, prefix });
  onCleanup(`guest ${fixture.instance.name}`, () => fixture.cleanup());
  return fixture;
}

async function snapshot(stack: FaultStack, fixture: InstanceFixture, dir: string): Promise<{ result: SnapshotResult; received: number; ms: number; compare: string }> {
  const { uuid } = await stack.register(fixture);
  const before = stack.proxy.bodyBytes;
  const started = Date.now();
  const snap = await stack.startSnapshot(uuid);
  const result: SnapshotResult = await stack.client.workflow.getHandle(snap.workflowId).result();
  const ms = Date.now() - started;
  const received = stack.proxy.bodyBytes - before;
  const file = await downloadImage(stack.images, snap.imageId, dir);
  try {
    if (!(await imagesIdentical(file, fixture.instance.overlayPath, { forceShare: true }))) throw new Error(`image ${snap.imageId} differs from the disk: the measurement is void`);
  } finally {
    await rm(file, { force: true });
  }
  return { result, received, ms, compare: 'identical' };
}

runBench('bench:dedup', async () => {
  const args = parseArgs(ArgsSchema);
  const diskBytes = args.disk * MiB;
  const baseBytes = Math.min(args.base, args.disk) * MiB;
  const ownChunks = (args.own * MiB) / NAMED_CHUNK_BYTES;
  printTable('Machine', await machineFacts());
  const dir = await mkdtemp(join(tmpdir(), 'snap-bench-dedup-'));
  onCleanup('bench work dir', () => rm(dir, { recursive: true, force: true }));
  process.stderr.write(`bench:dedup: two ${args.disk} MiB instances of one base with ${mib(baseBytes)} MiB of data, ${args.own} MiB of their own each…\n`);
  const first = await instance('snapbench-dedup-a', diskBytes);
  const second = await instance('snapbench-dedup-b', diskBytes);
  await writeRandomBase(first.instance.basePath, diskBytes, baseBytes, dir);
  await copyFile(first.instance.basePath, second.instance.basePath);
  await writeOwnChunks(first.instance.overlayPath, diskBytes, ownChunks, 1);
  await writeOwnChunks(second.instance.overlayPath, diskBytes, ownChunks, 2);
  for (const f of [first, second]) f.instance.domain = await f.client.domainCreateWithFlags(f.instance.domain, 0);
  const stack = await startFaultStack();
  onCleanup('engine processes', () => stack.stop());
  const rows = [];
  for (const [label, fixture] of [['first instance', first], ['second instance of the same base', second]] as const) {
    process.stderr.write(`  ${label}…\n`);
    const run = await snapshot(stack, fixture, dir);
    const own = args.own * MiB;
    rows.push({
      'first full snapshot of': label,
      'guest data MiB': mib(run.result.changedBytes ?? 0),
      'own changed MiB': mib(own),
      'received by the service MiB': mib(run.received),
      'received / own changed': ratio(run.received, own),
      target: label === 'first instance' ? '(carries the base)' : '≤ 1.10×',
      'end to end s': seconds(run.ms),
      'stream s': seconds(run.result.steps.upload ?? 0),
      'data path': String(run.result.dataPath),
      'qemu-img compare': run.compare,
    });
  }
  printTable(`Dedup across instances: first full snapshots of two instances of one base (${args.disk} MiB disk, ${mib(baseBytes)} MiB base data, ${args.own} MiB own each)`, rows);
});
