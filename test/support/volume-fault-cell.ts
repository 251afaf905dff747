// One volume-backed cell of the fault matrix (Nova's snapshot_volume_backed through a real Cinder): a
// new project's writing guest booting from its Cinder volume, the step held open by the test
// barrier, the fault injected while it is held, then the end state checked (volume-fault-checks.ts).
// Cinder's services are running again and the hold released whatever happens.
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { errorMessage, POWER_STATE_RUNNING, progressQuery, SNAPSHOT_QUOTA_EXCEEDED } from '../../src/contract';
import type { CellResult, CellOptions, Cell } from './fault-cell';
import { expectedOutcome, STEP_BARRIER, type Fault } from './fault-matrix';
import type { FaultStack } from './fault-stack';
import { awaitClose, killWhileHeld, release } from './fault-wait';
import { checkVolumeEndState } from './volume-fault-checks';
import type { VolumeGuest, VolumeGuests } from './volume-guest';
import { waitForFile } from './wait-for-file';

/** The run's deadline for `available` in a volume stack (SNAP_VOLUME_SNAPSHOT_TIMEOUT_SECONDS). */
export const VOLUME_CELL_DEADLINE_S = 40;
/** The bound on the guest agent's freeze in a volume stack (SNAP_QUIESCE_TIMEOUT_S). */
export const VOLUME_CELL_QUIESCE_S = 3;

/** What a volume stack's workers are given beside the Cinder endpoint. */
export const VOLUME_STACK_ENV = {
  controlEnv: { SNAP_VOLUME_SNAPSHOT_TIMEOUT_SECONDS: String(VOLUME_CELL_DEADLINE_S) },
  hostEnv: { SNAP_QUIESCE_TIMEOUT_S: String(VOLUME_CELL_QUIESCE_S) },
};

/**
 * The failure type a failing cell must end with: Nova's OverQuota, or the freeze's bound (a create
 * queued for a cinder-volume that is away or hung is never taken while the guest is frozen).
 */
const FAILURE_TYPE: Partial<Record<Fault, string>> = {
  'cinder-volume-deadline': 'SnapshotsNotTakenInFreeze',
  'snapshot-stuck': 'SnapshotsNotTakenInFreeze',
  'snapshot-quota': SNAPSHOT_QUOTA_EXCEEDED,
  'snapshot-quota-413': SNAPSHOT_QUOTA_EXCEEDED,
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Until the run runs its compensations (or has closed). */
async function untilCompensating(handle: WorkflowHandle, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const step = await handle.query(progressQuery).then(
      (p) => p.step,
      () => 'closed',
    );
    if (step === 'compensating' || step === 'failed' || step === 'closed' || Date.now() > deadline) return;
    await sleep(500);
  }
}

/** The ApplicationFailure types along a run's failure and its causes. */
function failureTypes(err: unknown): string[] {
  const types: string[] = [];
  for (let e: unknown = err; e instanceof Error && types.length < 6; e = e.cause) {
    const type = (e as { type?: unknown }).type;
    if (typeof type === 'string') types.push(type);
  }
  return types;
}

async function inject(stack: FaultStack, volumes: VolumeGuests, cell: Cell, guest: VolumeGuest, hold: string, handle: WorkflowHandle): Promise<void> {
  const cinderVolume = volumes.cinder.volumeService;
  switch (cell.fault) {
    case 'cinder-volume-back':
      await cinderVolume.stop();
      await release(hold);
      await sleep(3_000);
      await cinderVolume.start();
      return;
    case 'cinder-volume-deadline':
      // the create is queued for a cinder-volume that is away past the deadline; it comes back
      // while the compensation waits for the snapshot to leave `creating`
      await cinderVolume.stop();
      await release(hold);
      await untilCompensating(handle, (VOLUME_CELL_DEADLINE_S + 60) * 1000);
      await sleep(5_000);
      await cinderVolume.start();
      return;
    case 'snapshot-stuck':
      // hung, not dead: the create reaches a cinder-volume that does not act on it
      cinderVolume.pause();
      try {
        await release(hold);
        await untilCompensating(handle, (VOLUME_CELL_DEADLINE_S + 60) * 1000);
        await sleep(5_000);
      } finally {
        cinderVolume.resume();
      }
      return;
    case 'rabbitmq-restart':
      await volumes.cinder.broker.stopBroker();
      await release(hold);
      await sleep(5_000);
      await volumes.cinder.broker.startBroker();
      return;
    case 'snapshot-quota':
    case 'snapshot-quota-413': {
      // full: the limit is what the project already uses
      const admin = volumes.admin(guest.projectId);
      await admin.setSnapshotQuota((await admin.client.snapshotQuota()).inUse);
      await release(hold);
      return;
    }
    case 'volume-host-kill':
      await killWhileHeld(stack.hostWorker, hold);
      return;
    case 'volume-control-kill':
      await killWhileHeld(stack.controlWorker, hold);
      return;
    case 'agent-hang':
    case 'agent-hang-required':
      // the agent stops itself half a second after answering (no exit status is waited for: it
      // could not answer for it): the freeze finds it hung
      await guest.fixture.client.domainQemuAgentCommand(
        guest.fixture.instance.domain,
        JSON.stringify({ execute: 'guest-exec', arguments: { path: '/bin/sh', arg: ['-c', 'sleep 0.5; kill -STOP $(cat /var/run/qemu-ga.pid)'] } }),
        10,
      );
      await sleep(1_500);
      await release(hold);
      return;
    default:
      throw new Error(`${cell.fault} is not a volume fault`);
  }
}

/** Brings back whatever an injection that broke off left down (each part is a no-op when up). */
async function restoreCinder(volumes: VolumeGuests): Promise<void> {
  const { cinder } = volumes;
  cinder.volumeService.resume();
  await cinder.broker.startBroker().catch(() => undefined);
  await cinder.volumeService.start().catch(() => undefined);
}

export async function runVolumeCell(stack: FaultStack, cell: Cell, options: CellOptions = {}): Promise<CellResult> {
  const volumes = stack.volumes;
  if (volumes === null) throw new Error('a volume cell needs a fault stack with a Cinder (FaultStackOptions.volumes)');
  await stack.ensureUp();
  const barrier = STEP_BARRIER[cell.step];
  const hold = join(stack.barrierDir, `${barrier}.hold`);
  const reached = join(stack.barrierDir, `${barrier}.reached`);
  await rm(reached, { force: true });
  const started = Date.now();
  const guest = await volumes.newGuest();
  try {
    const cinder = volumes.client(guest.projectId);
    const inUseBefore = (await cinder.snapshotQuota()).inUse;
    const instance = await stack.register(guest.fixture, POWER_STATE_RUNNING, guest.projectId);
    await writeFile(hold, '');
    const snap = await stack.startSnapshot(instance.uuid, cell.fault === 'agent-hang-required' ? { os_require_quiesce: 'yes' } : {});
    const handle = stack.client.workflow.getHandle(snap.workflowId);
    await waitForFile(reached, 180_000);
    const faultAt = Date.now();
    await inject(stack, volumes, cell, guest, hold, handle);
    const closeTimeoutMs = options.closeTimeoutMs ?? 8 * 60_000;
    const closed = await awaitClose(handle, closeTimeoutMs);
    const recoverMs = Date.now() - faultAt;
    if (closed.ended === 'stuck') {
      return { ...cell, outcome: 'stuck', ok: false, violations: [`workflow still open ${closeTimeoutMs / 1000}s after the fault`], recoverMs, totalMs: Date.now() - started };
    }
    const { violations, notes } = await checkVolumeEndState(stack, guest, cinder, { imageId: snap.imageId, completed: closed.ended === 'completed', inUseBefore });
    const expected = expectedOutcome(cell.fault, cell.step);
    if (expected !== 'either' && expected !== closed.ended) violations.unshift(`ended ${closed.ended}, must end ${expected}`);
    const types = failureTypes(closed.error);
    const wantedType = FAILURE_TYPE[cell.fault];
    if (closed.ended === 'failed' && wantedType !== undefined && !types.includes(wantedType)) violations.push(`failed as ${types.join(' < ') || 'untyped'}, not ${wantedType}`);
    const quiesce = closed.result === undefined ? undefined : `quiesced ${String(closed.result.quiesced)}, freeze ${String(closed.result.freezeWindowMs)} ms`;
    if (cell.fault === 'agent-hang' && closed.result?.quiesced !== false) violations.push(`a hung agent, yet ${quiesce ?? 'no result'}`);
    const note = [closed.ended === 'failed' ? (types[0] ?? 'untyped') : quiesce, ...notes].filter(Boolean).join('; ');
    return { ...cell, outcome: closed.ended, ok: violations.length === 0, violations, recoverMs, totalMs: Date.now() - started, ...(note ? { note } : {}) };
  } catch (err) {
    return { ...cell, outcome: 'error', ok: false, violations: [errorMessage(err)], totalMs: Date.now() - started };
  } finally {
    await release(hold);
    await restoreCinder(volumes).catch((err: unknown) => process.stderr.write(`cinder restore: ${String(err)}\n`));
    await guest.fixture.cleanup().catch((err: unknown) => process.stderr.write(`fixture cleanup: ${String(err)}\n`));
  }
}
