// bench:verify — a store verify job's speed against this machine's single-core SHA-256: a store of
// composed images of random data (no chunk shared, none of zeros), verified by a job that reads
// every chunk (re-verify age 0), then by one within the age (reads none). The chunks were just
// written, so they are read from the page cache: this measures the job's own cost (hashing and
// per-chunk file work), not the disk's. Target (issue 25): ≥ 0.5× single-core SHA-256.
// Run: npm run bench:verify -- [--mib 1024] [--images 4] [--reps 3]
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { ImageService } from '../src/images/service';
import { composedImage } from './support/composed-image';
import { parseArgs } from './support/args';
import { machineFacts } from './support/machine';
import { median, mib, printTable, ratio, seconds, timed } from './support/table';
import { errorStack } from '../src/contract';

const MiB = 1024 * 1024;
const CHUNK = 256 * 1024;

const args = parseArgs(
  z.object({
    mib: z.coerce.number().int().min(16).default(1024),
    images: z.coerce.number().int().min(1).default(4),
    reps: z.coerce.number().int().min(1).default(3),
  }),
);

/** MiB/s of one core hashing 256 KiB pieces with SHA-256 (the chunk size), median of `reps`. */
function singleCoreSha256(reps: number): number {
  const buf = randomBytes(256 * MiB);
  const runs: number[] = [];
  for (let r = 0; r < reps; r++) {
    const start = process.hrtime.bigint();
    for (let at = 0; at < buf.length; at += CHUNK) createHash('sha256').update(buf.subarray(at, at + CHUNK)).digest();
    runs.push(256 / (Number(process.hrtime.bigint() - start) / 1e9));
  }
  return median(runs);
}

const randomPieces = (bytes: number) =>
  async function* (): AsyncGenerator<Buffer> {
    for (let at = 0; at < bytes; at += 16 * MiB) yield randomBytes(Math.min(16 * MiB, bytes - at));
  };

async function main(): Promise<void> {
  printTable('machine', await machineFacts());
  const sha = singleCoreSha256(args.reps);
  const dir = await mkdtemp(join(tmpdir(), 'bench-verify-'));
  try {
    const perImage = Math.floor((args.mib * MiB) / args.images / CHUNK) * CHUNK;
    const setup = await ImageService.open({ dataDir: dir, maxImageBytes: 64 * 1024 * MiB, verifyAfterCommit: false });
    for (let i = 0; i < args.images; i++) await composedImage(setup, perImage, randomPieces(perImage));
    await setup.close();

    const full: number[] = [];
    let bytes = 0;
    for (let r = 0; r < args.reps; r++) {
      const service = await ImageService.open({ dataDir: dir, maxImageBytes: 64 * 1024 * MiB, verifyJobs: { reverifyAfterMs: 0 } });
      const { ms, value } = await timed(() => service.verifyJobs.start('request').finished);
      await service.close();
      if (value.state !== 'ok') throw new Error(`the verify job ended ${value.state}: ${JSON.stringify(value)}`);
      bytes = value.bytes_read;
      full.push(ms);
    }
    const service = await ImageService.open({ dataDir: dir, maxImageBytes: 64 * 1024 * MiB, verifyJobs: { reverifyAfterMs: 3600_000 } });
    const recent = await timed(() => service.verifyJobs.start('request').finished);
    await service.close();

    const speed = bytes / MiB / (median(full) / 1000);
    printTable(`verify job: ${args.images} images, ${mib(bytes)} MiB of chunks, median of ${args.reps}`, [
      { case: 'single-core SHA-256, 256 KiB pieces (the floor)', seconds: '-', 'MiB/s': sha.toFixed(0), 'vs SHA-256': '1.00×', target: '' },
      { case: 'verify job, every chunk read (age 0)', seconds: seconds(median(full)), 'MiB/s': speed.toFixed(0), 'vs SHA-256': ratio(speed, sha), target: '≥ 0.50×' },
      { case: 'verify job within the re-verify age (chunks skipped)', seconds: seconds(recent.ms), 'MiB/s': '-', 'vs SHA-256': '-', target: `${recent.value.chunks_skipped} chunks skipped, ${recent.value.chunks_verified} read` },
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

void main().catch((err: unknown) => {
  process.stderr.write(`${errorStack(err)}\n`);
  process.exitCode = 1;
});
