// One pass of a verify job over the store, as Proxmox Backup Server runs them: every chunk that the
// kept images' indexes name is read and hashed against its name, unless a job found it whole
// within the re-verify age (a file's mtime, chunk-store.ts; on a shared backend the service's
// record, verified-chunks.ts). A chunk is read once per pass however many images name it: the
// first reading stamps it, and the others find it recent. The images that name a damaged chunk are
// reported, so the service can mark them. The pass holds one window of one index's table and one
// batch of chunks at a time, whatever the store's size. The local files are read and hashed in a
// worker thread (chunk-checker.ts).
import { CHUNK_HASH_BYTES, ChunkDamaged, type ChunkStore } from './chunk-store';
import { slotHash, type ImageIndexes } from './image-index';
import type { VerifiedChunks } from './verified-chunks';

type Checks = ReturnType<ChunkStore['startChecks']>;

/** Chunks the worker checks per message: 64 MiB, so progress moves and a stop is heard. */
const BATCH_CHUNKS = 256;

export interface VerifyProgress {
  imagesTotal: number;
  imagesDone: number;
  chunksVerified: number;
  chunksSkipped: number;
  bytesRead: number;
  /** by chunk name */
  damagedChunks: Map<string, ChunkDamaged>;
  damagedImages: Set<string>;
}

export function newVerifyProgress(): VerifyProgress {
  return { imagesTotal: 0, imagesDone: 0, chunksVerified: 0, chunksSkipped: 0, bytesRead: 0, damagedChunks: new Map(), damagedImages: new Set() };
}

export interface VerifyPass {
  indexes: ImageIndexes;
  chunks: ChunkStore;
  /** images whose chunks are checked (active ones); asked again when a chunk is missing, as a delete may have collected it */
  keep: (id: string) => boolean;
  /** ms: chunks a job found whole since then are not read again */
  verifiedSince: number;
  /** a shared backend's record of when jobs found its chunks whole (the local files keep theirs in their mtime) */
  stamps?: VerifiedChunks;
  progress: VerifyProgress;
  /** an image names a damaged chunk (once per image and pass, at its first) */
  onDamaged: (id: string, damage: ChunkDamaged) => Promise<void>;
  /** checked between images: a stopping service ends the pass */
  stopped: () => boolean;
}

export async function verifyChunks(pass: VerifyPass): Promise<void> {
  const ids = (await pass.indexes.ids()).filter(pass.keep);
  pass.progress.imagesTotal = ids.length;
  const checker = pass.chunks.startChecks(pass.stamps);
  try {
    for (const id of ids) {
      if (pass.stopped()) return;
      await verifyImage(pass, checker, id);
      pass.progress.imagesDone++;
    }
  } finally {
    await checker.stop();
  }
}

async function verifyImage(pass: VerifyPass, checker: Checks, id: string): Promise<void> {
  const index = await pass.indexes.open(id);
  if (index === undefined) return;
  try {
    for await (const window of index.chunkTable()) {
      const hashes: Buffer[] = [];
      for (let i = 0; i < window.length / CHUNK_HASH_BYTES; i++) {
        const hash = slotHash(window, i);
        if (hash !== null) hashes.push(hash);
      }
      for (let i = 0; i < hashes.length; i += BATCH_CHUNKS) {
        for (const damage of await checkBatch(pass, checker, hashes.slice(i, i + BATCH_CHUNKS))) {
          // A missing chunk of an image deleted meanwhile is its collection, not damage.
          if (damage.reason === 'missing' && !pass.keep(id)) return;
          pass.progress.damagedChunks.set(damage.chunk, damage);
          if (pass.progress.damagedImages.has(id)) continue;
          pass.progress.damagedImages.add(id);
          await pass.onDamaged(id, damage);
        }
      }
    }
  } finally {
    await index.close();
  }
}

/** The damage among `hashes` (known from earlier in the pass, or found now); the rest is counted. */
async function checkBatch(pass: VerifyPass, checker: Checks, hashes: Buffer[]): Promise<ChunkDamaged[]> {
  const { progress } = pass;
  const damage: ChunkDamaged[] = [];
  const unknown: Buffer[] = [];
  for (const hash of hashes) {
    const known = progress.damagedChunks.get(hash.toString('hex'));
    if (known !== undefined) damage.push(known);
    else unknown.push(hash);
  }
  const results = await checker.check(unknown, pass.verifiedSince);
  for (const [i, result] of results.entries()) {
    const hash = unknown[i] as Buffer;
    if (result.outcome === 'recent') progress.chunksSkipped++;
    else if (result.outcome === 'verified') {
      progress.chunksVerified++;
      progress.bytesRead += result.bytes;
    } else {
      if (result.outcome === 'mismatch') await pass.chunks.quarantine(hash);
      damage.push(new ChunkDamaged(hash.toString('hex'), result.outcome));
    }
  }
  return damage;
}
