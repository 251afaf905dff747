// Nova's image for a volume-backed snapshot written through the real image service: the queued
// snapshot record gets block_device_mapping, bdm_v2 and root_device_name by Glance's JSON-patch
// `add`, and turns active with zero bytes (Nova's force_activate: raw, bare, size 0). A patch that
// names a core attribute as a property is refused and changes nothing.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Identity } from '../../../src/auth';
import { createVolumeControlActivities } from '../../../src/activities/volume-activities';
import { createSnapshotImageRecord, GlanceHttpClient, ImageRequestRejected } from '../../../src/images/client';
import { startImageServer, type RunningImageServer } from '../../../src/images/service';
import { createLogger } from '../../../src/observability';
import type { InstanceStore } from '../../../src/store';

let dir: string;
let server: RunningImageServer;
let images: GlanceHttpClient;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'volume-image-'));
  const identities: Record<string, Identity> = { svc: { kind: 'cloud-admin', projectId: 'service' } };
  server = await startImageServer({ port: 0, dataDir: dir, maxImageBytes: 1024, authenticate: (token) => identities[token] ?? null });
  images = new GlanceHttpClient(server.url, 'svc');
});
afterEach(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

const instance = { uuid: '3f0c1d5e-8a4b-4c2d-9e6f-7a8b9c0d1e2f', imageRef: null };
const snapshotId = 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d';

it('writes the bdm v2 properties and makes the image active with no data', async () => {
  const image = await createSnapshotImageRecord(images, instance, 'vb', {}, { owner: 'p1' });
  expect(image.status).toBe('queued');
  // the store is not read by this step
  const activities = createVolumeControlActivities({ store: undefined as unknown as InstanceStore, images, log: createLogger({ name: 'unit', level: 'silent' }) });
  const done = await activities.completeVolumeBackedImage({ imageId: image.id, volumes: [{ device: 'vda', snapshotId, volumeSizeGiB: 1, root: true }] });
  expect(done).toMatchObject({ imageId: image.id, status: 'active', size: 0 });
  const stored = await images.get(image.id);
  expect(stored).toMatchObject({ status: 'active', size: 0, disk_format: 'raw', container_format: 'bare' });
  expect(stored.properties).toMatchObject({ bdm_v2: 'True', root_device_name: '/dev/vda', image_type: 'snapshot', instance_uuid: instance.uuid });
  expect(JSON.parse(stored.properties.block_device_mapping ?? '[]')).toEqual([expect.objectContaining({ source_type: 'snapshot', destination_type: 'volume', snapshot_id: snapshotId, volume_size: 1, boot_index: 0, device_name: '/dev/vda' })]);
  // a retried step finds it done
  await expect(activities.completeVolumeBackedImage({ imageId: image.id, volumes: [{ device: 'vda', snapshotId, volumeSizeGiB: 1, root: true }] })).resolves.toMatchObject({ status: 'active' });
});

it('refuses a core attribute or a reserved name as a custom property, and changes nothing', async () => {
  const image = await createSnapshotImageRecord(images, instance, 'vb', {}, { owner: 'p1' });
  await expect(images.setProperties(image.id, { bdm_v2: 'True', visibility: 'public' })).rejects.toBeInstanceOf(ImageRequestRejected);
  await expect(images.setProperties(image.id, { os_glance_x: '1' })).rejects.toBeInstanceOf(ImageRequestRejected);
  const stored = await images.get(image.id);
  expect(stored.properties.bdm_v2).toBeUndefined();
  expect(stored.visibility).toBe('private');
});
