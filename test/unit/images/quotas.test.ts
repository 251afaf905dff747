// Per-project quotas with Glance's names: a project at its limit is refused with 413 and Glance's
// text, nothing changes, and another project is not affected.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ImageService, startImageServer, type RequestContext } from '../../../src/images/service';
import { imageLimitsFromEnv } from '../../../src/images/service/image-limits-config';
import { ImageQuotaExceeded, UNLIMITED_QUOTAS, type ImageQuotaLimits, type ProjectQuotaOverrides } from '../../../src/images/service/quotas';
import { allDataRawOpen } from '../../support/raw-layout';

const MiB = 1024 * 1024;
const p1: RequestContext = { projectId: 'p1', isAdmin: false };
const p2: RequestContext = { projectId: 'p2', isAdmin: false };
let dir: string;
let service: ImageService | undefined;

async function open(quotas: Partial<ImageQuotaLimits>, quotaOverrides?: ProjectQuotaOverrides): Promise<ImageService> {
  service = await ImageService.open({ dataDir: dir, maxImageBytes: 16 * MiB, quotas: { ...UNLIMITED_QUOTAS, ...quotas }, quotaOverrides });
  return service;
}
const refusal = async (p: Promise<unknown>): Promise<ImageQuotaExceeded> => {
  const err = await p.then(() => new Error('expected a refusal'), (e: unknown) => e);
  if (!(err instanceof ImageQuotaExceeded)) throw err;
  return err;
};
const bytes = (n: number): Readable => Readable.from([Buffer.alloc(n, 1)]);

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-quotas-'));
});
afterEach(async () => {
  await service?.close();
  service = undefined;
  await rm(dir, { recursive: true, force: true });
});

it('image_count_total: refuses the create past the limit with Glance\'s text, and counts per project', async () => {
  const images = await open({ image_count_total: 2 });
  await images.create(p1, { name: 'a' });
  const killed = await images.create(p1, { name: 'b' });
  const err = await refusal(images.create(p1, { name: 'c' }));
  expect(err.status).toBe(413);
  expect(err.message).toBe(
    'The request returned a 413 Request Entity Too Large. This generally means that rate limiting or a quota threshold was breached.\n\n' +
      'The response body:\nProject p1 is over a limit for [Resource image_count_total is over limit of 2 due to current usage 2 and delta 1]',
  );
  expect(images.list(p1, {}, { limit: 10 }).images).toHaveLength(2);
  await images.create(p2, { name: 'other project' });
  // Deleted images do not count; killed ones do (Glance counts every undeleted image).
  await images.delete(p1, killed.id);
  await images.create(p1, { name: 'c' });
});

it('image_count_uploading: caps the uploads a project runs at once, plain and resumable', async () => {
  const images = await open({ image_count_uploading: 1 });
  const first = await images.create(p1, { name: 'a' });
  const second = await images.create(p1, { name: 'b' });
  await images.resumable.open(p1, first.id, allDataRawOpen(512, 't'));
  const err = await refusal(images.resumable.open(p1, second.id, allDataRawOpen(512, 't')));
  expect(err.message).toMatch(/Resource image_count_uploading is over limit of 1 due to current usage 2 and delta 0\]$/);
  await refusal(images.upload(p1, second.id, bytes(3)));
  expect(images.get(p1, second.id).status).toBe('queued');
  expect((await readdir(join(dir, 'resumable'))).sort()).toEqual([`${first.id}.data`, `${first.id}.json`]);

  const theirs = await images.create(p2, { name: 'theirs' });
  await images.upload(p2, theirs.id, bytes(3));

  await images.resumable.discard(p1, first.id);
  expect((await images.upload(p1, second.id, bytes(3))).status).toBe('active');
});

it('image_size_total: refuses uploads once the active images are over the limit (Glance\'s usage + 0 check)', async () => {
  const images = await open({ image_size_total: 1 });
  const a = await images.create(p1, { name: 'a' });
  const b = await images.create(p1, { name: 'b' });
  const c = await images.create(p1, { name: 'c' });
  await images.upload(p1, a.id, bytes(MiB));
  // Usage 1 MiB is not over 1: one more upload starts (Glance cannot know a stream's size).
  await images.upload(p1, b.id, bytes(MiB));
  const err = await refusal(images.upload(p1, c.id, bytes(10)));
  expect(err.message).toMatch(/Resource image_size_total is over limit of 1 due to current usage 2 and delta 0\]$/);
  await refusal(images.resumable.open(p1, c.id, allDataRawOpen(512, 't')));
  expect(images.get(p1, c.id).status).toBe('queued');
  const theirs = await images.create(p2, { name: 'theirs' });
  await images.upload(p2, theirs.id, bytes(2 * MiB));
});

it('image_stage_total: counts the bytes the project\'s open sessions stage', async () => {
  const images = await open({ image_stage_total: 1 });
  const a = await images.create(p1, { name: 'a' });
  const b = await images.create(p1, { name: 'b' });
  await images.resumable.open(p1, a.id, allDataRawOpen(2 * MiB, 't'));
  const err = await refusal(images.resumable.open(p1, b.id, allDataRawOpen(512, 't')));
  expect(err.message).toMatch(/Resource image_stage_total is over limit of 1 due to current usage 2 and delta 0\]$/);
  expect(images.get(p1, b.id).status).toBe('queued');
});

it('answers 413 with Glance\'s error body over HTTP, to the token\'s project only', async () => {
  const authenticate = (token: string) => (token === 'p1' || token === 'p2' ? { kind: 'project' as const, projectId: token, projectAdmin: false } : null);
  const server = await startImageServer({ port: 0, dataDir: dir, maxImageBytes: MiB, authenticate, quotas: { ...UNLIMITED_QUOTAS, image_count_total: 1 } });
  const create = (token: string) => fetch(`${server.url}/v2/images`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Auth-Token': token }, body: JSON.stringify({ name: 'x' }) });
  try {
    expect((await create('p1')).status).toBe(201);
    const refused = await create('p1');
    expect(refused.status).toBe(413);
    expect(await refused.json()).toEqual({
      error: {
        code: 413,
        title: 'Request Entity Too Large',
        message:
          'The request returned a 413 Request Entity Too Large. This generally means that rate limiting or a quota threshold was breached.\n\n' +
          'The response body:\nProject p1 is over a limit for [Resource image_count_total is over limit of 1 due to current usage 1 and delta 1]',
      },
    });
    expect((await create('p2')).status).toBe(201);
  } finally {
    await server.close();
  }
});

it('reads per-project defaults from the environment: -1 unlimited, anything else refused at start', () => {
  expect(imageLimitsFromEnv({}).quotas).toEqual({ image_count_total: 1000, image_size_total: -1, image_stage_total: -1, image_count_uploading: 16 });
  expect(imageLimitsFromEnv({ SNAP_IMAGE_QUOTA_IMAGE_SIZE_TOTAL: '2048', SNAP_IMAGE_QUOTA_IMAGE_COUNT_TOTAL: '-1' }).quotas).toMatchObject({ image_size_total: 2048, image_count_total: -1 });
  expect(() => imageLimitsFromEnv({ SNAP_IMAGE_QUOTA_IMAGE_COUNT_UPLOADING: '-2' })).toThrow(/SNAP_IMAGE_QUOTA_IMAGE_COUNT_UPLOADING/);
  expect(() => imageLimitsFromEnv({ SNAP_IMAGE_QUOTA_IMAGE_STAGE_TOTAL: 'lots' })).toThrow(/SNAP_IMAGE_QUOTA_IMAGE_STAGE_TOTAL/);
  expect(imageLimitsFromEnv({ SNAP_IMAGE_DELETED_RETENTION_DAYS: '0.5' }).deletedRetentionMs).toBe(12 * 3600_000);
});

it('applies the limits of a named project over the defaults, read from the environment as JSON', async () => {
  const { quotaOverrides } = imageLimitsFromEnv({ SNAP_IMAGE_QUOTA_PROJECT_OVERRIDES: '{"p1": {"image_count_total": 1}, "p2": {"image_count_total": -1}}' });
  const images = await open({ image_count_total: 2 }, quotaOverrides);
  await images.create(p1, { name: 'a' });
  expect((await refusal(images.create(p1, { name: 'b' }))).limit).toBe(1);
  for (let i = 0; i < 3; i += 1) await images.create(p2, { name: `p2-${i}` });
  const p3: RequestContext = { projectId: 'p3', isAdmin: false };
  await images.create(p3, { name: 'a' });
  await images.create(p3, { name: 'b' });
  await refusal(images.create(p3, { name: 'c' }));
  expect(() => imageLimitsFromEnv({ SNAP_IMAGE_QUOTA_PROJECT_OVERRIDES: '{"p1": {"images": 1}}' })).toThrow(/SNAP_IMAGE_QUOTA_PROJECT_OVERRIDES/);
  expect(() => imageLimitsFromEnv({ SNAP_IMAGE_QUOTA_PROJECT_OVERRIDES: 'p1=1' })).toThrow(/SNAP_IMAGE_QUOTA_PROJECT_OVERRIDES/);
});
