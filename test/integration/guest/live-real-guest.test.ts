// Live snapshots of real Linux guests that write while their disk is copied: the image is a clean
// ext4 holding a contiguous prefix of the append log (every record fsynced before the snapshot
// started among it) or whole blocks only; and quiesce with a working, absent or hung guest agent.
import { DomainState } from '../../../src/libvirt';
import { LOGICAL_DIGEST_ALGORITHM } from '../../../src/qcow2';
import { readConsole } from '../../../src/testing/guest/guest-console';
import { lastFsynced } from '../../../src/testing/guest/workload-verifiers';
import { startEngine, type Engine } from '../../support/engine-harness';
import { createRealGuest, snapshotRealGuest, verifySnapshotImage, waitForFsynced } from '../../support/guest/real-guest-run';

const QUIESCE_TIMEOUT_S = 3;

function snapshotEnd(engine: Engine, imageId: string): Record<string, unknown> | undefined {
  return engine.logs.find((l) => l.event_type === 'compute.instance.snapshot.end' && l.image_id === imageId);
}

describe('live snapshots of writing real guests', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await startEngine({ captureLogs: true, hostEnv: { SNAP_QUIESCE_TIMEOUT_S: String(QUIESCE_TIMEOUT_S) } });
  });
  afterAll(async () => {
    await engine?.stop();
  });

  it('append log with a working agent: quiesced, freeze window reported, clean ext4, contiguous log with every fsynced record', async () => {
    const fixture = await createRealGuest({ linux: { workload: 'log', rateKiB: 512 } });
    try {
      const run = await snapshotRealGuest(engine, fixture);
      expect(run.error).toBeUndefined();
      // One pass: a libvirt backup job read over NBD, streamed into the image service.
      expect(run.result).toMatchObject({ mode: 'live', status: 'active', quiesced: true, dataPath: 'backup-job', resumedFrom: 0 });
      expect(run.result?.freezeWindowMs).toEqual(expect.any(Number));
      expect(run.result?.freezeWindowMs).toBeGreaterThanOrEqual(0);
      expect(run.result?.quiesceError).toBeUndefined();
      expect(snapshotEnd(engine, run.imageId)).toMatchObject({ quiesced: true, freeze_window_ms: run.result?.freezeWindowMs });
      expect(run.state).toBe(DomainState.Running);
      const image = await verifySnapshotImage(engine, run);
      expect(image.fsckClean).toBe(true);
      // What the stream hashed from the disk is what a download holds.
      expect(image.logicalDigest?.downloaded).toBe(image.logicalDigest?.stored);
      expect(image.logicalDigest?.stored).toBe(`${LOGICAL_DIGEST_ALGORITHM}:${run.result?.logicalDigest ?? ''}`);
      // A frozen ext4 has its journal flushed: nothing to replay.
      expect(image.journalReplayed).toBe(false);
      expect(image.log?.records).toBeGreaterThanOrEqual(Math.max(1, run.fsyncedBefore));
      // The guest writes on after the snapshot: it was thawed.
      await waitForFsynced(fixture.instance.consolePath, 'log', lastFsynced(await readConsole(fixture.instance.consolePath), 'log') + 1);
    } finally {
      await fixture.cleanup();
    }
  });

  it('random block writer: every block in the image is whole, of one generation', async () => {
    const fixture = await createRealGuest({ linux: { workload: 'blocks', rateKiB: 2048 } });
    try {
      const run = await snapshotRealGuest(engine, fixture);
      expect(run.error).toBeUndefined();
      expect(run.result).toMatchObject({ mode: 'live', status: 'active', quiesced: true, dataPath: 'backup-job' });
      const image = await verifySnapshotImage(engine, run);
      expect(image.fsckClean).toBe(true);
      expect(image.logicalDigest?.downloaded).toBe(image.logicalDigest?.stored);
      expect(image.blocks?.written).toBeGreaterThan(0);
      expect(image.blocks?.maxSequence).toBeGreaterThanOrEqual(run.fsyncedBefore);
    } finally {
      await fixture.cleanup();
    }
  });

  it('no agent running (channel present): crash-consistent image, quiesced false in the result and in snapshot.end', async () => {
    const fixture = await createRealGuest({ linux: { workload: 'log', agent: false, rateKiB: 512 } });
    try {
      const run = await snapshotRealGuest(engine, fixture);
      expect(run.error).toBeUndefined();
      expect(run.result).toMatchObject({ mode: 'live', status: 'active', quiesced: false, freezeWindowMs: null });
      expect(run.result?.quiesceError).toMatch(/agent/i);
      expect(snapshotEnd(engine, run.imageId)).toMatchObject({ quiesced: false });
      const image = await verifySnapshotImage(engine, run);
      expect(image.fsckClean).toBe(true);
      expect(image.log?.records).toBeGreaterThanOrEqual(Math.max(1, run.fsyncedBefore));
    } finally {
      await fixture.cleanup();
    }
  });

  it('a hung agent: the freeze times out within its bound, the snapshot goes on crash-consistent, the guest is never left frozen', async () => {
    const fixture = await createRealGuest({ linux: { workload: 'log', rateKiB: 512 } });
    try {
      // The agent stops itself half a second after answering, so the next command finds it hung.
      await fixture.client.domainQemuAgentCommand(
        fixture.instance.domain,
        JSON.stringify({ execute: 'guest-exec', arguments: { path: '/bin/sh', arg: ['-c', 'sleep 0.5; kill -STOP $(cat /var/run/qemu-ga.pid)'] } }),
        10,
      );
      await new Promise((r) => setTimeout(r, 1500));
      const run = await snapshotRealGuest(engine, fixture);
      expect(run.error).toBeUndefined();
      expect(run.result).toMatchObject({ mode: 'live', status: 'active', quiesced: false, freezeWindowMs: null });
      expect(run.result?.quiesceError).toEqual(expect.any(String));
      expect(snapshotEnd(engine, run.imageId)).toMatchObject({ quiesced: false });
      // Bounded: one freeze and one thaw attempt of QUIESCE_TIMEOUT_S each, plus the copy itself.
      expect(run.result?.steps.extract).toBeLessThan((2 * QUIESCE_TIMEOUT_S + 30) * 1000);
      const image = await verifySnapshotImage(engine, run);
      expect(image.fsckClean).toBe(true);
      expect(image.log?.records).toBeGreaterThanOrEqual(Math.max(1, run.fsyncedBefore));
      // Not frozen: the workload's fsyncs go on after the snapshot.
      const after = lastFsynced(await readConsole(fixture.instance.consolePath), 'log');
      await waitForFsynced(fixture.instance.consolePath, 'log', after + 2, 30_000);
    } finally {
      await fixture.cleanup();
    }
  });
});
