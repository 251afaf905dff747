// The Glance wire format both ways, and the client's mapping of error responses.
import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import { ImageConflict, ImageNotFound, ImageRequestRejected, ImageServiceUnavailable, ImageTooLarge, imageFromView, toGlanceView, type ImageRecord } from '../../../src/images/client';
import { imageServerConfigFromEnv } from '../../../src/images/service';
import { errorFromResponse } from '../../../src/images/client/http-transport';

const record: ImageRecord = {
  id: '3b6f8c1e-6f53-4c43-9b5e-2a5f0d3f6d11',
  name: 'snap',
  status: 'active',
  container_format: 'bare',
  disk_format: 'qcow2',
  visibility: 'private',
  owner: 'p1',
  size: 5,
  checksum: 'md5',
  os_hash_algo: 'sha512',
  os_hash_value: 'sha',
  min_disk: 0,
  min_ram: 0,
  protected: false,
  tags: ['t'],
  properties: { instance_uuid: 'i-1' },
  created_at: '2030-01-01T00:00:00Z',
  updated_at: '2030-01-01T00:00:00Z',
};

it('flattens properties into top-level keys and round-trips through the client parser', () => {
  const view = toGlanceView(record);
  expect(view).toMatchObject({ instance_uuid: 'i-1', self: `/v2/images/${record.id}`, file: `/v2/images/${record.id}/file`, schema: '/v2/schemas/image' });
  expect(view).not.toHaveProperty('properties');
  expect(imageFromView(JSON.parse(JSON.stringify(view)))).toMatchObject({ id: record.id, size: 5, properties: { instance_uuid: 'i-1' } });
});

it('parses a real Glance response, keeping only custom string keys as properties', () => {
  const glance = {
    id: record.id, name: 'cirros', status: 'active', container_format: 'bare', disk_format: 'qcow2', visibility: 'public',
    owner: 'abc', size: 12716032, virtual_size: 117440512, checksum: 'x', os_hash_algo: 'sha512', os_hash_value: 'y',
    min_disk: 0, min_ram: 0, protected: false, os_hidden: false, tags: [], stores: 'file', direct_url: 'file:///x',
    locations: [], created_at: '2024-01-01T00:00:00Z', updated_at: '2024-01-01T00:00:00Z',
    self: '/v2/images/x', file: '/v2/images/x/file', schema: '/v2/schemas/image', hw_disk_bus: 'virtio',
  };
  expect(imageFromView(glance).properties).toEqual({ hw_disk_bus: 'virtio' });
});

async function mapStatus(status: number, body: string): Promise<unknown> {
  const res = new PassThrough() as PassThrough & { statusCode: number };
  res.statusCode = status;
  res.end(body);
  return errorFromResponse(res as unknown as IncomingMessage, record.id);
}

it.each([
  [404, ImageNotFound],
  [409, ImageConflict],
  [413, ImageTooLarge],
  [500, ImageServiceUnavailable],
  [503, ImageServiceUnavailable],
  [400, ImageRequestRejected],
])('maps HTTP %i to its typed error', async (status, type) => {
  expect(await mapStatus(status, JSON.stringify({ error: { message: 'why' } }))).toBeInstanceOf(type);
});

it('uses the JSON message, or plain text from a real Glance', async () => {
  expect(((await mapStatus(409, JSON.stringify({ error: { message: 'busy' } }))) as Error).message).toBe('busy');
  expect(((await mapStatus(404, '404 Not Found\n\nNo image found\n')) as Error).message).toBe('404 Not Found\n\nNo image found');
  expect((await mapStatus(503, '')) as ImageServiceUnavailable).toMatchObject({ retryable: true });
});

it('validates the server environment with defaults', () => {
  expect(imageServerConfigFromEnv({})).toEqual({ host: '127.0.0.1', port: 9292, dataDir: '.data/images', maxImageBytes: 1024 ** 4, verifyAfterCommit: true });
  expect(imageServerConfigFromEnv({ SNAP_IMAGE_VERIFY: 'false' }).verifyAfterCommit).toBe(false);
  expect(imageServerConfigFromEnv({ SNAP_IMAGE_VERIFY: '1' }).verifyAfterCommit).toBe(true);
  expect(() => imageServerConfigFromEnv({ SNAP_IMAGE_VERIFY: 'off' })).toThrow(/SNAP_IMAGE_VERIFY/);
  expect(imageServerConfigFromEnv({ SNAP_IMAGE_PORT: '0', SNAP_IMAGE_DIR: 'd' })).toMatchObject({ port: 0, dataDir: 'd' });
  expect(() => imageServerConfigFromEnv({ SNAP_IMAGE_PORT: 'http' })).toThrow(/SNAP_IMAGE_PORT/);
  expect(() => imageServerConfigFromEnv({ SNAP_IMAGE_PORT: '70000' })).toThrow(/SNAP_IMAGE_PORT/);
});
