// The one-pass stream survives its host worker: kill -9 of the worker mid-stream of a writing
// guest, the worker back a few seconds later, and the snapshot goes on on the same backup job
// (QEMU still holds it). A full snapshot is a named upload (protocol 2): the retry re-reads the
// disk and sends only the chunks the image service lacks, counted by the proxy in front of it. The
// image is a clean ext4 with the guest's log intact, and its logical digest is the disk's.
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { POWER_STATE_RUNNING, type SnapshotResult } from '../../../src/contract';
import { guestExec } from '../../../src/testing/guest/guest-agent';
import { checkEndState } from '../../support/fault-checks';
import { namedChunkBytes, resendViolations } from '../../support/named-resume';
import { startFaultStack, type FaultStack } from '../../support/fault-stack';
import { createRealGuest, fsyncedNow, guestOf, verifyGuestImage } from '../../support/guest/real-guest-run';
import { waitForFile } from '../../support/wait-for-file';

const MiB = 1024 * 1024;
/** slow enough that a kill lands mid-stream, whatever the machine */
const LIMIT_MIBS = 6;
const FILL_MIB = 40;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('one pass: a host worker killed mid-stream', () => {
  let stack: FaultStack | undefined;
  beforeAll(async () => {
    stack = await startFaultStack({ hostEnv: { SNAP_STREAM_BWLIMIT_MIBS: String(LIMIT_MIBS) } });
  }, 240_000);
  afterAll(async () => {
    await stack?.stop();
  }, 60_000);

  it('the retry on the same backup job sends only the chunks the service lacks; the image is whole and its digest the disk’s', async () => {
    if (!stack) throw new Error('fault stack did not start');
    const fixture = await createRealGuest({ prefix: 'snapresume', diskSizeBytes: 128 * MiB, linux: { workload: 'log', rateKiB: 256 } });
    const hold = join(stack.barrierDir, 'upload.hold');
    const reached = join(stack.barrierDir, 'upload.reached');
    try {
      // Data for the stream to carry: random, so that every chunk of it is sent (a chunk of zeros is not).
      await guestExec(fixture.client, fixture.instance.domain, '/bin/dd', ['if=/dev/urandom', 'of=/mnt/fill', 'bs=1M', `count=${FILL_MIB}`, 'conv=fsync'], { timeoutMs: 120_000 });
      const instance = await stack.register(fixture, POWER_STATE_RUNNING);
      await rm(reached, { force: true });
      await writeFile(hold, '');
      const fsyncedBefore = await fsyncedNow(fixture);
      const atStart = stack.proxy.bodyBytes;
      const snap = await stack.startSnapshot(instance.uuid);
      const handle = stack.client.workflow.getHandle(snap.workflowId);
      await waitForFile(reached, 180_000);
      await rm(hold, { force: true });
      // About half of the image at the limit, then the worker dies with the stream in flight.
      await sleep(((FILL_MIB / 2) / LIMIT_MIBS) * 1000);
      await stack.hostWorker.kill();
      await sleep(3_000);
      const atRestart = stack.proxy.bodyBytes;
      await stack.hostWorker.start();

      const result: SnapshotResult = await handle.result();
      expect(result).toMatchObject({ mode: 'live', status: 'active', dataPath: 'backup-job' });
      // The retry, on the job the dead worker started, sent only what the service lacked.
      const received = { beforeKill: atRestart - atStart, onRetry: stack.proxy.bodyBytes - atRestart };
      expect(resendViolations(received, await namedChunkBytes(stack.images, snap.imageId, fixture.dir))).toEqual([]);

      const image = await verifyGuestImage(stack.images, snap.imageId, guestOf(fixture), fsyncedBefore);
      expect({ clean: image.fsckClean, output: image.fsckOutput }).toMatchObject({ clean: true });
      expect(image.log?.records).toBeGreaterThanOrEqual(Math.max(1, fsyncedBefore));
      expect(image.logicalDigest?.downloaded).toBe(image.logicalDigest?.stored);
      const violations = await checkEndState(stack, fixture, {
        imageId: snap.imageId,
        workflowId: snap.workflowId,
        completed: true,
        priorPowerState: POWER_STATE_RUNNING,
        instanceDeleted: false,
        fsyncedBefore,
      });
      expect(violations).toEqual([]);
    } finally {
      await rm(hold, { force: true });
      await fixture.cleanup();
    }
  }, 300_000);
});
