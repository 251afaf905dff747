// The snapshot service's write lock and commit mark: while the service holds an image's lock its
// owner cannot write its data or attributes (plain PUT, resumable open/append/commit/discard,
// formats PATCH), yet may delete it; the service's own commit releases the lock and records its
// upload token, which no request can set.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ImageNotFound, SNAPSHOT_WRITE_LOCK } from '../../../src/images/client';
import { ImageService, contextFor, type RequestContext } from '../../../src/images/service';
import { allDataRawOpen } from '../../support/raw-layout';

let dir: string;
let service: ImageService;
const owner: RequestContext = contextFor({ kind: 'project', projectId: 'p1', projectAdmin: false });
const snapshotService: RequestContext = contextFor({ kind: 'service', projectId: 'service' });

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'image-write-lock-'));
  service = await ImageService.open({ dataDir: dir, maxImageBytes: 1024 });
});
afterEach(async () => {
  await service.close();
  await rm(dir, { recursive: true, force: true });
});

const statusOf = async (p: Promise<unknown>): Promise<number | undefined> => ((await p.then(() => undefined, (e: unknown) => e)) as { status?: number } | undefined)?.status;
/** One 512-byte sector of `text` repeated: what a session of SECTOR bytes stages. */
const bytes = (text: string): Readable => Readable.from([Buffer.alloc(SECTOR, text)]);
const SECTOR = 512;

/** As the compute API makes a snapshot image: with the owner's token, locked for the service. */
const lockedImage = async (): Promise<string> => (await service.create(owner, { name: 'snap', image_type: 'snapshot', snapshot_write_lock: SNAPSHOT_WRITE_LOCK })).id;

describe('an image locked for the snapshot service', () => {
  it('refuses every data and attribute write of its owner with 403 and stays queued', async () => {
    const id = await lockedImage();
    expect(await statusOf(service.upload(owner, id, bytes('forged')))).toBe(403);
    expect(await statusOf(service.update(owner, id, { disk_format: 'raw' }))).toBe(403);
    expect(await statusOf(service.resumable.open(owner, id, allDataRawOpen(SECTOR, 'mine')))).toBe(403);
    expect(service.get(owner, id)).toMatchObject({ status: 'queued', snapshot_write_lock: SNAPSHOT_WRITE_LOCK, disk_format: null });

    // A session the service opened: the owner may read it, not write it.
    await service.resumable.open(snapshotService, id, allDataRawOpen(SECTOR, 'export-1'));
    expect(service.resumable.state(owner, id)).toEqual({ offset: 0, size: SECTOR, token: 'export-1' });
    expect(await statusOf(service.resumable.append(owner, id, 0, bytes('forged')))).toBe(403);
    expect(await statusOf(service.resumable.discard(owner, id))).toBe(403);
    await service.resumable.append(snapshotService, id, 0, bytes('by-svc'));
    expect(await statusOf(service.resumable.commit(owner, id, { properties: { snapshot_data_path: 'backup-job' } }))).toBe(403);
    expect(service.get(owner, id).status).toBe('uploading');
  });

  it('takes the service’s commit, which records its upload token and releases the lock', async () => {
    const id = await lockedImage();
    await service.resumable.open(snapshotService, id, allDataRawOpen(SECTOR, 'export-1'));
    await service.resumable.append(snapshotService, id, 0, bytes('by-svc'));
    const active = await service.resumable.commit(snapshotService, id, { properties: { snapshot_export_id: 'export-1' } });
    expect(active).toMatchObject({ status: 'active', size: SECTOR, snapshot_commit: 'export-1', properties: { snapshot_export_id: 'export-1' } });
    expect(active.snapshot_write_lock).toBeUndefined();
  });

  it('lets its owner delete it while it is locked', async () => {
    const id = await lockedImage();
    await service.resumable.open(snapshotService, id, allDataRawOpen(SECTOR, 'export-1'));
    await service.delete(owner, id);
    expect(() => service.get(owner, id)).toThrow(ImageNotFound);
  });
});

describe('the commit mark', () => {
  it('is not left by a commit of the image’s owner, and cannot be set by a request', async () => {
    const id = (await service.create(owner, { name: 'unlocked' })).id;
    await service.resumable.open(owner, id, allDataRawOpen(SECTOR, 'export-1'));
    await service.resumable.append(owner, id, 0, bytes('abc'));
    expect(await statusOf(service.resumable.commit(owner, id, { properties: { snapshot_commit: 'export-1' } }))).toBe(403);
    const active = await service.resumable.commit(owner, id, { properties: { snapshot_export_id: 'export-1' } });
    expect(active.status).toBe('active');
    expect(active.snapshot_commit).toBeUndefined();

    expect(await statusOf(service.create(owner, { name: 'x', snapshot_commit: 'export-1' }))).toBe(403);
    expect(await statusOf(service.create(owner, { name: 'x', snapshot_write_lock: 'owner' }))).toBe(400);
  });
});
