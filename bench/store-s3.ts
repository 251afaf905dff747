// bench:s3 — the composing store on an S3 bucket of a RADOS Gateway against the local one, side by
// side: the same image of random data (no chunk shared, none of zeros) uploaded (a logical upload
// and its commit, which writes the chunks and the index) and downloaded whole, and another sent as
// the host's named upload sends one (each chunk PUT to the service, 4 at a time, then the names
// committed), through each backend, verify-after-commit off in both (it would add one read of every
// new chunk to each). The
// RGW runs on a single-node Ceph with one OSD on a sparse file in the same machine's temp dir.
// The cost named: requests per chunk (a commit PUTs each new chunk unasked, --puts of them in
// flight; a download one GET per chunk, read ahead) and one request's latency, measured here for a
// 256 KiB PUT and GET. Each --puts value is its own row, side by side in one run.
// Run: npm run bench:s3 -- [--mib 256] [--reps 3] [--puts 1,8]
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { ImageService, UNAUTHENTICATED_ADMIN as admin } from '../src/images/service';
import { s3StoreBackend } from '../src/images/store/s3-store';
import { S3Objects, type S3Location } from '../src/images/store/s3-objects';
import { DEFAULT_CHUNK_PUTS_IN_FLIGHT, MAX_CHUNK_PUTS_IN_FLIGHT, type SharedStoreBackend } from '../src/images/store/store-backend';
import { startCephCluster } from '../src/testing/ceph/ceph-cluster';
import { startRadosGateway } from '../src/testing/ceph/rados-gateway';
import { composedImage } from './support/composed-image';
import { namedImage } from './support/named-image';
import { parseArgs } from './support/args';
import { machineFacts } from './support/machine';
import { median, printTable, ratio, seconds, timed } from './support/table';

const MiB = 1024 * 1024;
const CHUNK = 256 * 1024;

const args = parseArgs(
  z.object({
    mib: z.coerce.number().int().min(16).default(256),
    reps: z.coerce.number().int().min(1).default(3),
    /** chunk PUTs a commit keeps in flight, one S3 row per value */
    puts: z
      .string()
      .default(String(DEFAULT_CHUNK_PUTS_IN_FLIGHT))
      .transform((list) => list.split(',').map(Number))
      .pipe(z.array(z.number().int().min(1).max(MAX_CHUNK_PUTS_IN_FLIGHT)).min(1)),
  }),
);

async function download(service: ImageService, id: string): Promise<number> {
  const { data } = await service.openData(admin, id);
  let bytes = 0;
  for await (const b of data ?? []) bytes += (b as Buffer).length;
  return bytes;
}

/** Median ms of upload and download of a fresh image, and of a named upload of another, per rep, on a service over `shared` (or the local files). */
async function measure(shared: () => SharedStoreBackend | undefined): Promise<{ upload: number; download: number; named: number }> {
  const uploads: number[] = [];
  const downloads: number[] = [];
  const nameds: number[] = [];
  const bytes = args.mib * MiB;
  for (let r = 0; r < args.reps; r++) {
    const dir = await mkdtemp(join(tmpdir(), 'bench-s3-'));
    const backend = shared();
    try {
      const service = await ImageService.open({ dataDir: dir, maxImageBytes: 64 * 1024 * MiB, verifyAfterCommit: false, sharedStore: backend });
      const data = randomBytes(bytes);
      const up = await timed(() => composedImage(service, bytes, async function* () {
        for (let at = 0; at < bytes; at += 16 * MiB) yield data.subarray(at, at + 16 * MiB);
      }));
      // The checksums after activation read the image once more: not timed with the download.
      await service.checksums.idle();
      const down = await timed(() => download(service, up.value));
      if (down.value !== bytes) throw new Error(`downloaded ${down.value} bytes of ${bytes}`);
      uploads.push(up.ms);
      downloads.push(down.ms);
      nameds.push((await timed(() => namedImage(service, randomBytes(bytes)))).ms);
      await service.close();
    } finally {
      backend?.close();
      await rm(dir, { recursive: true, force: true });
    }
  }
  return { upload: median(uploads), download: median(downloads), named: median(nameds) };
}

/** Median ms of one 256 KiB PUT and one GET of it, 50 each. */
async function latency(location: S3Location): Promise<{ put: number; get: number }> {
  const objects = new S3Objects(location);
  const puts: number[] = [];
  const gets: number[] = [];
  try {
    for (let i = 0; i < 50; i++) {
      const body = randomBytes(CHUNK);
      puts.push((await timed(() => objects.put(`latency/${i}`, body))).ms);
      gets.push((await timed(() => objects.get(`latency/${i}`, CHUNK))).ms);
      await objects.remove(`latency/${i}`);
    }
  } finally {
    objects.close();
  }
  return { put: median(puts), get: median(gets) };
}

async function main(): Promise<void> {
  printTable('machine', await machineFacts());
  const cluster = await startCephCluster();
  try {
    const gateway = await startRadosGateway(cluster);
    try {
      const location: S3Location = { endpoint: gateway.endpoint, region: 'default', bucket: 'bench-store', prefix: '', pathStyle: true, credentials: { accessKeyId: gateway.accessKeyId, secretAccessKey: gateway.secretAccessKey } };
      const s3 = new S3Client({ endpoint: location.endpoint, region: location.region, forcePathStyle: true, credentials: location.credentials });
      await s3.send(new CreateBucketCommand({ Bucket: location.bucket }));
      s3.destroy();
      let run = 0;
      const local = await measure(() => undefined);
      const onS3: { puts: number; upload: number; download: number; named: number }[] = [];
      // Each rep in its own prefix: nothing of the last rep is deduplicated.
      for (const puts of args.puts) onS3.push({ puts, ...(await measure(() => s3StoreBackend({ ...location, prefix: `rep-${run++}/` }, 24 * 3600_000, puts))) });
      const rtt = await latency(location);
      const chunks = (args.mib * MiB) / CHUNK;
      const rate = (ms: number): string => (args.mib / (ms / 1000)).toFixed(0);
      const row = (what: string, ms: number, localMs: number, requests: string) => ({ case: what, seconds: seconds(ms), 'MiB/s': rate(ms), 'vs local': ratio(ms, localMs), requests });
      printTable(`store backends: ${args.mib} MiB image of random data (${chunks} chunks), median of ${args.reps}; Ceph up in ${seconds(cluster.startMs)} s, RGW ${seconds(gateway.startMs)} s later`, [
        row('upload + commit, local files', local.upload, local.upload, '-'),
        ...onS3.map((m) => row(`upload + commit, S3 on RGW, ${m.puts} PUTs in flight`, m.upload, local.upload, `${chunks + 1} (PUT per chunk, PUT of the index)`)),
        row('named upload (4 chunk PUTs in flight) + commit, local files', local.named, local.named, '-'),
        ...onS3.map((m) => row(`named upload + commit, S3 on RGW, ${m.puts} PUTs in flight`, m.named, local.named, `${chunks} PUTs of chunks, ${chunks} HEADs at commit, PUT of the index`)),
        row('download, local files', local.download, local.download, '-'),
        ...onS3.map((m) => row(`download, S3 on RGW (after ${m.puts} in flight)`, m.download, local.download, `${chunks} GETs of chunks (about 32 in flight), HEAD + 2 ranged GETs of the index's header, 1 of its table`)),
        { case: 'one 256 KiB PUT / GET on RGW', seconds: `${rtt.put.toFixed(1)} ms / ${rtt.get.toFixed(1)} ms`, 'MiB/s': '-', 'vs local': '-', requests: 'median of 50' },
      ]);
    } finally {
      await gateway.stop();
    }
  } finally {
    await cluster.stop();
  }
}

void main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
