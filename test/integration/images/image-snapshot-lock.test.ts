// The attack of security item 4 over real HTTP: the owner of a snapshot image, while the snapshot
// runs, writes bytes of its own into the image and the properties a stream leaves, hoping the
// worker takes the image as its own finished snapshot. The image the compute API makes for a
// snapshot is locked for the snapshot service: every such write answers 403 with Glance's error
// body and changes nothing, the service's own upload completes it, and the commit mark the worker
// trusts is the service's alone. Deleting the image stays the owner's right.
import { Readable } from 'node:stream';
import { isOwnCommit } from '../../../src/activities/one-pass-activities';
import { createSnapshotImageRecord, GlanceHttpClient, ImageError, ImageNotFound, type Image } from '../../../src/images/client';
import type { AuthIdentity } from '../../../src/auth';
import { raw, startFixture, type ImageServerFixture } from './image-server-fixture';
import { allDataRawLayout } from '../../support/raw-layout';

const TOKENS: Record<string, AuthIdentity> = {
  'token-owner': { kind: 'project', projectId: 'project-a', projectAdmin: false },
  'token-service': { kind: 'service', projectId: 'service' },
  'token-admin': { kind: 'cloud-admin', projectId: 'project-ops' },
};

let fx: ImageServerFixture;
let owner: GlanceHttpClient;
let service: GlanceHttpClient;

beforeEach(async () => {
  fx = await startFixture({ authenticate: async (token) => TOKENS[token] ?? null });
  owner = new GlanceHttpClient(fx.server.url, 'token-owner');
  service = new GlanceHttpClient(fx.server.url, 'token-service');
});
afterEach(async () => fx.cleanup());

const FORGED = { snapshot_data_path: 'backup-job', snapshot_export_id: 'export-1', snapshot_quiesced: 'true', snapshot_kind: 'full', snapshot_commit: 'export-1' };
/** Refused with 403 (the client's plain upload wraps the refusal in an ImageUploadFailed of that status). */
const forbidden = async (call: Promise<unknown>): Promise<void> => {
  const err = await call.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ImageError);
  expect((err as ImageError).status).toBe(403);
};

/** As the compute API's createImage makes it: with the owner's token. */
const snapshotImage = (): Promise<Image> => createSnapshotImageRecord(owner, { uuid: 'c0ffee00-0000-4000-8000-000000000001', imageRef: null }, 'snap', {});

it('refuses the owner’s bytes and properties while the snapshot runs, and takes the service’s', async () => {
  const image = await snapshotImage();
  expect(image).toMatchObject({ status: 'queued', owner: 'project-a', snapshot_write_lock: 'service' });
  const forged = Buffer.alloc(512, 'not the guest');

  await forbidden(owner.upload(image.id, Readable.from([forged]), { length: forged.length }));
  await forbidden(owner.openStagedUpload(image.id, forged.length, 'export-1', allDataRawLayout(forged.length)));
  await forbidden(owner.setFormats(image.id, { disk_format: 'raw' }));
  const put = await raw(fx.server.url, 'PUT', `/v2/images/${image.id}/file`, { body: forged, headers: { 'X-Auth-Token': 'token-owner', 'Content-Type': 'application/octet-stream' } });
  expect(put.status).toBe(403);
  expect(put.json).toMatchObject({ error: { code: 403, title: 'Forbidden' } });

  // The snapshot service's session: the owner can neither feed nor commit nor discard it.
  const sent = Buffer.alloc(512, 'the guest disk');
  expect(await service.openStagedUpload(image.id, sent.length, 'export-1', allDataRawLayout(sent.length))).toMatchObject({ offset: 0 });
  await forbidden(owner.appendStaged(image.id, 0, Readable.from([forged]), { length: forged.length }));
  await forbidden(owner.commitStaged(image.id, { properties: { snapshot_data_path: 'backup-job' } }));
  await forbidden(owner.discardStaged(image.id));
  expect((await owner.get(image.id)).status).toBe('uploading');

  await service.appendStaged(image.id, 0, Readable.from([sent]), { length: sent.length });
  const active = await service.commitStaged(image.id, { properties: { snapshot_data_path: 'backup-job', snapshot_export_id: 'export-1' } });
  expect(active).toMatchObject({ status: 'active', size: sent.length, snapshot_commit: 'export-1' });
  expect(active.snapshot_write_lock).toBeUndefined();
  expect(isOwnCommit(await owner.get(image.id), await owner.composes())).toBe(true);
  const chunks: Buffer[] = [];
  for await (const chunk of await owner.download(image.id)) chunks.push(chunk as Buffer);
  expect(Buffer.concat(chunks)).toEqual(sent);
});

it('lets the owner delete a snapshot image while it is locked', async () => {
  const image = await snapshotImage();
  await service.openStagedUpload(image.id, 512, 'export-1', allDataRawLayout(512));
  await owner.delete(image.id);
  await expect(owner.get(image.id)).rejects.toBeInstanceOf(ImageNotFound);
});

it('never lets an owner’s own commit pass for the service’s, even on an image without the lock', async () => {
  // An image made before the lock existed (or by a client that did not ask for it).
  const image = await owner.create({ name: 'old-snap', properties: { image_type: 'snapshot' } });
  const forged = Buffer.alloc(512, 'not the guest');
  await owner.openStagedUpload(image.id, forged.length, 'export-1', allDataRawLayout(forged.length));
  await owner.appendStaged(image.id, 0, Readable.from([forged]), { length: forged.length });
  await forbidden(owner.commitStaged(image.id, { properties: FORGED }));
  const { snapshot_commit: _mark, ...properties } = FORGED;
  const active = await owner.commitStaged(image.id, { properties });
  expect(active.status).toBe('active');
  expect(active.snapshot_commit).toBeUndefined();
  expect(isOwnCommit(active, await owner.composes())).toBe(false);
});
