// Glance's JSON-patch update, limited to what the snapshot path needs: the formats of an image
// that has no data yet. Anything else is refused and changes nothing.
import { Readable } from 'node:stream';
import { GlanceHttpClient, ImageConflict } from '../../../src/images/client';
import { raw, startFixture, type ImageServerFixture } from './image-server-fixture';

const PATCH_TYPE = { 'Content-Type': 'application/openstack-images-v2.1-json-patch' };

describe('PATCH /v2/images/{id}', () => {
  let fx: ImageServerFixture;
  let client: GlanceHttpClient;
  beforeEach(async () => {
    fx = await startFixture();
    client = new GlanceHttpClient(fx.server.url);
  });
  afterEach(async () => {
    await fx.cleanup();
  });

  it('sets the formats of a queued image, and refuses once its bytes are final', async () => {
    const image = await client.create({ name: 'snap', disk_format: 'raw' });
    const patched = await client.setFormats(image.id, { disk_format: 'qcow2', container_format: 'bare' });
    expect(patched).toMatchObject({ status: 'queued', disk_format: 'qcow2', container_format: 'bare' });
    expect(await client.get(image.id)).toMatchObject({ disk_format: 'qcow2', container_format: 'bare' });
    await client.upload(image.id, Readable.from([Buffer.from('bytes')]));
    await expect(client.setFormats(image.id, { disk_format: 'raw' })).rejects.toBeInstanceOf(ImageConflict);
    expect((await client.get(image.id)).disk_format).toBe('qcow2');
  });

  it('refuses other attributes, unknown formats, other media types and malformed patches with 4xx and no change', async () => {
    const image = await client.create({ name: 'snap', disk_format: 'raw' });
    const base = fx.server.url;
    const path = `/v2/images/${image.id}`;
    const cases: [Record<string, string>, string, number][] = [
      [PATCH_TYPE, JSON.stringify([{ op: 'replace', path: '/name', value: 'x' }]), 400],
      [PATCH_TYPE, JSON.stringify([{ op: 'replace', path: '/disk_format', value: 'floppy' }]), 400],
      [PATCH_TYPE, JSON.stringify([{ op: 'remove', path: '/disk_format' }]), 400],
      [PATCH_TYPE, JSON.stringify([]), 400],
      [PATCH_TYPE, '[{', 400],
      [{ 'Content-Type': 'application/json' }, JSON.stringify([{ op: 'replace', path: '/disk_format', value: 'qcow2' }]), 415],
    ];
    for (const [headers, body, status] of cases) {
      const answer = await raw(base, 'PATCH', path, { headers, body });
      expect([answer.status, body]).toEqual([status, body]);
    }
    const missing = await raw(base, 'PATCH', '/v2/images/00000000-0000-4000-8000-000000000000', { headers: PATCH_TYPE, body: JSON.stringify([{ op: 'replace', path: '/disk_format', value: 'qcow2' }]) });
    expect(missing.status).toBe(404);
    expect((await client.get(image.id)).disk_format).toBe('raw');
  });
});
