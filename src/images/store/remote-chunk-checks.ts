// A verify job's chunk checks on a shared backend: each chunk object read and hashed against its
// name, a few at a time (an object store's latency, not its bandwidth, bounds one read). An object
// has no time a reader may set, so when a job found a chunk whole is kept in the service's own
// file (verified-chunks.ts): a chunk found whole within the re-verify age, by an earlier job or for
// an earlier image of this one, is not read again. Without that file every job reads every chunk
// once per image that names it.
import { createHash } from 'node:crypto';
import type { ChunkCheck } from './chunk-checker';
import type { RemoteChunks } from './store-backend';
import type { VerifiedChunks } from './verified-chunks';

const PARALLEL_READS = 8;

export function remoteChunkChecks(
  chunks: RemoteChunks,
  stamps: VerifiedChunks | undefined,
  now: () => number = Date.now,
): { check(hashes: Buffer[], verifiedSince: number): Promise<ChunkCheck[]>; stop(): Promise<void> } {
  const read = async (hash: Buffer): Promise<ChunkCheck> => {
    const hex = hash.toString('hex');
    const bytes = await chunks.get(hex);
    if (bytes === undefined) return { outcome: 'missing' };
    if (createHash('sha256').update(bytes).digest('hex') !== hex) return { outcome: 'mismatch' };
    return { outcome: 'verified', bytes: bytes.length };
  };
  return {
    async check(hashes, verifiedSince) {
      const results: ChunkCheck[] = hashes.map(() => ({ outcome: 'recent' }));
      // A chunk named twice in one batch is read at its first place; its others count as recent.
      const firstPlace = new Map<string, number>();
      hashes.forEach((hash, at) => {
        const hex = hash.toString('hex');
        if (!firstPlace.has(hex) && stamps?.verifiedSince(hash, verifiedSince) !== true) firstPlace.set(hex, at);
      });
      const places = [...firstPlace.values()];
      for (let i = 0; i < places.length; i += PARALLEL_READS) {
        await Promise.all(
          places.slice(i, i + PARALLEL_READS).map(async (at) => {
            results[at] = await read(hashes[at] as Buffer);
          }),
        );
      }
      stamps?.stamp(
        places.filter((at) => results[at]?.outcome === 'verified').map((at) => hashes[at] as Buffer),
        now(),
      );
      return results;
    },
    stop: () => Promise.resolve(),
  };
}
