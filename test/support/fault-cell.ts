// One cell of the fault matrix: a fresh instance in the cell's mode, the step held open by the
// test barrier, the fault injected while it is held, then the end state checked. Every wait has a
// deadline; the instance, the hold file and any mount are removed whatever happens.
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { removeInstance } from '../../src/testing/instance-lifecycle';
import { Libvirt } from '../../src/libvirt';
import { errorMessage, POWER_STATE_PAUSED, POWER_STATE_RUNNING } from '../../src/contract';
import { guestExec, waitForAgent } from '../../src/testing/guest/guest-agent';
import { checkEndState } from './fault-checks';
import { deleteInstance, mountFullTmpfs, restartLibvirtd } from './fault-host-ops';
import { expectedOutcome, LONG_ABSENCE_MS, MON_DOWN_MS, notApplicable, RBD_FAULTS, STEP_BARRIER, VOLUME_FAULTS, type Fault, type Mode, type Step } from './fault-matrix';
import type { FaultStack } from './fault-stack';
import type { InstanceFixture } from './instance-fixture';
import { createRealGuest, fsyncedNow } from './guest/real-guest-run';
import { waitForFile } from './wait-for-file';
import { namedChunkBytes, resendViolations } from './named-resume';
import { awaitClose, killWhileHeld, release } from './fault-wait';
import { runVolumeCell } from './volume-fault-cell';

export interface Cell {
  mode: Mode;
  step: Step;
  fault: Fault;
}

export interface CellResult extends Cell {
  /** n/a: not run; completed / failed: the workflow's end; stuck: still open at the deadline; error: the harness broke */
  outcome: 'n/a' | 'completed' | 'failed' | 'stuck' | 'error';
  /** the outcome is the expected one and no end-state rule was broken */
  ok: boolean;
  violations: string[];
  /** fault injected → workflow closed */
  recoverMs?: number;
  totalMs?: number;
  note?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The RBD stream cells' guests write this much into their disk first, and their stack caps the
 * stream at RBD_STREAM_LIMIT_MIBS (SNAP_STREAM_BWLIMIT_MIBS): the stream then lasts several
 * seconds, and a fault RBD_STREAM_FAULT_AT_MS after it starts lands with its bytes in flight.
 */
export const RBD_STREAM_FILL_MIB = 24;
export const RBD_STREAM_LIMIT_MIBS = 4;
const RBD_STREAM_FAULT_AT_MS = 2_500;
const OSD_DOWN_MS = 5_000;

function rbdOf(stack: FaultStack) {
  if (stack.rbd === null) throw new Error('an RBD cell needs a fault stack with a Ceph cluster (FaultStackOptions.rbd)');
  return stack.rbd;
}

/**
 * Injects the fault while the step is held, and lets the step go at the moment the fault calls for.
 * A host worker killed mid-stream: the bytes the image service had received when the new worker started.
 */
async function inject(stack: FaultStack, cell: Cell, fixture: InstanceFixture, hold: string): Promise<number | undefined> {
  switch (cell.fault) {
    case 'host-kill':
    case 'host-kill-long':
      await killWhileHeld(stack.hostWorker, hold, cell.fault === 'host-kill' ? 3_000 : (LONG_ABSENCE_MS[cell.step] ?? 3_000));
      return;
    case 'control-kill':
      await killWhileHeld(stack.controlWorker, hold);
      return;
    case 'temporal-restart':
      await stack.killTemporal();
      await sleep(2_000);
      await stack.startTemporal();
      await release(hold);
      return;
    case 'libvirtd-restart':
      if (cell.step === 'extract') {
        // the extract's libvirt and qemu-img work is in flight while the daemon goes away
        await release(hold);
        await sleep(300);
        await restartLibvirtd(fixture.client.uri);
      } else {
        await restartLibvirtd(fixture.client.uri);
        await release(hold);
      }
      return;
    case 'instance-deleted':
      await deleteInstance(stack.store, fixture);
      await release(hold);
      return;
    case 'image-down':
      await stack.imageService.kill();
      await release(hold);
      await sleep(3_000);
      await stack.imageService.start();
      return;
    case 'image-5xx':
      stack.proxy.mode = 'fail-uploads';
      await release(hold);
      return;
    case 'disk-full':
      await release(hold);
      return;
    case 'rbd-host-kill': {
      await release(hold);
      await sleep(RBD_STREAM_FAULT_AT_MS);
      await stack.hostWorker.kill();
      await sleep(3_000);
      const received = stack.proxy.bodyBytes;
      await stack.hostWorker.start();
      return received;
    }
    case 'osd-restart': {
      const cluster = rbdOf(stack).cluster;
      await release(hold);
      await sleep(RBD_STREAM_FAULT_AT_MS);
      await cluster.killOsd();
      await sleep(OSD_DOWN_MS);
      await cluster.startOsd();
      return;
    }
    case 'mon-down': {
      const cluster = rbdOf(stack).cluster;
      cluster.pauseMon();
      try {
        await release(hold);
        await sleep(MON_DOWN_MS);
      } finally {
        cluster.resumeMon();
      }
      return;
    }
  }
}

async function removeFixture(fixture: InstanceFixture): Promise<void> {
  const client = await Libvirt.connect(fixture.client.uri);
  try {
    await removeInstance(client, fixture.instance);
  } finally {
    await client.close();
    await fixture.client.close().catch(() => undefined);
    await rm(fixture.dir, { recursive: true, force: true });
  }
}

export interface CellOptions {
  /** how long the workflow may take to close after the fault */
  closeTimeoutMs?: number;
}

export async function runCell(stack: FaultStack, cell: Cell, options: CellOptions = {}): Promise<CellResult> {
  const why = notApplicable(cell.mode, cell.step, cell.fault);
  if (why !== null) return { ...cell, outcome: 'n/a', ok: true, violations: [], note: why };
  if (VOLUME_FAULTS.includes(cell.fault)) return runVolumeCell(stack, cell, options);
  await stack.ensureUp();
  await stack.setLiveDisabled(cell.mode === 'cold-running');
  const barrier = STEP_BARRIER[cell.step];
  const hold = join(stack.barrierDir, `${barrier}.hold`);
  const reached = join(stack.barrierDir, `${barrier}.reached`);
  await rm(reached, { force: true });
  const paused = cell.mode === 'cold-paused';
  const onRbd = RBD_FAULTS.includes(cell.fault);
  // A real guest appending to its log; the paused one was paused with its kernel running.
  const fixture = await createRealGuest({ prefix: 'snapfault', linux: { workload: 'log', rateKiB: 512 }, pauseWhenReady: paused, ...(onRbd ? rbdOf(stack).guestOptions() : {}) });
  let unmount: (() => Promise<void>) | null = null;
  const started = Date.now();
  try {
    // random data: the stream has that much to carry (a chunk of zeros is named, not sent)
    if (onRbd && cell.step === 'upload') {
      // The agent may be reconnecting just after boot on a loaded machine (a failed cell once said "not connected").
      await waitForAgent(fixture.client, fixture.instance.domain, { timeoutMs: 60_000 });
      await guestExec(fixture.client, fixture.instance.domain, '/bin/dd', ['if=/dev/urandom', 'of=/mnt/fill', 'bs=1M', `count=${RBD_STREAM_FILL_MIB}`, 'conv=fsync'], { timeoutMs: 120_000 });
    }
    const instance = await stack.register(fixture, paused ? POWER_STATE_PAUSED : POWER_STATE_RUNNING);
    // A nearly full tmpfs: 4 MiB with 64 KiB free, far less than the extracted image needs.
    if (cell.fault === 'disk-full') unmount = await mountFullTmpfs(stack.snapshotsDir, 4096, 64);
    await writeFile(hold, '');
    const fsyncedBefore = await fsyncedNow(fixture);
    const atStart = stack.proxy.bodyBytes;
    const snap = await stack.startSnapshot(instance.uuid);
    const handle = stack.client.workflow.getHandle(snap.workflowId);
    await waitForFile(reached, 180_000);
    const faultAt = Date.now();
    const atRestart = await inject(stack, cell, fixture, hold);

    const closeTimeoutMs = options.closeTimeoutMs ?? 8 * 60_000;
    const { ended } = await awaitClose(handle, closeTimeoutMs);
    const recoverMs = Date.now() - faultAt;
    stack.proxy.mode = 'pass';
    if (ended === 'stuck') {
      return { ...cell, outcome: 'stuck', ok: false, violations: [`workflow still open ${closeTimeoutMs / 1000}s after the fault`], recoverMs, totalMs: Date.now() - started };
    }
    const violations = await checkEndState(stack, fixture, {
      imageId: snap.imageId,
      workflowId: snap.workflowId,
      completed: ended === 'completed',
      priorPowerState: paused ? POWER_STATE_PAUSED : POWER_STATE_RUNNING,
      instanceDeleted: cell.fault === 'instance-deleted',
      fsyncedBefore,
    });
    const expected = expectedOutcome(cell.fault, cell.step);
    if (expected !== 'either' && expected !== ended) violations.unshift(`ended ${ended}, must end ${expected}`);
    // A named upload (protocol 2): the kill landed mid-stream, and the new worker sent only what the service lacked.
    let note: string | undefined;
    if (cell.fault === 'rbd-host-kill' && ended === 'completed' && atRestart !== undefined) {
      const received = { beforeKill: atRestart - atStart, onRetry: stack.proxy.bodyBytes - atRestart };
      violations.push(...resendViolations(received, await namedChunkBytes(stack.images, snap.imageId, fixture.dir)));
      note = `${(received.beforeKill / 2 ** 20).toFixed(1)} MiB received before the kill, ${(received.onRetry / 2 ** 20).toFixed(1)} MiB on the retry`;
    }
    return { ...cell, outcome: ended, ok: violations.length === 0, violations, recoverMs, totalMs: Date.now() - started, ...(note ? { note } : {}) };
  } catch (err) {
    return { ...cell, outcome: 'error', ok: false, violations: [errorMessage(err)], totalMs: Date.now() - started };
  } finally {
    stack.proxy.mode = 'pass';
    await release(hold);
    if (unmount) await unmount().catch((err: unknown) => process.stderr.write(`umount ${stack.snapshotsDir}: ${String(err)}\n`));
    await removeFixture(fixture).catch((err: unknown) => process.stderr.write(`fixture cleanup: ${String(err)}\n`));
  }
}

/** One line per cell for logs and test failure messages. */
export function describeCell(r: CellResult): string {
  const time = r.recoverMs === undefined ? '' : ` in ${(r.recoverMs / 1000).toFixed(1)}s`;
  const extra = r.violations.length > 0 ? `: ${r.violations.join('; ')}` : r.note ? ` (${r.note})` : '';
  return `${r.fault} × ${r.step} × ${r.mode} → ${r.outcome}${time}${r.ok ? '' : ' VIOLATION'}${extra}`;
}
