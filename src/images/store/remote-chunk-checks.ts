// A verify job's chunk checks on a shared backend: each chunk object read and hashed against its
// name, a few at a time (an object store's latency, not its bandwidth, bounds one read). An object
// has no time a reader may set, so no chunk counts as recently verified: every job reads them all.
import { createHash } from 'node:crypto';
import type { ChunkCheck } from './chunk-checker';
import type { RemoteChunks } from './store-backend';

const PARALLEL_READS = 8;

export function remoteChunkChecks(chunks: RemoteChunks): { check(hashes: Buffer[], verifiedSince: number): Promise<ChunkCheck[]>; stop(): Promise<void> } {
  const checkOne = async (hash: Buffer): Promise<ChunkCheck> => {
    const hex = hash.toString('hex');
    const bytes = await chunks.get(hex);
    if (bytes === undefined) return { outcome: 'missing' };
    if (createHash('sha256').update(bytes).digest('hex') !== hex) return { outcome: 'mismatch' };
    return { outcome: 'verified', bytes: bytes.length };
  };
  return {
    async check(hashes) {
      const out: ChunkCheck[] = [];
      for (let i = 0; i < hashes.length; i += PARALLEL_READS) out.push(...(await Promise.all(hashes.slice(i, i + PARALLEL_READS).map(checkOne))));
      return out;
    },
    stop: () => Promise.resolve(),
  };
}
