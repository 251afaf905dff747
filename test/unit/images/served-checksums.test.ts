// Glance's checksums of a composed image after activation: the commit makes it active with
// `checksum`, `os_hash_algo` and `os_hash_value` null; it downloads whole meanwhile; the background
// pass then sets them to the md5 and sha512 of the served bytes; a pass a stop cut short is
// finished by the next start; a plain upload keeps its checksums at commit.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ImageService, UNAUTHENTICATED_ADMIN as admin } from '../../../src/images/service';
import { encodeMap } from '../../../src/images/client';
import { planImage } from '../../../src/qcow2';
import { diskWith, download, served, stage } from './composed-fixture';

const MiB = 1024 * 1024;
let dir: string;
let service: ImageService;

const open = async (): Promise<ImageService> => (service = await ImageService.open({ dataDir: dir, maxImageBytes: 1024 * MiB }));
const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');
const sha512 = (b: Buffer): string => createHash('sha512').update(b).digest('hex');

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'served-checksums-'));
  await open();
});
afterEach(async () => {
  await service.close();
  await rm(dir, { recursive: true, force: true });
});

async function committed(disk: Buffer, map: ReturnType<typeof diskWith>['map']): Promise<string> {
  const id = (await service.create(admin, { name: 'c', disk_format: 'qcow2', container_format: 'bare' })).id;
  await stage(service, id, { format: 'qcow2', map: encodeMap(map) }, disk);
  const active = await service.resumable.commit(admin, id, {});
  expect(active).toMatchObject({ status: 'active', checksum: null, os_hash_algo: null, os_hash_value: null });
  return id;
}

it('an image active with a null checksum downloads whole; the pass then sets the served bytes’ md5 and sha512', async () => {
  const { disk, map } = diskWith([[0, 3 * MiB], [5 * MiB, MiB]]);
  const id = await committed(disk, map);
  const expected = await served(planImage(map, { format: 'qcow2' }), disk);
  expect((await download(service, id)).equals(expected)).toBe(true);
  await service.checksums.idle();
  expect(service.get(admin, id)).toMatchObject({ checksum: md5(expected), os_hash_algo: 'sha512', os_hash_value: sha512(expected), size: expected.length });
});

it('a pass a stop cut short is finished by the next start', async () => {
  const { disk, map } = diskWith([[0, 64 * MiB]], 64 * MiB);
  const id = await committed(disk, map);
  // Stopped at once: the pass over 64 MiB ends between two reads, nothing written.
  await service.close();
  const onDisk = JSON.parse(await readFile(join(dir, 'records', `${id}.json`), 'utf8')) as { checksum: string | null };
  expect(onDisk.checksum).toBeNull();
  await open();
  await service.checksums.idle();
  expect(service.get(admin, id).checksum).toBe(md5(await served(planImage(map, { format: 'qcow2' }), disk)));
}, 60_000);

it('a plain upload (PUT) keeps its checksums at commit', async () => {
  const bytes = Buffer.from('plain image bytes');
  const id = (await service.create(admin, { name: 'p', disk_format: 'raw', container_format: 'bare' })).id;
  expect(await service.upload(admin, id, Readable.from([bytes]))).toMatchObject({ status: 'active', checksum: md5(bytes), os_hash_value: sha512(bytes) });
});
