// The point-in-time export a snapshot streams from, whatever the mode: a libvirt backup job for a
// running guest (live) and for a cold guest restarted from its save, a read-only qemu-nbd of the
// stopped disk chain (cold, shut off). Each step that needs the export re-derives it: it finds the
// one its work dir records, still served, or makes a new one (a new point in time, so the map and any staged bytes of the old one are void).
import { mkdir } from 'node:fs/promises';
import { DomainState, type Domain, type Libvirt } from '../libvirt';
import { allocationMap, BASE_ALLOCATION, dirtyBitmapContext, dirtyRanges, NbdClient, type Range } from '../nbd';
import type { ChainPlan, DomainDescription, SnapshotMode } from '../contract';
import { decodeMap, encodeMap } from '../images/client';
import { abortBackupJob, beginBackupExport, endBackupExport, EXPORT_BITMAP, findBackupExport, type BackupJobRef } from './backup-export';
import { checkChainStart, checkpointNameFor, isUnusableCheckpoint } from './checkpoint-chain';
import type { DiskSource } from './disk-source/disk-source';
import type { QuiesceOutcome } from './quiesce';
import { exportPaths } from './export-paths';
import { newExportId, readExportRecord, removeExportRecord, writeExportRecord, type ExportRecord } from './export-record';
import { findReadOnlyExport, startReadOnlyExport, stopReadOnlyExport } from './nbd-export';
import { takeStoragePoint } from './storage-point-export';
import { beginOnRestartedGuest } from './saved-guest-restart';
import type { AllocationMap } from '../qcow2';
import { errorMessage } from '../contract';

/** A cold snapshot's disk is only consistent while the guest is down; a reset run can find it running again. */
export class ColdSourceRunning extends Error {
  override readonly name = 'ColdSourceRunning';
  readonly retryable = false;
}

const COLD_RESTART_REASON = 'a cold snapshot cut from the guest restarted after its save takes no checkpoint to read changes from';

export interface ExportContext {
  client: Libvirt;
  dom: Domain;
  workDir: string;
  mode: SnapshotMode;
  description: DomainDescription;
  quiesceTimeoutMs: number;
  log?: (message: string, fields: Record<string, unknown>) => void;
  /** live: the chain to build on, as the control side planned it (absent: no checkpoint at all) */
  chain?: ChainPlan;
  /** where the disk lives (file, RBD): how a cold export opens it, and its identity and checkpoints */
  source: DiskSource;
  /** the workflow run (the work dir's key): names the storage snapshot a chained live export takes */
  runKey?: string;
  /** cold, the guest was running: cut with a backup job on it restarted from its save (saved-guest-restart.ts) */
  restartSavedGuest?: boolean;
}

export interface LiveExport {
  record: ExportRecord;
  map: AllocationMap;
  /** true when an export this work dir recorded was gone and a new one was made */
  reopened: boolean;
}

/** The recorded export when it is still served, else a new one. */
export async function ensureExport(ctx: ExportContext): Promise<LiveExport> {
  const recorded = await readExportRecord(ctx.workDir);
  if (recorded !== undefined && recorded.map !== null && (await isServed(ctx, recorded))) {
    return { record: recorded, map: decodeMap(recorded.map), reopened: false };
  }
  const opened = await openExport(ctx, recorded);
  return { ...opened, reopened: recorded !== undefined };
}

async function isServed(ctx: ExportContext, record: ExportRecord): Promise<boolean> {
  const paths = exportPaths(ctx.workDir);
  if (record.socketPath !== paths.socketPath) return false;
  if (record.kind === 'backup-job') return (await findBackupExport(ctx.client, ctx.dom, ctx.workDir)) !== null;
  return (await findReadOnlyExport({ socketPath: paths.socketPath, pidFile: paths.pidFile })) !== undefined;
}

async function openExport(ctx: ExportContext, previous: ExportRecord | undefined): Promise<{ record: ExportRecord; map: AllocationMap }> {
  const { client, dom, workDir, description } = ctx;
  await closeExport(ctx.client, ctx.dom, workDir);
  await mkdir(workDir, { recursive: true });
  const paths = exportPaths(workDir);
  const openedAt = Date.now();
  let record: Omit<ExportRecord, 'map'>;
  const snapshots = ctx.source.snapshots;
  const restarted = ctx.mode === 'cold' && ctx.restartSavedGuest === true ? await beginOnRestartedGuest({ client, dom, workDir, diskTarget: description.diskTarget, quiesceTimeoutMs: ctx.quiesceTimeoutMs, log: ctx.log }) : null;
  if (ctx.mode === 'live' && snapshots !== undefined && ctx.chain?.composes === true && ctx.runKey !== undefined) {
    const { image, quiesce, chain } = await takeStoragePoint(ctx, snapshots, ctx.chain, ctx.runKey, previous);
    await startReadOnlyExport({ ...image, socketPath: paths.socketPath, pidFile: paths.pidFile, exportName: description.diskTarget });
    record = { exportId: newExportId(), kind: 'qemu-nbd', socketPath: paths.socketPath, exportName: description.diskTarget, diskTarget: description.diskTarget, openedAt, ...quiesce, freezeWindowMs: quiesce.freezeWindowMs, chain };
  } else if (ctx.mode === 'live') {
    const exportId = newExportId();
    const { job, quiesce, chain } = await beginLiveExport(ctx, exportId);
    record = { exportId, kind: 'backup-job', socketPath: paths.socketPath, exportName: job.exportName, diskTarget: description.diskTarget, openedAt, ...quiesce, freezeWindowMs: quiesce.freezeWindowMs, chain };
  } else if (restarted !== null) {
    // The save's point in time, held by the job while the guest runs again.
    const chain = { kind: 'full' as const, fullReason: COLD_RESTART_REASON };
    record = { exportId: newExportId(), kind: 'backup-job', socketPath: paths.socketPath, exportName: restarted.exportName, diskTarget: description.diskTarget, openedAt, quiesced: false, freezeWindowMs: null, chain };
  } else {
    const { state } = await client.domainGetState(dom);
    if (state === DomainState.Running || state === DomainState.Paused || state === DomainState.Blocked || state === DomainState.PMSuspended) {
      throw new ColdSourceRunning(`domain ${dom.name} is running: a cold snapshot reads its disk only while it is down`);
    }
    await startReadOnlyExport({ ...ctx.source.readOnlyImage(), socketPath: paths.socketPath, pidFile: paths.pidFile, exportName: description.diskTarget });
    record = { exportId: newExportId(), kind: 'qemu-nbd', socketPath: paths.socketPath, exportName: description.diskTarget, diskTarget: description.diskTarget, openedAt, quiesced: false, freezeWindowMs: null };
  }
  // A dirty bitmap to read only when the changes are not known yet (a storage point brings its own).
  const bitmap = record.chain?.kind === 'incremental' && record.chain.changed === undefined;
  const { map, changed } = await readExportMaps(record.socketPath, record.exportName, bitmap);
  const chain = record.chain === undefined ? undefined : { ...record.chain, ...(changed !== undefined ? { changed: changed.map((r): [number, number] => [r.offset, r.length]) } : {}) };
  const full: ExportRecord = { ...record, map: encodeMap(map), ...(chain !== undefined ? { chain } : {}) };
  await writeExportRecord(workDir, full);
  return { record: full, map };
}

type ChainFacts = NonNullable<ExportRecord['chain']>;

/**
 * The backup job of a live export, with a checkpoint when the plan asks for chains: incremental
 * from the parent's checkpoint when every check passes, else full with the reason.
 */
async function beginLiveExport(ctx: ExportContext, exportId: string): Promise<{ job: BackupJobRef; quiesce: QuiesceOutcome; chain?: ChainFacts }> {
  const { client, dom, workDir, description, chain: plan } = ctx;
  const base = { diskTarget: description.diskTarget, quiesceTimeoutMs: ctx.quiesceTimeoutMs, log: ctx.log };
  if (plan === undefined) return beginBackupExport(client, dom, workDir, base);
  if (!plan.composes) return { ...(await beginBackupExport(client, dom, workDir, base)), chain: { kind: 'full', fullReason: plan.reason ?? 'the image backend cannot compose images' } };
  const refusal = ctx.source.checkpointRefusal;
  if (refusal !== null) return { ...(await beginBackupExport(client, dom, workDir, base)), chain: { kind: 'full', fullReason: refusal } };
  const identity = await ctx.source.identity();
  const checkpoint = checkpointNameFor(exportId);
  const start = await checkChainStart(client, dom, description, plan, identity);
  let fullReason = start.from === null ? start.reason : '';
  if (start.from !== null) {
    try {
      const begun = await beginBackupExport(client, dom, workDir, { ...base, checkpoint, incrementalFrom: start.from });
      return { ...begun, chain: { kind: 'incremental', parentImageId: start.parentImageId, checkpoint, diskIdentity: identity } };
    } catch (err) {
      if (!isUnusableCheckpoint(err)) throw err;
      fullReason = `checkpoint ${start.from} cannot be used: ${errorMessage(err)}`;
      ctx.log?.('incremental backup refused, taking a full one', { checkpoint: start.from, reason: fullReason });
    }
  }
  const begun = await beginBackupExport(client, dom, workDir, { ...base, checkpoint });
  return { ...begun, chain: { kind: 'full', fullReason, checkpoint, diskIdentity: identity } };
}

/** The export's allocation map and, for an incremental, the ranges its dirty bitmap marks. */
async function readExportMaps(socketPath: string, exportName: string, incremental: boolean): Promise<{ map: AllocationMap; changed?: Range[] }> {
  const bitmap = dirtyBitmapContext(EXPORT_BITMAP);
  const nbd = await NbdClient.connect({ socketPath, exportName, metaContexts: incremental ? [BASE_ALLOCATION, bitmap] : [BASE_ALLOCATION] });
  try {
    const extents = await allocationMap(nbd);
    const map = { virtualSize: nbd.exportSize, extents };
    return incremental ? { map, changed: await dirtyRanges(nbd, bitmap) } : { map };
  } finally {
    await nbd.close().catch(() => nbd.destroy());
  }
}

/**
 * Ends what holds the disk (our backup job, our qemu-nbd) and nothing more: the files the export
 * leaves in the work dir (socket, scratch, record) go with the dir, which the caller removes;
 * idempotent. For a step that answers before the dir is removed (closeExportAndRetain).
 */
export async function releaseExport(client: Libvirt, dom: Domain | null, workDir: string): Promise<void> {
  const paths = exportPaths(workDir);
  if (dom !== null) await abortBackupJob(client, dom, paths.socketPath, workDir, { keepFiles: true });
  // Only a running qemu-nbd is stopped (which removes its socket and pid file); a dead one's files go with the dir.
  if ((await findReadOnlyExport(paths)) !== undefined) await stopReadOnlyExport(paths);
}

/** Ends whatever export this work dir holds (our backup job, our qemu-nbd) and removes its files; idempotent. */
export async function closeExport(client: Libvirt, dom: Domain | null, workDir: string): Promise<void> {
  const paths = exportPaths(workDir);
  if (dom !== null) await endBackupExport(client, dom, workDir);
  await stopReadOnlyExport({ socketPath: paths.socketPath, pidFile: paths.pidFile });
  await removeExportRecord(workDir).catch(() => undefined);
}

/**
 * The export's stream goes whole after all (its incremental's parent went away): the record says
 * full, with the reason, and keeps the checkpoint, which the next snapshot may build on.
 */
export async function demoteToFull(workDir: string, opened: LiveExport, reason: string): Promise<LiveExport> {
  const chain = opened.record.chain;
  if (chain?.kind !== 'incremental') return opened;
  const record: ExportRecord = { ...opened.record, chain: { kind: 'full', fullReason: reason, ...(chain.checkpoint !== undefined ? { checkpoint: chain.checkpoint } : {}), ...(chain.diskIdentity !== undefined ? { diskIdentity: chain.diskIdentity } : {}) } };
  await writeExportRecord(workDir, record);
  return { ...opened, record };
}
