// The compute API's snapshot starter with a store and a Temporal client that only record being
// touched (a refused request touches neither), and an instance row to start it on.
import type { Client } from '@temporalio/client';
import pino from 'pino';
import { SnapshotStarter } from '../../src/api/snapshot-starter';
import type { Instance, InstanceStore } from '../../src/store';

export function refusingStarter(): { starter: SnapshotStarter; touched: string[] } {
  const touched: string[] = [];
  const store = {
    compareAndSetTaskState: () => touched.push('task_state'),
    actions: { record: () => touched.push('action'), remove: () => touched.push('action removed') },
  } as unknown as InstanceStore;
  const temporal = { withDeadline: () => touched.push('workflow'), workflow: { start: () => touched.push('workflow') } } as unknown as Client;
  return { starter: new SnapshotStarter({ store, temporal, metadataQuota: 128, log: pino({ level: 'silent' }) }), touched };
}

/** An active instance of project p1 with these volumes. */
export function instanceWith(volumes: Instance['volumes']): Instance {
  return {
    uuid: '11111111-1111-4111-8111-111111111111', name: 'vm', host: 'h', projectId: 'p1', vmState: 'active', powerState: 1, taskState: null,
    imageRef: null, rootDisk: null, createdAt: '', updatedAt: '', deletedAt: null, deleted: false, userId: null, flavor: null, volumes,
  };
}
