// Deleted image records do not stay for ever: kept (404 to a GET, the id still taken) for the
// retention, then purged from memory and disk by the sweep, and at the next start.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ImageConflict, ImageNotFound } from '../../../src/images/client';
import { ImageService, type RequestContext } from '../../../src/images/service';

const HOUR = 3600_000;
const member: RequestContext = { projectId: 'p1', isAdmin: false };
let dir: string;
let clock: number;
const services: ImageService[] = [];

async function open(): Promise<ImageService> {
  const service = await ImageService.open({ dataDir: dir, maxImageBytes: 1024, deletedRetentionMs: 24 * HOUR, now: () => new Date(clock) });
  services.push(service);
  return service;
}
const recordFiles = async (): Promise<string[]> => (await readdir(join(dir, 'records'))).sort();

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-retention-'));
  clock = Date.UTC(2030, 0, 1);
});
afterEach(async () => {
  for (const service of services.splice(0)) await service.close();
  await rm(dir, { recursive: true, force: true });
});

it('answers 404 for a deleted image, keeps its id taken for the retention, then purges its record', async () => {
  const service = await open();
  const gone = await service.create(member, { name: 'gone' });
  await service.upload(member, gone.id, Readable.from([Buffer.from('abc')]));
  const kept = await service.create(member, { name: 'kept' });
  await service.delete(member, gone.id);

  expect(() => service.get(member, gone.id)).toThrow(ImageNotFound);
  expect(service.list(member, {}, { limit: 10 }).images.map((r) => r.id)).toEqual([kept.id]);
  await expect(service.create(member, { id: gone.id })).rejects.toBeInstanceOf(ImageConflict);

  clock += 23 * HOUR;
  expect(await service.purgeDeleted()).toEqual([]);
  expect(await recordFiles()).toEqual([`${gone.id}.json`, `${kept.id}.json`].sort());

  clock += 2 * HOUR;
  expect(await service.purgeDeleted()).toEqual([gone.id]);
  expect(await recordFiles()).toEqual([`${kept.id}.json`]);
  expect(() => service.get(member, gone.id)).toThrow(ImageNotFound);
  expect(service.get(member, kept.id).status).toBe('queued');
  expect(await readdir(join(dir, 'files'))).toEqual([]);
});

it('purges expired deleted records at start', async () => {
  const first = await open();
  const gone = await first.create(member, { name: 'gone' });
  await first.delete(member, gone.id);
  await first.close();
  services.splice(0);

  clock += 25 * HOUR;
  await open();
  expect(await recordFiles()).toEqual([]);
});
