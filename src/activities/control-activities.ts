// The control worker's activities: instance store, image records and notifications (Nova's
// compute manager side of the snapshot that does not touch the hypervisor).
import type { Logger } from 'pino';
import { ImageNotFound, type ImageClient } from '../images';
import { InventoryDomainSchema, type Instance, type InstanceStore, type TaskState } from '../store';
import { translateFailures } from './activity-failures';
import type { ControlActivities, SnapshotImageRef, SnapshotInstanceInfo } from './activity-types';

/** The task states a snapshot sets; the compensation resets only these (Nova's reverts_task_state). */
export const SNAPSHOT_TASK_STATES: readonly TaskState[] = ['image_snapshot_pending', 'image_snapshot', 'image_pending_upload', 'image_uploading'];

export interface ControlActivityDeps {
  store: InstanceStore;
  /** acts with a service token: compensations must work whoever started the snapshot */
  images: ImageClient;
  /** Nova's compute API _create_image, shared with the API's createImage path */
  createImageRecord(instance: Instance, name: string, metadata: Record<string, string>): Promise<SnapshotImageRef>;
  log: Logger;
}

function snapshotInfo(instance: Instance): SnapshotInstanceInfo {
  return {
    uuid: instance.uuid,
    domainName: instance.name,
    host: instance.host,
    projectId: instance.projectId,
    powerState: instance.powerState,
    imageRef: instance.imageRef,
  };
}

export function createControlActivities(deps: ControlActivityDeps): ControlActivities {
  const { store, images, log } = deps;
  const activities: ControlActivities = {
    async createSnapshotImage({ instanceUuid, name, metadata }) {
      const instance = await store.getOrThrow(instanceUuid);
      return deps.createImageRecord(instance, name, metadata);
    },

    async setTaskState({ instanceUuid, taskState, expected }) {
      return snapshotInfo(await store.setTaskStateOrThrow(instanceUuid, expected, taskState));
    },

    async savePowerState({ instanceUuid, powerState }) {
      await store.setPowerState(instanceUuid, powerState);
    },

    async notifySnapshot({ instanceUuid, imageId, event }) {
      // Nova's _notify_about_instance_usage: one structured event per transition, for log shippers.
      log.info({ event_type: `compute.instance.${event}`, instance_uuid: instanceUuid, image_id: imageId }, event);
    },

    async deleteImageUnlessActive({ imageId }) {
      try {
        const image = await images.get(imageId);
        if (image.status === 'active') return { deleted: false, status: image.status };
        await images.delete(imageId);
        log.info({ image_id: imageId, status: image.status }, 'deleted the image of a failed snapshot');
        return { deleted: true, status: image.status };
      } catch (err) {
        if (err instanceof ImageNotFound) return { deleted: false, status: null };
        throw err;
      }
    },

    async resetTaskState({ instanceUuid }) {
      const result = await store.compareAndSetTaskState(instanceUuid, SNAPSHOT_TASK_STATES, null);
      if (!result.ok) log.info({ instance_uuid: instanceUuid, reason: result.error.message }, 'task_state left as is');
    },

    async recordInventory({ host, domains }) {
      const instances = await store.upsertFromInventory(domains.map((d) => InventoryDomainSchema.parse({ ...d, host })));
      return { instances: instances.length };
    },
  };
  return translateFailures(activities);
}
