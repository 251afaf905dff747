// createSnapshotImage run again for the same call (a local activity whose control worker died
// before its workflow task was recorded) answers the image the first run made, on the real image
// service, instead of leaving it queued beside a second; another call of the run makes its own;
// an id already taken by another instance's image is refused and changes nothing.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { Info } from '@temporalio/activity';
import { createControlActivities } from '../../../src/activities/control-activities';
import type { Identity } from '../../../src/auth';
import { POWER_STATE_RUNNING, type SnapshotImageRef } from '../../../src/contract';
import { createSnapshotImageRecord, GlanceHttpClient, ImageConflict } from '../../../src/images/client';
import { startImageServer, type RunningImageServer } from '../../../src/images/service';
import { createLogger } from '../../../src/observability';
import { InstanceStore, type Instance } from '../../../src/store';

let dir: string;
let server: RunningImageServer;
let images: GlanceHttpClient;
let store: InstanceStore;
let instance: Instance;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'create-image-repeat-'));
  const identities: Record<string, Identity> = { svc: { kind: 'cloud-admin', projectId: 'service' } };
  server = await startImageServer({ port: 0, dataDir: join(dir, 'images'), maxImageBytes: 1024, authenticate: (token) => identities[token] ?? null });
  images = new GlanceHttpClient(server.url, 'svc');
  store = await InstanceStore.open({ kind: 'sqlite', path: join(dir, 'instances.db') });
  const [row] = await store.upsertFromInventory([{ uuid: randomUUID(), name: 'vm1', host: 'h1', powerState: POWER_STATE_RUNNING, projectId: 'p1', disks: [] }]);
  if (row === undefined) throw new Error('no instance');
  instance = row;
});
afterEach(async () => {
  await store.close();
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

function createImage(info: Partial<Info>): Promise<SnapshotImageRef> {
  const activities = createControlActivities({
    store,
    images,
    createImageRecord: async (inst, name, metadata, backupType, imageId) => {
      const image = await createSnapshotImageRecord(images, inst, name, metadata, { owner: inst.projectId ?? undefined, backupType, id: imageId });
      return { imageId: image.id, status: image.status };
    },
    log: createLogger({ name: 'unit', level: 'silent' }),
  });
  return new MockActivityEnvironment(info).run(activities.createSnapshotImage, { instanceUuid: instance.uuid, name: 'daily', metadata: {}, backupType: 'daily' });
}

const run = { workflowExecution: { workflowId: 'snapshot-x', runId: randomUUID() }, isLocal: true, attempt: 1 };

it('a repeat of the same call answers the image the first made; another call of the run makes its own', async () => {
  const first = await createImage({ ...run, activityId: '1' });
  const again = await createImage({ ...run, activityId: '1' });
  expect(again).toEqual(first);
  const other = await createImage({ ...run, activityId: '3' });
  expect(other.imageId).not.toBe(first.imageId);
  expect((await images.list()).map((i) => i.id).sort()).toEqual([first.imageId, other.imageId].sort());
  expect((await images.get(first.imageId)).properties).toMatchObject({ image_type: 'backup', backup_type: 'daily', instance_uuid: instance.uuid });
});

it('refuses an id another instance image holds, and changes nothing', async () => {
  const id = randomUUID();
  await images.create({ id, name: 'not ours', properties: { instance_uuid: randomUUID() } });
  await expect(createSnapshotImageRecord(images, { uuid: instance.uuid, imageRef: null }, 'daily', {}, { id })).rejects.toBeInstanceOf(ImageConflict);
  expect((await images.list()).map((i) => i.id)).toEqual([id]);
});
