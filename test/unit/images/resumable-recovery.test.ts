// Resumable sessions across a restart of the service: what survives (committed length, size,
// token, layout) and what ImageService.open repairs, a previous version's plain session included.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { ImageRecord } from '../../../src/images/client';
import { ImageService, UNAUTHENTICATED_ADMIN as admin } from '../../../src/images/service';
import { allDataRawLayout, allDataRawOpen } from '../../support/raw-layout';
import { download } from './composed-fixture';

let dir: string;
let service: ImageService | undefined;

const open = async (): Promise<ImageService> => {
  await service?.close();
  service = await ImageService.open({ dataDir: dir, maxImageBytes: 1024 * 1024 });
  return service;
};

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-resumable-recovery-'));
  service = undefined;
});
afterEach(async () => {
  await service?.close();
  await rm(dir, { recursive: true, force: true });
});

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');
const sha512 = (b: Buffer): string => createHash('sha512').update(b).digest('hex');
const resumableDir = (): string => join(dir, 'resumable');
const listed = async (sub: string): Promise<string[]> => (await readdir(join(dir, sub))).sort();

describe('a restart in the middle of an upload', () => {
  it('keeps the committed length, size, token and layout of the bytes already staged', async () => {
    const first = await open();
    const id = (await first.create(admin, { name: 'snap' })).id;
    const bytes = randomBytes(300 * 1024);
    await first.resumable.open(admin, id, allDataRawOpen(bytes.length, 'run-1:attempt-1'));
    await first.resumable.append(admin, id, 0, Readable.from([bytes.subarray(0, 100_000), bytes.subarray(100_000, 123_457)]));

    const second = await open();
    expect(second.recovery.resumedUploadIds).toEqual([id]);
    expect(second.recovery.killedImageIds).toEqual([]);
    expect(second.get(admin, id).status).toBe('uploading');
    expect(second.resumable.state(admin, id)).toEqual({ offset: 123_457, size: bytes.length, token: 'run-1:attempt-1' });
    expect((await second.resumable.open(admin, id, allDataRawOpen(bytes.length, 'run-1:attempt-1'))).created).toBe(false);
    await second.resumable.append(admin, id, 123_457, Readable.from([bytes.subarray(123_457)]));

    // Restart again before the commit: the layout came back with the session, and composes it.
    const third = await open();
    expect(await third.resumable.commit(admin, id, {})).toMatchObject({ status: 'active', size: bytes.length });
    expect(await download(third, id)).toEqual(bytes);
    await third.checksums.idle();
    expect(third.get(admin, id)).toMatchObject({ checksum: md5(bytes), os_hash_value: sha512(bytes) });
    expect(await listed('resumable')).toEqual([]);
  });
});

function record(status: ImageRecord['status']): ImageRecord {
  return {
    id: randomUUID(), name: status, status, container_format: 'bare', disk_format: 'raw', visibility: 'private', owner: 'p',
    size: null, checksum: null, os_hash_algo: null, os_hash_value: null, min_disk: 0, min_ram: 0, protected: false, tags: [],
    properties: {}, created_at: '2030-01-01T00:00:00.000Z', updated_at: '2030-01-01T00:00:00.000Z',
  };
}

async function plant(r: ImageRecord | undefined, session: { id?: string; meta?: string | object; data?: string }, blob?: string): Promise<string> {
  const id = r?.id ?? session.id ?? randomUUID();
  if (r !== undefined) await writeFile(join(dir, 'records', `${id}.json`), JSON.stringify(r));
  if (session.meta !== undefined) await writeFile(join(resumableDir(), `${id}.json`), typeof session.meta === 'string' ? session.meta : JSON.stringify(session.meta));
  if (session.data !== undefined) await writeFile(join(resumableDir(), `${id}.data`), session.data);
  if (blob !== undefined) await writeFile(join(dir, 'files', id), blob);
  return id;
}

describe('ImageService.open', () => {
  beforeEach(async () => {
    for (const sub of ['records', 'files', 'staging', 'resumable']) await mkdir(join(dir, sub), { recursive: true });
  });

  it('keeps intact sessions of uploading images and kills uploading images whose session is missing or broken', async () => {
    const meta = (id: string, size: number): object => ({ imageId: id, size, token: 't', layout: allDataRawLayout(size) });
    const intact = record('uploading');
    await plant(intact, { meta: meta(intact.id, 512), data: 'abcd' });
    const noSession = record('uploading');
    await plant(noSession, {});
    const dataOnly = record('uploading');
    await plant(dataOnly, { data: 'abcd' });
    const tooLong = record('uploading');
    await plant(tooLong, { meta: meta(tooLong.id, 2), data: 'abcd' });
    const unreadable = record('uploading');
    await plant(unreadable, { meta: '{"imageId":', data: 'ab' });
    // A commit cut short after the rename: the data file is already under files/, the meta still here.
    const cutCommit = record('uploading');
    await plant(cutCommit, { meta: meta(cutCommit.id, 4) }, 'abcd');
    await writeFile(join(resumableDir(), `.${intact.id}.json.0123456789ab.tmp`), '{');

    const warnings: string[] = [];
    service = await ImageService.open({ dataDir: dir, maxImageBytes: 1024, warn: (_d, m) => warnings.push(m) });
    expect(service.recovery.resumedUploadIds).toEqual([intact.id]);
    expect(new Set(service.recovery.killedImageIds)).toEqual(new Set([noSession.id, dataOnly.id, tooLong.id, unreadable.id, cutCommit.id]));
    expect(warnings).toEqual(['discarding unreadable resumable upload session']);
    expect(service.resumable.state(admin, intact.id)).toEqual({ offset: 4, size: 512, token: 't' });
    for (const id of service.recovery.killedImageIds) {
      expect(service.get(admin, id).status).toBe('killed');
      expect(JSON.parse(await readFile(join(dir, 'records', `${id}.json`), 'utf8'))).toMatchObject({ status: 'killed' });
    }
    expect(await listed('resumable')).toEqual([`${intact.id}.data`, `${intact.id}.json`]);
    expect(await listed('files')).toEqual([]);
    // A killed image may open a new session (the snapshot path retries).
    expect((await service.resumable.open(admin, noSession.id, allDataRawOpen(512, 'retry'))).created).toBe(true);
  });

  it('kills the image of a previous version\'s session without a layout (a plain upload, retired) and removes its files', async () => {
    const plain = record('uploading');
    await plant(plain, { meta: { imageId: plain.id, size: 10, token: 't' }, data: 'abcd' });
    const layered = record('uploading');
    await plant(layered, { meta: { imageId: layered.id, size: 10, token: 't', layout: allDataRawLayout(10) }, data: 'abcd' });
    const warnings: string[] = [];
    service = await ImageService.open({ dataDir: dir, maxImageBytes: 1024, warn: (_d, m) => warnings.push(m) });
    expect(service.recovery.killedImageIds).toEqual([plain.id]);
    expect(service.recovery.resumedUploadIds).toEqual([layered.id]);
    expect(warnings).toEqual([expect.stringMatching(/without a layout .*its image is killed/)]);
    expect(service.get(admin, plain.id).status).toBe('killed');
    expect(await listed('resumable')).toEqual([`${layered.id}.data`, `${layered.id}.json`]);
    // The sender starts over with a layout.
    expect((await service.resumable.open(admin, plain.id, allDataRawOpen(512, 'again'))).created).toBe(true);
  });

  it('removes sessions of images that are active, killed, deleted, queued or missing, and leaves those images alone', async () => {
    const meta = (id: string): object => ({ imageId: id, size: 4, token: 't', layout: allDataRawLayout(4) });
    const active = { ...record('active'), size: 4, checksum: 'x' };
    await plant(active, { meta: meta(active.id) }, 'abcd');
    const ids = [active.id];
    for (const status of ['killed', 'deleted', 'queued'] as const) {
      const r = record(status);
      ids.push(await plant(r, { meta: meta(r.id), data: 'ab' }));
    }
    const orphan = randomUUID();
    ids.push(await plant(undefined, { id: orphan, meta: meta(orphan), data: 'ab' }));
    await writeFile(join(resumableDir(), 'not-a-session'), 'x');

    service = await ImageService.open({ dataDir: dir, maxImageBytes: 1024 });
    expect(new Set(service.recovery.removedUploadSessionIds)).toEqual(new Set(ids));
    expect(service.recovery.killedImageIds).toEqual([]);
    expect(await listed('resumable')).toEqual([]);
    expect(service.get(admin, active.id).status).toBe('active');
    expect(await listed('files')).toEqual([active.id]);
  });

  it('wipes staging/ at open but never the resumable sessions', async () => {
    const first = await open();
    const id = (await first.create(admin, { name: 'snap' })).id;
    await first.resumable.open(admin, id, allDataRawOpen(512, 't'));
    await first.resumable.append(admin, id, 0, Readable.from([Buffer.from('ab')]));
    await writeFile(join(dir, 'staging', 'leftover.part'), 'x');
    const second = await open();
    expect(second.recovery.removedStagingFiles).toEqual(['leftover.part']);
    expect(second.resumable.state(admin, id).offset).toBe(2);
  });
});
