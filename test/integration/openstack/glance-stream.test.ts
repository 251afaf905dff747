// The one-pass stream into a real Glance (PyPI glance behind a real Keystone, as the workers see it
// with the Keystone service user): Glance has no resumable upload, so the stream is one plain PUT
// from byte 0 with the formats set first; a PUT broken mid-way never leaves an active image, and
// the retry (a new call, as the activity's next attempt) starts from byte 0 into a whole image.
// An active image there is never taken for the stream's own commit (Glance keeps no commit mark).
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { streamImage, type StreamImageOptions } from '../../../src/host/image-stream';
import { imagesIdentical } from '../../../src/host/qemu-img';
import { runTool } from '../../../src/process/tool-process';
import { Readable } from 'node:stream';
import { isOwnCommit } from '../../../src/activities/one-pass-activities';
import { GlanceHttpClient, LOGICAL_DIGEST_PROPERTY, type ImageClient } from '../../../src/images/client';
import type { AllocationMap } from '../../../src/qcow2';
import { exportChain, type ExportedChain } from '../../support/exported-chain';
import { downloadImage } from '../../support/image-bytes';
import { startGlance, type RunningGlance } from '../../support/openstack/glance';
import { startKeystone, type RunningKeystone } from '../../support/openstack/keystone';

jest.setTimeout(180_000);

const MiB = 1024 * 1024;
const SIZE = 48 * MiB;

let dir: string;
let overlay: string;
let keystone: RunningKeystone;
let glance: RunningGlance;
let images: GlanceHttpClient;
let map: AllocationMap;
let chain: ExportedChain;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'glance-stream-'));
  chain = await exportChain(dir, SIZE, 4);
  overlay = chain.overlay;
  map = chain.map;

  keystone = await startKeystone();
  glance = await startGlance(keystone);
  const service = await keystone.createUser('snapshots', 'service', ['admin', 'service']);
  const auth = keystone.authenticatorFor(service);
  images = new GlanceHttpClient(glance.url, () => auth.serviceToken());
});

afterAll(async () => {
  await chain?.stop();
  await glance?.stop();
  await keystone?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function options(imageId: string, client: ImageClient = images): StreamImageOptions {
  return { images: client, imageId, format: 'qcow2', exportName: 'vda', socketPath: chain.socketPath, map, exportId: 'export-a' };
}

/** The client with its plain PUT's body broken after `cutAfter` bytes. */
function cutting(cutAfter: number): ImageClient {
  return Object.assign(Object.create(images) as ImageClient, {
    upload: (id: string, body: AsyncIterable<Buffer>, o?: Parameters<ImageClient['upload']>[2]) => {
      async function* cut(): AsyncGenerator<Buffer> {
        let sent = 0;
        for await (const chunk of body) {
          if (sent + chunk.length > cutAfter) throw new Error('injected: the connection broke');
          sent += chunk.length;
          yield chunk;
        }
      }
      return images.upload(id, cut(), o);
    },
  });
}

async function expectIdentical(imageId: string): Promise<void> {
  const file = await downloadImage(images, imageId, dir);
  try {
    expect(await imagesIdentical(file, overlay)).toBe(true);
    await runTool('qemu-img', ['check', '-q', file]);
  } finally {
    await rm(file, { force: true });
  }
}

it('streams one plain PUT from byte 0, formats first, into an active image identical to the disk', async () => {
  const image = await images.create({ name: 'glance-stream', visibility: 'private', properties: { image_type: 'snapshot' } });
  await images.setFormats(image.id, { disk_format: 'qcow2', container_format: 'bare' });
  const out = await streamImage(options(image.id));
  expect(out).toMatchObject({ resumable: false, resumedFrom: 0 });
  expect(out.image).toMatchObject({ status: 'active', disk_format: 'qcow2', container_format: 'bare' });
  await expectIdentical(image.id);
});

it('a PUT broken mid-way leaves no active image, and the retry starts over from byte 0 into a whole one', async () => {
  const image = await images.create({ name: 'glance-stream-broken', visibility: 'private' });
  await images.setFormats(image.id, { disk_format: 'qcow2', container_format: 'bare' });
  const seen = new Set<string>();
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      seen.add((await images.get(image.id)).status);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  await expect(streamImage(options(image.id, cutting(5 * MiB)))).rejects.toThrow();
  // Glance answers `saving` until it has handled the broken request, then puts the image back to
  // `queued`; the activity's next attempt (after its backoff) finds it so.
  let after = await images.get(image.id);
  for (let i = 0; i < 100 && after.status === 'saving'; i++) {
    await new Promise((r) => setTimeout(r, 100));
    after = await images.get(image.id);
  }
  watching = false;
  await watcher;
  expect(after.status).toBe('queued');
  expect(seen.has('active')).toBe(false);

  // What the activity's next attempt does on a queued image: formats again, then the whole stream.
  await images.setFormats(image.id, { disk_format: 'qcow2', container_format: 'bare' });
  const out = await streamImage(options(image.id));
  expect(out).toMatchObject({ resumable: false, resumedFrom: 0 });
  expect(out.image.status).toBe('active');
  await expectIdentical(image.id);
});

it('never takes an active image of a real Glance for the stream’s own commit, whatever its properties say', async () => {
  // What an owner can do on a real Glance: any property, the mark's name included, and its own bytes.
  const forged = await images.create({
    name: 'glance-forged',
    visibility: 'private',
    disk_format: 'raw',
    container_format: 'bare',
    properties: { snapshot_data_path: 'backup-job', snapshot_export_id: 'export-a', snapshot_kind: 'full', snapshot_commit: 'export-a', [LOGICAL_DIGEST_PROPERTY]: 'sha256-1m-blocks:00' },
  });
  const bytes = Buffer.from('not the guest');
  await images.upload(forged.id, Readable.from([bytes]), { length: bytes.length });
  const active = await images.get(forged.id);
  expect(active).toMatchObject({ status: 'active', snapshot_commit: 'export-a' });
  expect(await images.composes()).toBe(false);
  expect(isOwnCommit(active, await images.composes())).toBe(false);
  await images.delete(forged.id);
});
