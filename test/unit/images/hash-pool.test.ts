// A hash thread that dies is killed for real here (terminated, or made to throw by a job it cannot
// do): the streams it held fail with a retryable error instead of hanging or failing for ever, and
// the uploads after it, and the interrupted resumable upload itself, go on with a new thread.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { Worker } from 'node:worker_threads';
import { HashPool } from '../../../src/images/store/hash-pool';
import { ImageService, UNAUTHENTICATED_ADMIN as admin } from '../../../src/images/service';
import { ImageServiceUnavailable } from '../../../src/images/client';
import { allDataRawOpen } from '../../support/raw-layout';

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');
const sha512 = (b: Buffer): string => createHash('sha512').update(b).digest('hex');
const failure = async (p: Promise<unknown>): Promise<unknown> => p.then(() => new Error('expected a failure'), (e: unknown) => e);

async function kill(workers: Worker[]): Promise<void> {
  await Promise.all(workers.map((w) => w.terminate()));
}

describe('HashPool', () => {
  let pool: HashPool;
  beforeEach(() => {
    pool = new HashPool();
  });
  afterEach(async () => {
    await pool.stop();
  });

  it('fails the streams of a terminated thread with a retryable error, and hashes new streams on a new thread', async () => {
    const before = pool.open();
    await before.update(Buffer.from('abc'));
    const workers = pool.runningWorkers();
    await kill(workers);
    expect(before.failed).toBe(true);
    const err = await failure(before.digests());
    expect(err).toBeInstanceOf(ImageServiceUnavailable);
    expect((err as ImageServiceUnavailable).retryable).toBe(true);
    before.close();

    const data = randomBytes(300_000);
    const after = pool.open();
    expect(pool.runningWorkers().some((w) => workers.includes(w))).toBe(false);
    await after.update(data);
    expect(after.failed).toBe(false);
    expect(await after.digests()).toEqual({ md5: md5(data), sha512: sha512(data) });
    after.close();
  });

  it('rejects a digest still owed when the thread dies throwing, instead of leaving it pending', async () => {
    const stream = pool.open();
    await stream.update(Buffer.from('abc'));
    const [md5Worker] = pool.runningWorkers();
    if (md5Worker === undefined) throw new Error('no hash thread running');
    // A job the thread cannot do: `update` of a number throws inside the worker, which dies of it.
    const exited = new Promise((resolve) => md5Worker.once('exit', resolve));
    md5Worker.postMessage({ op: 'update', id: 1, chunk: 42 });
    const owed = stream.digests();
    await exited;
    expect(await failure(owed)).toBeInstanceOf(ImageServiceUnavailable);
    stream.close();
    const next = pool.open();
    await next.update(Buffer.from('xyz'));
    expect((await next.digests()).md5).toBe(md5(Buffer.from('xyz')));
    next.close();
  });
});

describe('ImageService after a hash thread died', () => {
  let dir: string;
  let service: ImageService;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'image-hash-crash-'));
    service = await ImageService.open({ dataDir: dir, maxImageBytes: 1024 * 1024 });
  });
  afterEach(async () => {
    await service.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('finishes the interrupted resumable upload, its digests computed by a new thread, and later uploads work', async () => {
    const data = randomBytes(390 * 512);
    const { id } = await service.create(admin, { name: 'snap', disk_format: 'raw', container_format: 'bare' });
    await service.resumable.open(admin, id, allDataRawOpen(data.length, 't'));
    await service.resumable.append(admin, id, 0, Readable.from([data.subarray(0, 100_000)]));
    await kill(service.hashes.runningWorkers());

    await service.resumable.append(admin, id, 100_000, Readable.from([data.subarray(100_000)]));
    expect(await service.resumable.commit(admin, id, {})).toMatchObject({ status: 'active', size: data.length });
    await service.checksums.idle();
    expect(service.get(admin, id)).toMatchObject({ checksum: md5(data), os_hash_value: sha512(data) });

    await kill(service.hashes.runningWorkers());
    const next = await service.create(admin, { name: 'next', disk_format: 'raw', container_format: 'bare' });
    const abc = Buffer.alloc(512, 'abc');
    await service.resumable.open(admin, next.id, allDataRawOpen(abc.length, 't'));
    await service.resumable.append(admin, next.id, 0, Readable.from([abc]));
    expect(await service.resumable.commit(admin, next.id, {})).toMatchObject({ status: 'active' });
    await service.checksums.idle();
    expect(service.get(admin, next.id).checksum).toBe(md5(abc));
  });
});
