// A download's chunk table read a window at a time: reads in order ask the index once per window
// of 4,096 slots, each read gets exactly its slots, and a read larger than a window or behind the
// window held is asked of the index directly.
import { CHUNK_HASH_BYTES } from '../../../src/images/store/chunk-store';
import { windowedSlots } from '../../../src/images/store/served-image';

const SLOTS = 10_000;
/** A table whose slot i holds i in its first four bytes, cut at its end as an index's is. */
function table(): { asked: [number, number][]; chunkHashes(first: number, count: number): Promise<Buffer> } {
  const asked: [number, number][] = [];
  return {
    asked,
    async chunkHashes(first, count) {
      asked.push([first, count]);
      const n = Math.max(0, Math.min(count, SLOTS - first));
      const out = Buffer.alloc(n * CHUNK_HASH_BYTES);
      for (let i = 0; i < n; i++) out.writeUInt32BE(first + i, i * CHUNK_HASH_BYTES);
      return out;
    },
  };
}
const slotsIn = (b: Buffer): number[] => Array.from({ length: b.length / CHUNK_HASH_BYTES }, (_, i) => b.readUInt32BE(i * CHUNK_HASH_BYTES));

describe('a chunk table read a window at a time', () => {
  it('asks the index once per window for reads in order, and gives each read its own slots', async () => {
    const index = table();
    const slots = windowedSlots(index);
    const reads = [];
    for (let first = 0; first < SLOTS; first += 8) reads.push(slots(first, 8));
    const got = await Promise.all(reads);
    expect(index.asked).toEqual([
      [0, 4096],
      [4096, 4096],
      [8192, 4096],
    ]);
    expect(got.flatMap((b) => slotsIn(Buffer.from(b)))).toEqual(Array.from({ length: SLOTS }, (_, i) => i));
  });

  it('asks the index directly for a read larger than a window, and starts a new window behind the one held', async () => {
    const index = table();
    const slots = windowedSlots(index);
    expect(slotsIn(Buffer.from(await slots(0, 5000)))).toHaveLength(5000);
    expect(slotsIn(Buffer.from(await slots(6000, 2)))).toEqual([6000, 6001]);
    expect(slotsIn(Buffer.from(await slots(10, 2)))).toEqual([10, 11]);
    expect(index.asked).toEqual([
      [0, 5000],
      [6000, 4096],
      [10, 4096],
    ]);
  });
});
