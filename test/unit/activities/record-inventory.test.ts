// recordInventory takes a host's report domain by domain: one the schema refuses (a project id
// past 255 characters, a volume id that is none) is left out and logged, and the host's other
// domains still become instances.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createControlActivities } from '../../../src/activities/control-activities';
import { POWER_STATE_RUNNING, type InventoryDomain } from '../../../src/contract';
import type { ImageClient } from '../../../src/images/client';
import { createLogger } from '../../../src/observability';
import { InstanceStore } from '../../../src/store';

let dir: string;
let store: InstanceStore;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'record-inventory-'));
  store = await InstanceStore.open({ kind: 'sqlite', path: join(dir, 'instances.db') });
});
afterEach(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

it("leaves out the domains the schema refuses and records the host's others", async () => {
  const activities = createControlActivities({
    store,
    images: {} as ImageClient,
    createImageRecord: () => Promise.reject(new Error('not in this test')),
    log: createLogger({ name: 'unit', level: 'silent' }),
  });
  const domain = (name: string, extra: Partial<InventoryDomain> = {}): InventoryDomain => ({ uuid: randomUUID(), name, host: 'h1', powerState: POWER_STATE_RUNNING, projectId: 'p1', disks: [], ...extra });
  const good = domain('good');
  const longProject = domain('long-project', { projectId: 'p'.repeat(300) });
  const badVolume = domain('bad-volume', { volumes: [{ volumeId: 'not-a-uuid', device: 'vda', root: true }] });
  const answer = await new MockActivityEnvironment().run(activities.recordInventory, { host: 'h1', domains: [longProject, good, badVolume] });
  expect(answer).toEqual({ instances: 1 });
  expect((await store.get(good.uuid))?.name).toBe('good');
  expect(await store.get(badVolume.uuid)).toBeUndefined();
  expect(await store.get(longProject.uuid)).toBeUndefined();
});
