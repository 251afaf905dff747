// The one-pass data path's host activities: open the point-in-time export, stream it into the
// image service, close it (with the checkpoint retention, in one step, for a run that keeps one). Each re-derives what it needs from the work dir and libvirt, so that a
// retry on a new host worker, or a Temporal reset after the compensations ran, finds or remakes
// the export and resumes or restarts the upload.
import { Context } from '@temporalio/activity';
import { boundedPlainText, type ChainPlan, type CheckpointRetention, type DomainDescription, type HostActivities, type SnapshotChainFacts, type SnapshotExport, type StreamedImage, errorMessage } from '../contract';
import { ImageGone, LOGICAL_DIGEST_PROPERTY, piecesLength, sentPieces, type Image } from '../images/client';
import { isLibvirtError, VIR_ERR_NO_DOMAIN, type Domain, type Libvirt } from '../libvirt';
import { planImage } from '../qcow2';
import { BandwidthLimit } from '../host/bandwidth-limit';
import { layoutOf, ParentUnusable, streamImage, type IncrementalSource } from '../host/image-stream';
import { retainCheckpoints } from '../host/checkpoint-chain';
import { closeExport, demoteToFull, ensureExport, releaseExport, type ExportContext, type LiveExport } from '../host/snapshot-export';
import { diskSourceOf } from '../host/disk-source/root-disk';
import { resumeRestartedGuest } from '../host/saved-guest-restart';
import type { HostActivityDeps } from './host-activity-deps';
import { Semaphore, withHeartbeat } from './activity-support';

type OnePassActivities = Pick<HostActivities, 'openSnapshotExport' | 'streamSnapshot' | 'closeSnapshotExport' | 'retainCheckpoints' | 'closeExportAndRetain'>;

export interface OnePassLimits {
  extracts: Semaphore;
  uploads: Semaphore;
}

function describeExport(opened: LiveExport, format: 'qcow2' | 'raw'): SnapshotExport {
  const { record, map } = opened;
  const facts: SnapshotExport = {
    exportId: record.exportId,
    dataPath: record.kind,
    socketPath: record.socketPath,
    exportName: record.exportName,
    virtualSize: map.virtualSize,
    imageSize: planImage(map, { format }).size,
    quiesced: record.quiesced,
    freezeWindowMs: record.freezeWindowMs,
  };
  if (record.quiesceError !== undefined) facts.quiesceError = record.quiesceError;
  return { ...facts, ...chainFacts(opened) };
}

/** Full or incremental as the export's job began, and the guest data the stream will carry. */
function chainFacts(opened: LiveExport): Partial<SnapshotChainFacts> {
  const chain = opened.record.chain;
  if (chain === undefined) return {};
  const { changed: _changed, ...facts } = chain;
  const incremental = incrementalOf(opened);
  const layout = layoutOf({ format: 'raw', map: opened.map, ...(incremental !== undefined ? { incremental } : {}) });
  return { ...facts, changedBytes: piecesLength(sentPieces(layout)) };
}

function incrementalOf(opened: LiveExport): IncrementalSource | undefined {
  const chain = opened.record.chain;
  if (chain?.kind !== 'incremental' || chain.parentImageId === undefined) return undefined;
  return { parentImageId: chain.parentImageId, changed: chain.changed ?? [] };
}

/** What the image says of its place in the chain (visible to anyone who can see the image). */
function chainProperties(facts: Partial<SnapshotChainFacts>): Record<string, string> {
  if (facts.kind === undefined) return {};
  return {
    snapshot_kind: facts.kind,
    snapshot_changed_bytes: String(facts.changedBytes ?? 0),
    ...(facts.parentImageId !== undefined ? { snapshot_parent_image: facts.parentImageId } : {}),
    ...(facts.fullReason !== undefined ? { snapshot_full_reason: boundedPlainText(facts.fullReason, 255) } : {}),
  };
}

/** The upload token a stream of this export sends (resumable-wire's `token`): an incremental's is not a full one's. */
function uploadToken(exportId: string, incremental: boolean): string {
  return incremental ? `${exportId}:incremental` : exportId;
}

/**
 * Whether the active image is this snapshot's own commit: our image service records the upload
 * token of a commit only when the snapshot service made it (`snapshot_commit`, which no request
 * can set), and the properties the stream sent with that commit must name the same upload. Image
 * properties alone prove nothing: the image's owner may write those. Only a composing service
 * (ours) is asked; a real Glance keeps no such mark, and its active images are never taken as ours.
 */
export function isOwnCommit(image: Image, composes: boolean): boolean {
  const exportId = image.properties.snapshot_export_id;
  if (!composes || image.status !== 'active' || image.snapshot_commit === undefined || exportId === undefined) return false;
  return image.snapshot_commit === uploadToken(exportId, image.properties.snapshot_kind === 'incremental');
}

/** The result of a stream whose image is already active, from what the snapshot service's commit stored with it. */
function committedResult(imageId: string, image: Image): StreamedImage | null {
  const digest = image.properties[LOGICAL_DIGEST_PROPERTY]?.split(':')[1];
  const dataPath = image.properties.snapshot_data_path;
  if (digest === undefined || (dataPath !== 'backup-job' && dataPath !== 'qemu-nbd')) return null;
  return {
    imageId,
    status: image.status,
    size: image.size ?? 0,
    checksum: image.checksum ?? '',
    dataPath,
    exportId: image.properties.snapshot_export_id ?? '',
    resumedFrom: image.size ?? 0,
    bytesSent: 0,
    logicalDigest: digest,
    quiesced: image.properties.snapshot_quiesced === 'true',
    freezeWindowMs: null,
    ...committedChain(image.properties),
  };
}

function committedChain(properties: Record<string, string>): Partial<SnapshotChainFacts> {
  const kind = properties.snapshot_kind;
  if (kind !== 'full' && kind !== 'incremental') return {};
  // Each kind's own fact only: the commit sets the one its kind has.
  const parent = kind === 'incremental' ? properties.snapshot_parent_image : undefined;
  const reason = kind === 'full' ? properties.snapshot_full_reason : undefined;
  return { kind, ...(parent !== undefined ? { parentImageId: parent } : {}), ...(reason !== undefined ? { fullReason: reason } : {}) };
}

/** The domain, or null when it is gone: a deleted instance took its job with it, but a qemu-nbd may still need stopping. */
async function lookupUnlessGone(client: Libvirt, domainName: string): Promise<Domain | null> {
  return client.domainLookupByName(domainName).catch((err: unknown) => {
    if (isLibvirtError(err, VIR_ERR_NO_DOMAIN)) return null;
    throw err;
  });
}

export function createOnePassActivities(deps: HostActivityDeps, limits: OnePassLimits): OnePassActivities {
  const { config, session, workDirs, images } = deps;
  // One limit for every stream of this host (Proxmox's bwlimit).
  const bandwidth = new BandwidthLimit(config.streamBandwidthBytesPerSecond);

  const exportContext = async (input: { domainName: string; workDirKey: string; mode: 'live' | 'cold'; description: ExportContext['description']; chain?: ChainPlan; restartSavedGuest?: boolean }): Promise<ExportContext> => {
    // QEMU writes the backup job's scratch file inside: live, or cold on a guest restarted with a job.
    const workDir = await workDirs.ensure(input.workDirKey, input.mode === 'live' || input.description.coldRestart === true);
    // Lets a restarted host worker tell an abandoned work dir from one whose run is still open.
    const owner = Context.current().info.workflowExecution;
    if (owner) await workDirs.writeOwner(input.workDirKey, owner.workflowId);
    const client = await session.client();
    const dom = await client.domainLookupByName(input.domainName);
    const log = (message: string, fields: Record<string, unknown>) => Context.current().log.warn(message, { ...fields, domain: input.domainName });
    const source = diskSourceOf(input.description, config.rbd);
    return {
      client,
      dom,
      workDir,
      mode: input.mode,
      description: input.description,
      quiesceTimeoutMs: config.quiesceTimeoutMs,
      log,
      source,
      runKey: input.workDirKey,
      ...(input.chain !== undefined ? { chain: input.chain } : {}),
      ...(input.restartSavedGuest === true ? { restartSavedGuest: true } : {}),
    };
  };

  /** Retention; never fails the snapshot, which is done: a checkpoint left over is deleted by the next one's retention. */
  const retain = async (client: Libvirt, domain: () => Promise<Domain>, { domainName, keep, description }: { domainName: string; keep: string; description?: DomainDescription }): Promise<CheckpointRetention> => {
    try {
      // A disk whose storage tracks changes keeps its points there, not in libvirt.
      const snapshots = description !== undefined ? diskSourceOf(description, config.rbd).snapshots : undefined;
      if (snapshots !== undefined) return { checkpointXml: null, deleted: await snapshots.retain(keep) };
      return await retainCheckpoints(client, await domain(), keep);
    } catch (err) {
      Context.current().log.warn('checkpoint retention failed', { domain: domainName, keep, error: errorMessage(err) });
      return { checkpointXml: null, deleted: [], error: errorMessage(err) };
    }
  };

  return {
    async openSnapshotExport(input) {
      return limits.extracts.run(() =>
        withHeartbeat(async () => {
          const ctx = await exportContext(input);
          const opened = await ensureExport(ctx);
          if (input.mode !== 'cold' || opened.record.kind !== 'backup-job') return describeExport(opened, input.description.imageFormat);
          // The cut is recorded (a retry re-attaches to it): the guest may run on.
          await resumeRestartedGuest(ctx.client, ctx.dom, ctx.workDir);
          return { ...describeExport(opened, input.description.imageFormat), guestResumed: true };
        }),
      );
    },

    async streamSnapshot(input) {
      return limits.uploads.run(() =>
        withHeartbeat(async (report, signal) => {
          const format = input.description.imageFormat;
          const before = await images.get(input.imageId);
          if (before.status === 'active') {
            // An attempt whose commit landed but whose completion was lost: the image is done.
            const committed = isOwnCommit(before, await images.composes()) ? committedResult(input.imageId, before) : null;
            if (committed !== null) return committed;
            // Someone else's bytes: never this snapshot's. The workflow goes on in a new image.
            throw new ImageGone(`Image ${input.imageId} is active but its data is not this snapshot's upload; the snapshot goes into a new image`);
          }
          const ctx = await exportContext(input);
          let opened = await ensureExport(ctx);
          // Nova's image update: the record describes the bytes actually written (qcow2 or raw, bare).
          if (before.disk_format !== format || before.container_format !== 'bare') {
            await images.setFormats(input.imageId, { disk_format: format, container_format: 'bare' });
          }
          let counted = 0;
          // The chain's facts once per export: each is a pass over the whole allocation map.
          const stream = async (from: LiveExport) => {
            const { record, map } = from;
            const facts = chainFacts(from);
            const incremental = incrementalOf(from);
            const outcome = await streamImage({
              images,
              imageId: input.imageId,
              format,
              socketPath: record.socketPath,
              exportName: record.exportName,
              map,
              // An incremental's staged bytes are not a full one's of the same export.
              exportId: uploadToken(record.exportId, incremental !== undefined),
              limit: bandwidth,
              signal,
              namedUploads: config.namedUploads !== false,
              properties: { snapshot_data_path: record.kind, snapshot_export_id: record.exportId, snapshot_quiesced: String(record.quiesced), ...chainProperties(facts) },
              ...(incremental !== undefined ? { incremental } : {}),
              onProgress: ({ acknowledged, sent, total }) => {
                deps.metrics?.addUploadedBytes(Math.max(0, sent - counted));
                counted = Math.max(counted, sent);
                // The API reads bytes from this heartbeat: a signal per tick would lengthen the history.
                report({ exportId: record.exportId, dataPath: record.kind, socketPath: record.socketPath, acknowledged, sent, total });
              },
            });
            return { outcome, facts };
          };
          let streamed;
          try {
            streamed = await stream(opened);
          } catch (err) {
            if (!(err instanceof ParentUnusable)) throw err;
            // The parent went between the plan and the commit: the same point in time, sent whole.
            opened = await demoteToFull(ctx.workDir, opened, `${err.message} by the time the incremental was sent: this snapshot was sent whole`);
            counted = 0;
            streamed = await stream(opened);
          }
          const { outcome, facts } = streamed;
          const { record } = opened;
          const image = outcome.image;
          return {
            imageId: input.imageId,
            status: image.status,
            size: image.size ?? outcome.size,
            checksum: image.checksum ?? '',
            dataPath: record.kind,
            exportId: record.exportId,
            resumedFrom: outcome.resumedFrom,
            bytesSent: outcome.bytesSent,
            logicalDigest: outcome.logicalDigest,
            quiesced: record.quiesced,
            freezeWindowMs: record.freezeWindowMs,
            ...(record.quiesceError !== undefined ? { quiesceError: record.quiesceError } : {}),
            ...facts,
          };
        }),
      );
    },

    async retainCheckpoints({ domainName, keep, description }) {
      const client = await session.client();
      return retain(client, () => client.domainLookupByName(domainName), { domainName, keep, description });
    },

    async closeSnapshotExport({ domainName, workDirKey, discardPointOf }) {
      const client = await session.client();
      const dom = await lookupUnlessGone(client, domainName);
      await closeExport(client, dom, workDirs.pathFor(workDirKey));
      // After the export that read it is closed. libvirt's checkpoints of a failed run stay: the
      // next run's retention merges them away.
      const snapshots = discardPointOf !== undefined ? diskSourceOf(discardPointOf, config.rbd).snapshots : undefined;
      const discardedPoint = snapshots !== undefined ? await snapshots.discard(snapshots.nameFor(workDirKey)) : undefined;
      await workDirs.remove(workDirKey);
      return discardedPoint !== undefined ? { discardedPoint } : undefined;
    },

    // No heartbeat of its own, as the close and the retention had none: a few libvirt calls, well
    // inside the step's heartbeat timeout, and each heartbeat is one more call to the server.
    async closeExportAndRetain({ domainName, workDirKey, keep, description }) {
      const { log } = Context.current();
      const client = await session.client();
      const dom = await lookupUnlessGone(client, domainName);
      // Nothing of ours reads the disk before a checkpoint goes; the export's files go with the dir.
      await releaseExport(client, dom, workDirs.pathFor(workDirKey));
      const retention = await retain(client, () => (dom !== null ? Promise.resolve(dom) : client.domainLookupByName(domainName)), { domainName, keep, description });
      workDirs.removeAfterAnswer(workDirKey, (err) => log.warn('could not remove the work dir after the close; the work-dir sweep removes it once the run closed', { workDirKey, error: errorMessage(err) }));
      return retention;
    },
  };
}
