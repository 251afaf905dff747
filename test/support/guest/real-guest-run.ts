// One snapshot of a real writing guest through the whole engine, and what its image holds: the
// filesystem checked with e2fsck after the journal replay a booting guest would do, and the
// workload's own verifier over the file it writes.
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { parseToolJson, runToolOutput } from '../../../src/process/tool-process';
import { LOGICAL_DIGEST_ALGORITHM, logicalDigestOf } from '../../../src/qcow2';
import { LOGICAL_DIGEST_PROPERTY, type ImageClient } from '../../../src/images/client';
import type { DomainState } from '../../../src/libvirt';
import { POWER_STATE_SHUTDOWN, type PowerState, type SnapshotResult } from '../../../src/contract';
import type { Workload } from '../../../src/testing/instance-layout';
import { withGuestImage } from '../../../src/testing/guest/guest-image-reader';
import { readConsole, waitForConsole } from '../../../src/testing/guest/guest-console';
import { lastFsynced, verifyAppendLog, verifyBlockFile, type AppendLogSummary, type BlockFileSummary, type WorkloadMode } from '../../../src/testing/guest/workload-verifiers';
import type { Engine } from '../engine-harness';
import { downloadImage } from '../image-bytes';
import { createInstanceFixture, type FixtureOptions, type InstanceFixture } from '../instance-fixture';

export const BLOCK_BYTES = 64 * 1024;

export interface RealGuestRun {
  fixture: InstanceFixture;
  imageId: string;
  result?: SnapshotResult;
  error?: unknown;
  state: DomainState;
  /** the workload's last fsynced record/sequence before the snapshot started */
  fsyncedBefore: number;
  startedAt: number;
  finishedAt: number;
}

/** Waits until the workload has made `count` fsyncs durable (so the image must hold something). */
export async function waitForFsynced(consolePath: string, mode: WorkloadMode, atLeast: number, timeoutMs = 60_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const n = lastFsynced(await readConsole(consolePath), mode);
    if (n >= atLeast) return n;
    if (Date.now() > deadline) throw new Error(`workload ${mode} reached fsynced=${n}, not ${atLeast}, within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A started guest whose workload has made something durable; `pauseWhenReady` pauses it after that. */
export async function createRealGuest(options: FixtureOptions): Promise<InstanceFixture> {
  const fixture = await createInstanceFixture({ ...options, pauseWhenReady: false });
  const workload = options.linux?.workload ?? 'log';
  try {
    if (options.start !== false) {
      if (workload === 'idle') await waitForConsole(fixture.instance.consolePath, /SNAPGUEST ready/, { timeoutMs: 60_000 });
      else await waitForFsynced(fixture.instance.consolePath, workload, 1);
      if (options.pauseWhenReady) await fixture.client.domainSuspend(fixture.instance.domain);
    }
  } catch (err) {
    await fixture.cleanup();
    throw err;
  }
  return fixture;
}

export async function snapshotRealGuest(engine: Engine, fixture: InstanceFixture, powerState?: PowerState): Promise<RealGuestRun> {
  const instance = await engine.register(fixture, powerState);
  const fsyncedBefore = await fsyncedNow(fixture);
  const startedAt = Date.now();
  const { imageId, result } = await engine.startSnapshot(instance.uuid);
  const outcome = await result.then(
    (r) => ({ result: r, error: undefined }),
    (error: unknown) => ({ result: undefined, error }),
  );
  const finishedAt = Date.now();
  const dom = await fixture.client.domainLookupByName(fixture.instance.name);
  const { state } = await fixture.client.domainGetState(dom);
  return { fixture, imageId, ...outcome, state, fsyncedBefore, startedAt, finishedAt };
}

/**
 * A shut-off guest's snapshot: the log workload made `fsynced` records durable, the guest was
 * destroyed (its disk now idle), then snapshotted; the run and the downloaded image file (under the
 * fixture's dir). The caller asserts on the run.
 */
export async function snapshotShutOffGuest(engine: Engine, fixture: InstanceFixture, fsynced = 4): Promise<{ run: RealGuestRun; file: string | null }> {
  await waitForFsynced(fixture.instance.consolePath, 'log', fsynced);
  await fixture.client.domainDestroy(fixture.instance.domain);
  const run = await snapshotRealGuest(engine, fixture, POWER_STATE_SHUTDOWN);
  const file = run.error === undefined ? await downloadImage(engine.images, run.imageId, fixture.dir) : null;
  return { run, file };
}

export interface ImageContents {
  fsckClean: boolean;
  fsckOutput: string;
  journalReplayed: boolean;
  log?: AppendLogSummary;
  blocks?: BlockFileSummary;
  /** one-pass images: the digest stored at commit, and the one of the downloaded image's raw disk */
  logicalDigest?: { stored: string; downloaded: string };
}

const VirtualSizeJson = z.object({ 'virtual-size': z.number().int().nonnegative() }).passthrough();

/**
 * The logical digest of an image file's guest-visible disk, before anything (a journal replay)
 * touches it; `format` names the file's format (a guest's disk: never probed).
 */
export async function logicalDigestOfFile(file: string, scratchDir: string, format?: 'qcow2' | 'raw'): Promise<string> {
  const raw = join(scratchDir, 'digest.raw');
  try {
    await runToolOutput('qemu-img', ['convert', '-q', ...(format !== undefined ? ['-f', format] : []), '-O', 'raw', file, raw]);
    const info = parseToolJson('qemu-img', VirtualSizeJson, (await runToolOutput('qemu-img', ['info', '--output=json', '-f', 'raw', raw])).stdout);
    return `${LOGICAL_DIGEST_ALGORITHM}:${await logicalDigestOf(createReadStream(raw, { highWaterMark: 4 << 20 }), info['virtual-size'])}`;
  } finally {
    await rm(raw, { force: true });
  }
}

/**
 * Downloads the image and checks it: fsck, then the workload's verifier, which throws on a torn
 * or short copy (`fsyncedBefore`: what the workload had made durable when the snapshot started).
 */
export async function verifyGuestImage(images: ImageClient, imageId: string, guest: { workload: Workload; scratchDir: string }, fsyncedBefore: number): Promise<ImageContents> {
  const file = await downloadImage(images, imageId, guest.scratchDir);
  const workload = guest.workload;
  try {
    const stored = (await images.get(imageId)).properties[LOGICAL_DIGEST_PROPERTY];
    const logicalDigest = stored === undefined ? undefined : { stored, downloaded: await logicalDigestOfFile(file, guest.scratchDir) };
    return await withGuestImage(file, guest.scratchDir, async (img) => {
      const fsck = await img.fsck();
      const contents: ImageContents = { fsckClean: fsck.clean, fsckOutput: fsck.output, journalReplayed: img.journalReplayed };
      if (logicalDigest !== undefined) contents.logicalDigest = logicalDigest;
      if (workload === 'log') contents.log = verifyAppendLog(await img.readFile('log'), { minRecords: fsyncedBefore });
      if (workload === 'blocks') contents.blocks = verifyBlockFile(await img.readFile('blocks'), { blockBytes: BLOCK_BYTES, minSequence: fsyncedBefore });
      return contents;
    });
  } finally {
    await rm(file, { force: true });
  }
}

export function guestOf(fixture: InstanceFixture): { workload: Workload; scratchDir: string } {
  return { workload: fixture.instance.linux?.workload ?? 'idle', scratchDir: fixture.dir };
}

export function verifySnapshotImage(engine: Engine, run: RealGuestRun): Promise<ImageContents> {
  return verifyGuestImage(engine.images, run.imageId, guestOf(run.fixture), run.fsyncedBefore);
}

/**
 * What every snapshot of a writing guest on a raw disk (RBD, a block device) must be: a raw image
 * holding a clean ext4, the digest stored at commit that of the bytes served, and the log a
 * contiguous prefix with every record durable when the snapshot started.
 */
export async function expectCleanRawImage(engine: Engine, run: RealGuestRun): Promise<void> {
  const image = await verifySnapshotImage(engine, run);
  expect(image.fsckClean).toBe(true);
  expect(image.logicalDigest?.downloaded).toBe(image.logicalDigest?.stored);
  expect(image.log?.records).toBeGreaterThanOrEqual(Math.max(1, run.fsyncedBefore));
  expect((await engine.images.get(run.imageId)).disk_format).toBe('raw');
}

/** The workload's last durable record/sequence as the console shows it now (0 for an idle guest). */
export async function fsyncedNow(fixture: InstanceFixture): Promise<number> {
  const workload = fixture.instance.linux?.workload ?? 'idle';
  return workload === 'idle' ? 0 : lastFsynced(await readConsole(fixture.instance.consolePath), workload);
}
