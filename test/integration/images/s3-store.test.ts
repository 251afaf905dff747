// The composing store on an S3 bucket of a real RADOS Gateway (one single-node Ceph and one RGW for
// the file): images composed into the bucket download whole over HTTP, a byte flipped in a stored
// chunk object fails the download and is found by a verify job (the next job reads none of the
// chunks it found whole), and two services on the same
// bucket share its chunks (dedup) while a delete through one frees, after the sweep, its unique
// chunks and leaves the other's; a sweep keeps the chunks the other service re-PUTs after its
// listing or touches between its HEAD and its DELETE (RGW refuses the DELETE, conditional on the
// time). No chunk or index is written under either data dir. A chunk PUT
// the gateway refuses among the several a commit keeps in flight fails the commit: the image is
// killed and no index is written; the same upload commits once the PUT is allowed. The two
// services share the image records too: an image composed through either is listed, shown and
// downloaded through the other, a delete through one makes it 404 on the other, another project's
// token sees none of it, and a damaged record in the bucket is skipped.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CreateBucketCommand, DeleteBucketPolicyCommand, DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutBucketPolicyCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { AuthIdentity } from '../../../src/auth';
import { encodeMap, GlanceHttpClient, ImageConflict, ImageNotFound } from '../../../src/images/client';
import { startImageServer, UNAUTHENTICATED_ADMIN as admin, type RunningImageServer } from '../../../src/images/service';
import { s3StoreBackend } from '../../../src/images/store/s3-store';
import type { SharedStoreBackend } from '../../../src/images/store/store-backend';
import { useRadosGateway } from '../../support/ceph';
import { withSweepPoints, type SweepPoints } from '../../support/sweep-points';
import { composedRawImage, diskWith, stage } from '../../unit/images/composed-fixture';
import type { AllocationMap } from '../../../src/qcow2';

const MiB = 1024 * 1024;
const CHUNK = 256 * 1024;
const gateway = useRadosGateway();

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

const TOKENS: Record<string, AuthIdentity> = {
  'token-admin': { kind: 'cloud-admin', projectId: 'project-ops' },
  'token-a': { kind: 'project', projectId: 'project-a', projectAdmin: false },
  'token-b': { kind: 'project', projectId: 'project-b', projectAdmin: false },
};
const as = (server: RunningImageServer, token: string): GlanceHttpClient => new GlanceHttpClient(server.url, token);

let s3: S3Client;
const opened: { server: RunningImageServer; backend: SharedStoreBackend; dir: string }[] = [];

function client(): S3Client {
  const g = gateway();
  return new S3Client({ endpoint: g.endpoint, region: 'default', forcePathStyle: true, credentials: { accessKeyId: g.accessKeyId, secretAccessKey: g.secretAccessKey } });
}

async function newBucket(): Promise<string> {
  const bucket = `snap-store-${randomBytes(4).toString('hex')}`;
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

/**
 * An image service on its own data dir, its store in `bucket`; a grace of 0: the sweep takes any
 * chunk no index names that was written before the second of the sweep's start (RGW compares whole
 * seconds). `points` are laid over its chunks (test/support/sweep-points.ts).
 */
async function serviceOn(bucket: string, points?: SweepPoints): Promise<RunningImageServer> {
  const g = gateway();
  const backend = s3StoreBackend({ endpoint: g.endpoint, region: 'default', bucket, prefix: '', pathStyle: true, credentials: { accessKeyId: g.accessKeyId, secretAccessKey: g.secretAccessKey } }, 0);
  const dir = await mkdtemp(join(tmpdir(), 's3-store-'));
  const store = points === undefined ? backend : { ...backend, chunks: withSweepPoints(backend.chunks, points) };
  // A records TTL of 0: every read sees the bucket's latest record.
  const server = await startImageServer({ port: 0, dataDir: dir, maxImageBytes: 64 * MiB, sharedStore: store, sharedRecordsTtlMs: 0, authenticate: async (token) => TOKENS[token] ?? null });
  opened.push({ server, backend, dir });
  return server;
}

/** The service's backend as made, without any points laid over it. */
const backendOf = (server: RunningImageServer): SharedStoreBackend => {
  const found = opened.find((o) => o.server === server);
  if (found === undefined) throw new Error('not a service of this test');
  return found.backend;
};

/** Until the clock is in the next whole second: what was written before is then old to a sweep with a grace of 0. */
const intoNextSecond = (): Promise<void> => sleep(1000 - (Date.now() % 1000) + 20);

async function keys(bucket: string, prefix: string): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) if (o.Key !== undefined) out.push(o.Key);
    token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  return out.sort();
}

const chunkKey = (hex: string): string => `chunks/${hex.slice(0, 2)}/${hex}`;

/** Rot in a stored chunk object: its bytes read, one bit flipped, written back under its name. */
async function flipChunkByte(bucket: string, hex: string, at: number): Promise<void> {
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: chunkKey(hex) }));
  const bytes = Buffer.from(await (got.Body as NonNullable<typeof got.Body>).transformToByteArray());
  bytes[at] = (bytes[at] ?? 0) ^ 0x01;
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: chunkKey(hex), Body: bytes }));
}

async function downloaded(server: RunningImageServer, id: string): Promise<{ bytes: Buffer; error?: unknown }> {
  const parts: Buffer[] = [];
  try {
    for await (const b of await as(server, 'token-admin').download(id)) parts.push(b as Buffer);
    return { bytes: Buffer.concat(parts) };
  } catch (error) {
    return { bytes: Buffer.concat(parts), error };
  }
}

/** Names of every chunk of `disk` that holds data (all-zero chunks are not stored). */
const chunksOf = (disk: Buffer, from: number, to: number): string[] => {
  const out: string[] = [];
  for (let at = from; at < to; at += CHUNK) out.push(sha256(disk.subarray(at, at + CHUNK)));
  return out;
};

/** A composed image of project-a's, as the snapshot path makes one (its owner chosen by the service). */
async function projectImage(server: RunningImageServer, disk: Buffer, map: AllocationMap, name: string): Promise<string> {
  const id = (await server.service.create(admin, { name, disk_format: 'raw', container_format: 'bare', owner: 'project-a' })).id;
  await stage(server.service, id, { format: 'raw', map: encodeMap(map) }, disk);
  await server.service.resumable.commit(admin, id, {});
  return id;
}

async function downloadedAs(server: RunningImageServer, token: string, id: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of await as(server, token).download(id)) parts.push(b as Buffer);
  return Buffer.concat(parts);
}

beforeAll(() => {
  s3 = client();
});
afterEach(async () => {
  for (const { server, backend, dir } of opened.splice(0)) {
    await server.close();
    backend.close();
    await rm(dir, { recursive: true, force: true });
  }
});
afterAll(() => s3.destroy());

describe('the composing store on a RADOS Gateway bucket', () => {
  it('stores chunks and indexes as objects, serves them whole, and catches a flipped byte on download and in a verify job', async () => {
    const bucket = await newBucket();
    const a = await serviceOn(bucket);
    const { disk, map } = diskWith([[0, 2 * MiB]], 2 * MiB);
    const id = await composedRawImage(a.service, disk, map, 'on-rgw');
    expect(await keys(bucket, 'indexes/')).toEqual([`indexes/${id}.idx`]);
    expect(await keys(bucket, 'chunks/')).toEqual(chunksOf(disk, 0, 2 * MiB).map(chunkKey).sort());
    const local = opened[0]?.dir as string;
    expect(await readdir(join(local, 'chunks'))).toEqual([]);
    expect(await readdir(join(local, 'indexes'))).toEqual([]);
    expect((await downloaded(a, id)).bytes.equals(disk)).toBe(true);

    // Rot in the third chunk: the download fails short of the whole image, the image is marked, the chunk quarantined.
    const victim = sha256(disk.subarray(2 * CHUNK, 3 * CHUNK));
    await flipChunkByte(bucket, victim, 1000);
    const got = await downloaded(a, id);
    expect(got.error).toBeDefined();
    expect(got.bytes.length).toBeLessThan(disk.length);
    expect(await keys(bucket, 'quarantine/chunks/')).toEqual([expect.stringMatching(new RegExp(`^quarantine/chunks/${victim}\\.\\d+$`))]);
    expect(await keys(bucket, chunkKey(victim))).toEqual([]);
    expect(a.service.get(admin, id).snapshot_damaged).toContain(`chunk ${victim} does not hash to its name`);

    // A verify job reads every chunk object: a second flipped chunk is found and the first one's absence reported.
    const second = sha256(disk.subarray(5 * CHUNK, 6 * CHUNK));
    await flipChunkByte(bucket, second, 7);
    const job = await a.service.verifyJobs.start('request').finished;
    expect(job.state).toBe('damaged');
    expect([...job.damaged_chunks].sort((x, y) => x.chunk.localeCompare(y.chunk))).toEqual(
      [
        { chunk: victim, reason: 'missing' },
        { chunk: second, reason: 'mismatch' },
      ].sort((x, y) => x.chunk.localeCompare(y.chunk)),
    );
    expect(job.damaged_images).toEqual([id]);
    expect(await keys(bucket, chunkKey(second))).toEqual([]);
    expect(job.chunks_verified).toBe(6);

    // The next job reads none of the six it found whole: the service keeps when (an object has no time a reader may set).
    const next = await a.service.verifyJobs.start('request').finished;
    expect(next).toMatchObject({ state: 'damaged', chunks_verified: 0, chunks_skipped: 6, bytes_read: 0 });
    expect(next.damaged_chunks.map((d) => d.reason)).toEqual(['missing', 'missing']);
  });

  it('fails a commit whose chunk PUT the gateway refuses among several in flight: the image killed, no index; the same upload commits once allowed', async () => {
    const bucket = await newBucket();
    const a = await serviceOn(bucket);
    const { disk, map } = diskWith([[0, 4 * MiB]], 4 * MiB);
    const names = chunksOf(disk, 0, 4 * MiB);
    // The tenth of sixteen chunks: PUTs before and after it are in flight when it is refused.
    const refused = names[9] as string;
    const deny = { Version: '2012-10-17', Statement: [{ Effect: 'Deny', Principal: '*', Action: 's3:PutObject', Resource: `arn:aws:s3:::${bucket}/${chunkKey(refused)}` }] };
    await s3.send(new PutBucketPolicyCommand({ Bucket: bucket, Policy: JSON.stringify(deny) }));

    const id = (await a.service.create(admin, { name: 'refused', disk_format: 'raw', container_format: 'bare' })).id;
    await stage(a.service, id, { format: 'raw', map: encodeMap(map) }, disk);
    await expect(a.service.resumable.commit(admin, id, {})).rejects.toThrow(chunkKey(refused));
    expect(a.service.get(admin, id).status).toBe('killed');
    expect(await keys(bucket, 'indexes/')).toEqual([]);
    expect(await keys(bucket, chunkKey(refused))).toEqual([]);

    await s3.send(new DeleteBucketPolicyCommand({ Bucket: bucket }));
    const again = await composedRawImage(a.service, disk, map, 'allowed');
    expect(await keys(bucket, 'indexes/')).toEqual([`indexes/${again}.idx`]);
    expect(await keys(bucket, 'chunks/')).toEqual(names.map(chunkKey).sort());
    expect((await downloaded(a, again)).bytes.equals(disk)).toBe(true);
  });

  it('two services on one bucket: chunks stored through one are reused by the other, and a delete plus the sweep frees only its own chunks', async () => {
    const bucket = await newBucket();
    const a = await serviceOn(bucket);
    const b = await serviceOn(bucket);
    // The first MiB is the same base in both images; the second MiB is each one's own.
    const { disk: diskA, map } = diskWith([[0, 2 * MiB]], 2 * MiB);
    const { disk: diskB } = diskWith([[0, 2 * MiB]], 2 * MiB);
    diskA.copy(diskB, 0, 0, MiB);
    const idA = await composedRawImage(a.service, diskA, map, 'through-a');
    const before = (await keys(bucket, 'chunks/')).length;
    const idB = await composedRawImage(b.service, diskB, map, 'through-b');
    // The bucket gained only B's own MiB: the shared base's chunks are the objects A stored.
    expect((await keys(bucket, 'chunks/')).length - before).toBe(4);
    expect(await keys(bucket, 'indexes/')).toEqual([`indexes/${idA}.idx`, `indexes/${idB}.idx`].sort());

    // B's sweep does not take A's index or chunks (B has no record of A's image).
    const sweptByB = await b.service.collectChunks();
    expect(sweptByB).toMatchObject({ removedChunks: 0, removedIndexes: [] });
    expect((await downloaded(a, idA)).bytes.equals(diskA)).toBe(true);

    // A's delete removes its index at once; its unique chunks go at the next sweep, by either service.
    await a.service.delete(admin, idA);
    expect(await keys(bucket, 'indexes/')).toEqual([`indexes/${idB}.idx`]);
    expect((await keys(bucket, 'chunks/')).length).toBe(12);
    await intoNextSecond();
    const swept = await b.service.collectChunks();
    expect(swept).toMatchObject({ removedChunks: 4, removedBytes: 4 * CHUNK, removedIndexes: [] });
    expect(await keys(bucket, 'chunks/')).toEqual(chunksOf(diskB, 0, 2 * MiB).map(chunkKey).sort());
    expect((await downloaded(b, idB)).bytes.equals(diskB)).toBe(true);
  });

  it("a sweep keeps a chunk another service re-PUTs after its listing or touches between its HEAD and its DELETE, and removes the untouched", async () => {
    const bucket = await newBucket();
    const points: SweepPoints = {};
    const a = await serviceOn(bucket, points);
    const b = await serviceOn(bucket);
    // A's image of 8 chunks, deleted: all 8 are garbage, written before the sweep's second.
    const { disk: diskA, map: mapA } = diskWith([[0, 2 * MiB]], 2 * MiB);
    const idA = await composedRawImage(a.service, diskA, mapA, 'garbage');
    await a.service.delete(admin, idA);
    const names = chunksOf(diskA, 0, 2 * MiB);
    await intoNextSecond();

    // After A's sweep listed them: B composes the first MiB again (its commit PUTs those 4 chunks
    // anew, as a chunk no index of B's names is sent), and another sweep takes the last chunk.
    const { disk: diskB, map: mapB } = diskWith([[0, MiB]], MiB);
    diskA.copy(diskB, 0, 0, MiB);
    let idB = '';
    points.afterListing = async () => {
      idB = await composedRawImage(b.service, diskB, mapB, 'reuses-garbage');
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: chunkKey(names[7] as string) }));
    };
    // The fifth chunk is touched by B (a compose's reuse) after A's HEAD found it old: only the
    // condition the DELETE carries, checked by RGW, can keep it.
    let headBeforeTouch: Date | undefined;
    points.afterHead = async (hex) => {
      if (hex !== names[4] || headBeforeTouch !== undefined) return;
      headBeforeTouch = (await backendOf(b).chunks.stat(hex))?.lastModified;
      await backendOf(b).chunks.touch(hex);
    };

    const swept = await a.service.collectChunks();

    expect(swept).toMatchObject({ removedChunks: 2, removedBytes: 2 * CHUNK, keptChunks: 5, removedIndexes: [] });
    expect(await keys(bucket, 'chunks/')).toEqual(names.slice(0, 5).map(chunkKey).sort());
    // RGW renewed the touched chunk's time, and the sweep had seen it older than its start.
    const touched = await backendOf(b).chunks.stat(names[4] as string);
    expect(touched?.lastModified.getTime()).toBeGreaterThan(headBeforeTouch?.getTime() ?? Infinity);
    expect((await downloaded(b, idB)).bytes.equals(diskB)).toBe(true);
  });

  it('two services on one bucket share image records: listed, shown and downloaded through either, deleted through either, by project', async () => {
    const bucket = await newBucket();
    const a = await serviceOn(bucket);
    const b = await serviceOn(bucket);
    const { disk: diskA, map } = diskWith([[0, MiB]], MiB);
    const { disk: diskB } = diskWith([[0, MiB]], MiB);
    const idA = await projectImage(a, diskA, map, 'through-a');
    const idB = await projectImage(b, diskB, map, 'through-b');
    expect(await keys(bucket, 'records/')).toEqual([`records/${idA}.json`, `records/${idB}.json`].sort());

    for (const [server, id, disk, other] of [
      [b, idA, diskA, a],
      [a, idB, diskB, b],
    ] as const) {
      expect(new Set((await as(server, 'token-a').list()).map((i) => i.id))).toEqual(new Set([idA, idB]));
      expect(await as(server, 'token-a').get(id)).toMatchObject({ id, owner: 'project-a', status: 'active', size: disk.length });
      expect((await downloadedAs(server, 'token-a', id)).equals(disk)).toBe(true);
      // Another project's token sees nothing of either service's images.
      expect(await as(server, 'token-b').list()).toEqual([]);
      await expect(as(server, 'token-b').get(id)).rejects.toBeInstanceOf(ImageNotFound);
      await expect(as(server, 'token-b').download(id)).rejects.toBeInstanceOf(ImageNotFound);
      await expect(as(server, 'token-b').delete(id)).rejects.toBeInstanceOf(ImageNotFound);
      // Only the service that holds the record changes its attributes.
      await expect(as(server, 'token-a').setProperties(id, { k: 'v' })).rejects.toBeInstanceOf(ImageConflict);
      expect((await as(other, 'token-a').get(id)).properties).not.toHaveProperty('k');
    }

    // A damaged record in the bucket is skipped, never served.
    const damaged = '00000000-0000-4000-8000-000000000001';
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `records/${damaged}.json`, Body: '{"id":"not a record"' }));
    await expect(as(a, 'token-admin').get(damaged)).rejects.toBeInstanceOf(ImageNotFound);
    expect((await as(a, 'token-admin').list()).map((i) => i.id).sort()).toEqual([idA, idB].sort());

    // A delete through B of A's image: 404 through both at once, its index gone; A adopts the delete on its next read.
    await as(b, 'token-a').delete(idA);
    await expect(as(a, 'token-a').get(idA)).rejects.toBeInstanceOf(ImageNotFound);
    await expect(as(b, 'token-a').get(idA)).rejects.toBeInstanceOf(ImageNotFound);
    expect(() => a.service.get(admin, idA)).toThrow(ImageNotFound);
    expect(await keys(bucket, 'indexes/')).toEqual([`indexes/${idB}.idx`]);
    expect((await as(a, 'token-a').list()).map((i) => i.id)).toEqual([idB]);
    // A's delete of its own image is seen by B at once.
    await as(a, 'token-a').delete(idB);
    await expect(as(b, 'token-a').download(idB)).rejects.toBeInstanceOf(ImageNotFound);
    expect(await as(b, 'token-a').list()).toEqual([]);

    // RGW honours If-Match on PUT: a write over a version another service replaced since is refused.
    const records = opened[0]?.backend.records;
    const read = await records?.get(idB);
    await records?.put(idB, Buffer.from('{}'));
    expect(await records?.replace(idB, Buffer.from('{}'), read?.etag ?? '')).toBe(false);
  });
});
