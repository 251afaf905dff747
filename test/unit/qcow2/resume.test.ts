// A restart at byte k must give exactly the bytes a full pass gives from k: that is what lets an
// upload resume at the server's committed length instead of starting over.

import fc from 'fast-check';
import { emit, emitFrom, planImage, planQcow2, Qcow2SourceError, renderQcow2Metadata } from '../../../src/qcow2';
import { buildSource, collect, extentMapArbitrary, readerOf } from './support';

describe('emitFrom', () => {
  it('equals the suffix of the full emission from any offset (qcow2 and raw)', async () => {
    await fc.assert(
      fc.asyncProperty(
        extentMapArbitrary(8192),
        fc.integer(),
        fc.constantFrom('qcow2' as const, 'raw' as const),
        fc.constantFrom(4096, 65536),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 512, max: 200_000 }),
        async (map, seed, format, clusterSize, where, chunkBytes) => {
          const plan = planImage(map, { format, clusterSize });
          const source = buildSource(map, seed);
          const alignment = format === 'qcow2' ? clusterSize : undefined;
          const full = await collect(emit(plan, readerOf(source, alignment).read));
          expect(full.length).toBe(plan.size);
          const k = Math.floor(where * plan.size);
          const resumed = await collect(emitFrom(plan, k, readerOf(source, alignment).read, { chunkBytes, maxReadsInFlight: 3 }));
          expect(resumed.equals(full.subarray(k))).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('restarts at region edges and inside clusters', async () => {
    const map = { virtualSize: 4 * 1024 * 1024, extents: [{ offset: 0, length: 1536, kind: 'data' as const }, { offset: 1536, length: 4 * 1024 * 1024 - 1536, kind: 'zero' as const }] };
    const plan = planQcow2(map, { clusterSize: 4096 });
    const source = buildSource(map, 3);
    const full = await collect(emit(plan, readerOf(source, 4096).read));
    const edges = [0, 1, plan.refcountTable.offset, plan.refcountBlocks.offset + 7, plan.l1Table.offset, plan.l2Tables.offset - 1, plan.data.offset, plan.data.offset + 1000, plan.size - 1, plan.size];
    for (const k of edges) {
      expect((await collect(emitFrom(plan, k, readerOf(source, 4096).read))).equals(full.subarray(k))).toBe(true);
    }
  });

  it('computes metadata without reading the guest', async () => {
    const map = { virtualSize: 2 * 1024 * 1024, extents: [{ offset: 0, length: 2 * 1024 * 1024, kind: 'hole' as const }] };
    const plan = planQcow2(map);
    const image = await collect(emit(plan, () => { throw new Error('no data cluster should be read'); }));
    expect(image.length).toBe(plan.size);
    const withData = planQcow2({ virtualSize: map.virtualSize, extents: [{ offset: 0, length: 512, kind: 'data' }, { offset: 512, length: map.virtualSize - 512, kind: 'hole' }] });
    const full = await collect(emit(withData, readerOf(buildSource(map, 1), withData.clusterSize).read));
    for (const [offset, length] of [[0, withData.data.offset], [100, 5000], [withData.l1Table.offset + 3, 17]] as const) {
      expect(renderQcow2Metadata(withData, offset, length)).toEqual(full.subarray(offset, offset + length));
    }
    expect(() => renderQcow2Metadata(withData, withData.data.offset - 1, 2)).toThrow(expect.objectContaining({ code: 'bad-offset' }));
  });

  it('refuses offsets outside the image', async () => {
    const plan = planQcow2({ virtualSize: 512, extents: [{ offset: 0, length: 512, kind: 'hole' }] });
    for (const offset of [-1, plan.size + 1, 1.5]) {
      await expect(collect(emitFrom(plan, offset, () => Buffer.alloc(0)))).rejects.toMatchObject({ name: 'Qcow2LayoutError', code: 'bad-offset' });
    }
    await expect(collect(emitFrom(plan, plan.size, () => Buffer.alloc(0)))).resolves.toHaveLength(0);
  });

  it('fails with a source error when the reader returns the wrong length', async () => {
    const plan = planQcow2({ virtualSize: 65536, extents: [{ offset: 0, length: 65536, kind: 'data' }] });
    await expect(collect(emit(plan, () => Buffer.alloc(100)))).rejects.toBeInstanceOf(Qcow2SourceError);
  });

  it('keeps at most maxReadsInFlight reads outstanding', async () => {
    const size = 8 * 1024 * 1024;
    const map = { virtualSize: size, extents: [{ offset: 0, length: size, kind: 'data' as const }] };
    const plan = planQcow2(map);
    let outstanding = 0;
    let most = 0;
    const read = async (_offset: number, length: number): Promise<Buffer> => {
      outstanding += 1;
      most = Math.max(most, outstanding);
      await new Promise((resolve) => setImmediate(resolve));
      outstanding -= 1;
      return Buffer.alloc(length, 1);
    };
    await collect(emit(plan, read, { chunkBytes: 256 * 1024, maxReadsInFlight: 3 }));
    expect(most).toBe(3);
  });
});
