// The activities of Nova's snapshot_volume_backed branch: thin adapters from the workflow's steps to
// src/cinder (confirm, quota, wait, clean-up), the image client (Nova's properties, then active) and
// src/host/volume-snapshot (the one-point cut under one freeze, on the instance's host).
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Logger } from 'pino';
import { CinderError, confirmAttachedVolumes, deleteRunSnapshots, SNAPSHOT_RUN_KEY, SnapshotsNotAvailable, waitRunSnapshots, type CinderClient, type CinderForProject } from '../cinder';
import { DEFAULT_VOLUME_SNAPSHOT_TIMEOUT_MS, SNAPSHOT_QUOTA_EXCEEDED, snapshotQuotaExceeded, volumeBackedImageProperties, type VolumeControlActivities, type VolumeHostActivities } from '../contract';
import type { ImageClient } from '../images/client';
import type { LibvirtSession } from '../host/libvirt-session';
import { snapshotVolumesAtOnePoint } from '../host/volume-snapshot';
import { thaw } from '../host/quiesce';
import { isLibvirtError, VIR_ERR_NO_DOMAIN } from '../libvirt';
import type { InstanceStore } from '../store';
import { withHeartbeat } from './activity-support';
import { translateFailures } from './activity-failures';

export interface VolumeControlDeps {
  store: InstanceStore;
  images: ImageClient;
  /** undefined: no volume endpoint configured (SNAP_VOLUME_URL), volume-backed snapshots are refused */
  cinder?: CinderForProject;
  /** SNAP_VOLUME_SNAPSHOT_TIMEOUT_SECONDS in ms: the run's wait for `available` (default 10 min) */
  snapshotTimeoutMs?: number;
  /** how long one clean-up attempt waits for a snapshot still `creating` (default 5 min) */
  cleanupAttemptMs?: number;
  /** deletes a run's Keystone trust; undefined without Keystone (a trust id is then ignored) */
  releaseTrust?(trustId: string): Promise<void>;
  log: Logger;
}

/** Nova's strutils.bool_from_string, as it reads os_require_quiesce. */
export function requiresQuiesce(value: string | undefined): boolean {
  return ['1', 't', 'true', 'on', 'y', 'yes'].includes((value ?? '').trim().toLowerCase());
}

function cinderOrRefuse(cinder: CinderForProject | undefined): CinderForProject {
  if (cinder !== undefined) return cinder;
  throw ApplicationFailure.nonRetryable('the instance boots from a volume and no volume service is configured (SNAP_VOLUME_URL, or Keystone for its catalog)', 'VolumeServiceNotConfigured');
}

async function projectOf(store: InstanceStore, instanceUuid: string): Promise<string> {
  const instance = await store.get(instanceUuid, { includeDeleted: true });
  if (instance?.projectId == null) throw ApplicationFailure.nonRetryable(`instance ${instanceUuid} names no project: its volumes cannot be scoped`, 'InvalidSnapshotInput');
  return instance.projectId;
}

/**
 * How long one clean-up attempt waits for a snapshot still `creating` to become deletable (Cinder
 * refuses to delete it, and with cinder-volume down it stays so). The attempt then fails naming
 * what is left, and Temporal retries it (cinderWaitActivities: 10 attempts, so about 50 minutes in
 * all) before the run gives up and names those snapshots in its failure.
 */
const CLEANUP_DEADLINE_MS = 5 * 60_000;

/** The run's snapshots Cinder still holds, each with its status, e.g. "3f…(creating)". */
async function runSnapshotsLeft(cinder: CinderClient, runId: string): Promise<string> {
  const left = await cinder.listSnapshots({ metadata: { [SNAPSHOT_RUN_KEY]: runId } });
  return left.filter((s) => s.status !== 'deleting').map((s) => `${s.id} (${s.status})`).join(', ');
}

/** Nova's OverQuota(overs='snapshots') for Cinder's own 413 on a create call, past the plan's check. */
function quotaRefusal(err: unknown): unknown {
  if (!(err instanceof CinderError && err.overLimit)) return err;
  return ApplicationFailure.nonRetryable(`Quota exceeded for resources: snapshots (${err.detail})`, SNAPSHOT_QUOTA_EXCEEDED);
}

export function createVolumeControlActivities(deps: VolumeControlDeps): VolumeControlActivities {
  const { store, images, log } = deps;
  return translateFailures<VolumeControlActivities>({
    async planVolumeSnapshots({ instanceUuid, imageId, trustId }) {
      const cinder = cinderOrRefuse(deps.cinder)(await projectOf(store, instanceUuid), trustId);
      const instance = await store.getOrThrow(instanceUuid);
      const confirmed = await confirmAttachedVolumes(cinder, instanceUuid, instance.volumes);
      const quota = await cinder.snapshotQuota();
      if (snapshotQuotaExceeded(quota, confirmed.length)) {
        // Nova's OverQuota(overs='snapshots'); nothing has been made yet
        throw ApplicationFailure.nonRetryable(`Quota exceeded for resources: snapshots (limit ${quota.limit}, in use ${quota.inUse}, wanted ${confirmed.length})`, SNAPSHOT_QUOTA_EXCEEDED);
      }
      const image = await images.get(imageId);
      return {
        volumes: confirmed.map(({ volumeId, device, root, sizeGiB }) => ({ volumeId, device, root, sizeGiB })),
        requireQuiesce: requiresQuiesce(image.properties.os_require_quiesce),
        deadlineMs: deps.snapshotTimeoutMs ?? DEFAULT_VOLUME_SNAPSHOT_TIMEOUT_MS,
      };
    },

    async awaitVolumeSnapshots({ instanceUuid, snapshotIds, deadlineMs, trustId }) {
      const cinder = cinderOrRefuse(deps.cinder)(await projectOf(store, instanceUuid), trustId);
      // The deadline is the run's, not this attempt's: a retried attempt waits only what is left.
      const left = Math.max(0, deadlineMs - (Date.now() - Context.current().info.scheduledTimestampMs));
      try {
        await withHeartbeat((_report, signal) => waitRunSnapshots(cinder, snapshotIds, { deadlineMs: left, signal }));
      } catch (err) {
        // the deadline is the run's: once it passed, a retry cannot help
        if (err instanceof SnapshotsNotAvailable) throw ApplicationFailure.nonRetryable(err.message, 'VolumeSnapshotsNotAvailable');
        throw err;
      }
    },

    async deleteVolumeSnapshots({ instanceUuid, runId, trustId }) {
      const cinder = cinderOrRefuse(deps.cinder)(await projectOf(store, instanceUuid), trustId);
      let deleted: string[];
      try {
        deleted = await withHeartbeat(() => deleteRunSnapshots(cinder, runId, { deadlineMs: deps.cleanupAttemptMs ?? CLEANUP_DEADLINE_MS }));
      } catch (err) {
        // 400: still not deletable at this attempt's deadline (creating, cinder-volume away): retried
        if (!(err instanceof CinderError && err.status === 400)) throw err;
        throw ApplicationFailure.retryable(`Cinder snapshots of run ${runId} not removed yet: ${await runSnapshotsLeft(cinder, runId)}`, 'VolumeSnapshotsNotDeletable');
      }
      if (deleted.length > 0) log.info({ instance_uuid: instanceUuid, snapshots: deleted }, 'deleted the Cinder snapshots of a failed snapshot run');
      return { deleted };
    },

    async releaseTrust({ trustId }) {
      if (deps.releaseTrust === undefined) return { released: false };
      try {
        await deps.releaseTrust(trustId);
        return { released: true };
      } catch (err) {
        // Keystone lets only an admin or the trustor delete a trust: a service user without admin leaves it to expire
        log.warn({ err, trust_id: trustId }, 'could not delete the run\'s Keystone trust; it expires on its own');
        return { released: false };
      }
    },

    async completeVolumeBackedImage({ imageId, volumes }) {
      const current = await images.get(imageId);
      if (current.status === 'active') return { imageId, status: current.status, size: current.size ?? 0, checksum: current.checksum ?? '' };
      await images.setProperties(imageId, volumeBackedImageProperties(volumes));
      // Nova's force_activate: zero bytes make the image active; such an image can only be raw and bare.
      await images.setFormats(imageId, { disk_format: 'raw', container_format: 'bare' });
      await images.upload(imageId, (async function* () {})(), { length: 0 });
      const image = await images.get(imageId);
      return { imageId, status: image.status, size: image.size ?? 0, checksum: image.checksum ?? '' };
    },
  });
}

export interface VolumeHostDeps {
  session: LibvirtSession;
  cinder?: CinderForProject;
  quiesceTimeoutMs: number;
}

export function createVolumeHostActivities(deps: VolumeHostDeps): VolumeHostActivities {
  return translateFailures<VolumeHostActivities>({
    async thawGuest({ domainName }) {
      const libvirt = await deps.session.client();
      try {
        await thaw(libvirt, await libvirt.domainLookupByName(domainName), { timeoutMs: deps.quiesceTimeoutMs });
      } catch (err) {
        // a guest that is gone has nothing frozen
        if (!isLibvirtError(err, VIR_ERR_NO_DOMAIN)) throw err;
      }
    },

    async snapshotVolumes({ domainName, projectId, runId, imageName, volumes, running, requireQuiesce, trustId }) {
      const cinder = cinderOrRefuse(deps.cinder)(projectId, trustId);
      return withHeartbeat(async () => {
        const libvirt = await deps.session.client();
        const dom = await libvirt.domainLookupByName(domainName);
        const outcome = await snapshotVolumesAtOnePoint(
          {
            libvirt,
            dom,
            cinder,
            quiesce: {
              timeoutMs: deps.quiesceTimeoutMs,
              requireQuiesce,
              log: (message, fields) => Context.current().log.warn(message, { ...fields, domain: domainName }),
            },
          },
          { runId, imageName, volumes, running },
        ).catch((err: unknown) => {
          throw quotaRefusal(err);
        });
        return {
          snapshots: outcome.snapshots.map(({ volumeId, device, root, sizeGiB, snapshotId }) => ({ volumeId, device, root, sizeGiB, snapshotId })),
          callsMs: outcome.callsMs,
          ...outcome.quiesce,
        };
      });
    },
  });
}
