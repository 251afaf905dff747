// ImageService.open repairs what a crash can leave behind in the data dir.
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageService, UNAUTHENTICATED_ADMIN } from '../../../src/images/service';
import { type ImageRecord } from '../../../src/images/client';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-recovery-'));
  await mkdir(join(dir, 'records'), { recursive: true });
  await mkdir(join(dir, 'files'), { recursive: true });
  await mkdir(join(dir, 'staging'), { recursive: true });
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

function record(status: ImageRecord['status'], extra: Partial<ImageRecord> = {}): ImageRecord {
  return {
    id: randomUUID(),
    name: status,
    status,
    container_format: 'bare',
    disk_format: 'qcow2',
    visibility: 'private',
    owner: 'p',
    size: null,
    checksum: null,
    os_hash_algo: null,
    os_hash_value: null,
    min_disk: 0,
    min_ram: 0,
    protected: false,
    tags: [],
    properties: {},
    created_at: '2030-01-01T00:00:00.000Z',
    updated_at: '2030-01-01T00:00:00.000Z',
    ...extra,
  };
}

async function plant(r: ImageRecord, data?: string): Promise<void> {
  await writeFile(join(dir, 'records', `${r.id}.json`), JSON.stringify(r));
  if (data !== undefined) await writeFile(join(dir, 'files', r.id), data);
}

it('removes staged partials, kills saving images and active images with missing or short data', async () => {
  const saving = record('saving');
  const savingPublished = record('saving');
  const good = record('active', { size: 5, checksum: 'x' });
  const truncated = record('active', { size: 10 });
  const missing = record('active', { size: 3 });
  const queued = record('queued');
  await plant(saving);
  await plant(savingPublished, 'complete but never recorded active');
  await plant(good, 'hello');
  await plant(truncated, 'short');
  await plant(missing);
  await plant(queued);
  await writeFile(join(dir, 'staging', `${saving.id}.abc.part`), 'partial');

  const service = await ImageService.open({ dataDir: dir, maxImageBytes: 1024 });
  expect(service.recovery.removedStagingFiles).toEqual([`${saving.id}.abc.part`]);
  expect(new Set(service.recovery.killedImageIds)).toEqual(new Set([saving.id, savingPublished.id, truncated.id, missing.id]));
  expect(await readdir(join(dir, 'staging'))).toEqual([]);
  expect((await readdir(join(dir, 'files'))).sort()).toEqual([good.id]);
  for (const id of [saving.id, savingPublished.id, truncated.id, missing.id]) {
    expect(service.get(UNAUTHENTICATED_ADMIN, id).status).toBe('killed');
    // The repair is durable, not just in memory.
    expect(JSON.parse(await readFile(join(dir, 'records', `${id}.json`), 'utf8'))).toMatchObject({ status: 'killed' });
  }
  expect(service.get(UNAUTHENTICATED_ADMIN, good.id).status).toBe('active');
  expect(service.get(UNAUTHENTICATED_ADMIN, queued.id).status).toBe('queued');
});

it('skips unreadable records with a warning and drops interrupted atomic writes', async () => {
  const good = record('queued');
  await plant(good);
  const bad = randomUUID();
  await writeFile(join(dir, 'records', `${bad}.json`), '{"id": truncated');
  await writeFile(join(dir, 'records', `.${good.id}.json.123456.tmp`), '{');
  const warnings: string[] = [];
  const service = await ImageService.open({ dataDir: dir, maxImageBytes: 1024, warn: (_d, m) => warnings.push(m) });
  expect(warnings).toEqual(['skipping unreadable image record']);
  expect(service.list(UNAUTHENTICATED_ADMIN, {}, { limit: 10 }).images.map((r) => r.id)).toEqual([good.id]);
  expect((await readdir(join(dir, 'records'))).filter((f) => f.endsWith('.tmp'))).toEqual([]);
});
