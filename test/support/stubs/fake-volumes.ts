// The volume-backed branch's activities over the fake cloud: the real run-snapshot logic of
// src/cinder (tagged by run, looked up before create, waited for, deleted by the tag) on each
// instance's in-memory Cinder, and a guest freeze the tests can see (FakeInstance.frozen).
import { ApplicationFailure } from '@temporalio/activity';
import { createRunSnapshots, deleteRunSnapshots, SnapshotsNotAvailable, waitRunSnapshots } from '../../../src/cinder';
import { SNAPSHOT_QUOTA_EXCEEDED, snapshotQuotaExceeded, volumeBackedImageProperties, type VolumeControlActivities, type VolumeHostActivities } from '../../../src/contract';
import type { FakeInstance } from './fake-cloud';

interface FakeInstances {
  releasedTrusts: string[];
  uuid(uuid: string): FakeInstance;
  domain(name: string): FakeInstance;
  image(id: string): FakeInstance;
}

const WAIT = { deadlineMs: 2_000, pollMs: 50 };

export function fakeVolumeControlActivities(cloud: FakeInstances): VolumeControlActivities {
  return {
    planVolumeSnapshots: async ({ instanceUuid, trustId }) => {
      const inst = cloud.uuid(instanceUuid);
      inst.trustsUsed.push(trustId);
      inst.enter('planVolumeSnapshots');
      const volumes = inst.options.volumes ?? [];
      if (snapshotQuotaExceeded(inst.options.snapshotQuota ?? { limit: -1, inUse: 0 }, volumes.length)) {
        throw ApplicationFailure.nonRetryable('Quota exceeded for resources: snapshots', SNAPSHOT_QUOTA_EXCEEDED);
      }
      return { volumes, requireQuiesce: false };
    },
    awaitVolumeSnapshots: async ({ instanceUuid, snapshotIds, trustId }) => {
      const inst = cloud.uuid(instanceUuid);
      inst.trustsUsed.push(trustId);
      inst.enter('awaitVolumeSnapshots');
      try {
        await waitRunSnapshots(inst.cinder, snapshotIds, WAIT);
      } catch (err) {
        if (err instanceof SnapshotsNotAvailable) throw ApplicationFailure.nonRetryable(err.message, 'VolumeSnapshotsNotAvailable');
        throw err;
      }
    },
    deleteVolumeSnapshots: async ({ instanceUuid, runId, trustId }) => {
      const inst = cloud.uuid(instanceUuid);
      inst.trustsUsed.push(trustId);
      inst.enter('deleteVolumeSnapshots');
      return { deleted: await deleteRunSnapshots(inst.cinder, runId, WAIT) };
    },
    releaseTrust: async ({ trustId }) => {
      cloud.releasedTrusts.push(trustId);
      return { released: true };
    },
    completeVolumeBackedImage: async ({ imageId, volumes }) => {
      const inst = cloud.image(imageId);
      inst.enter('completeVolumeBackedImage');
      inst.imageProperties = volumeBackedImageProperties(volumes);
      inst.imageStatus = 'active';
      return { imageId, status: 'active', size: 0, checksum: '' };
    },
  };
}

export function fakeVolumeHostActivities(cloud: FakeInstances): VolumeHostActivities {
  return {
    thawGuest: async ({ domainName }) => {
      const inst = cloud.domain(domainName);
      inst.calls.push('thawGuest');
      inst.frozen = false;
    },
    snapshotVolumes: async ({ domainName, runId, imageName, volumes, running, trustId }) => {
      const inst = cloud.domain(domainName);
      inst.trustsUsed.push(trustId);
      if (running) inst.frozen = true;
      const made = await createRunSnapshots(inst.cinder, runId, imageName, volumes);
      // an injected failure lands after the create calls, inside the freeze: a worker killed there
      inst.enter('snapshotVolumes');
      inst.frozen = false;
      return {
        snapshots: made.snapshots.map(({ volumeId, device, root, sizeGiB, snapshotId }) => ({ volumeId, device, root, sizeGiB, snapshotId })),
        callsMs: made.callsMs,
        quiesced: running,
        freezeWindowMs: running ? made.callsMs : null,
      };
    },
  };
}
