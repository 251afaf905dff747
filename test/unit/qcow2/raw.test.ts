// snapshot_image_format=raw: the guest disk byte for byte, zeros for zero and hole extents unread.

import fc from 'fast-check';
import { emit, planImage, planRaw } from '../../../src/qcow2';
import { buildSource, collect, extentMapArbitrary, readerOf } from './support';

describe('raw output', () => {
  it('emits the source bytes exactly, reading only data extents', async () => {
    await fc.assert(
      fc.asyncProperty(extentMapArbitrary(16384), fc.integer(), fc.integer({ min: 512, max: 300_000 }), async (map, seed, chunkBytes) => {
        const plan = planRaw(map);
        expect(plan.size).toBe(map.virtualSize);
        const source = buildSource(map, seed);
        const reader = readerOf(source);
        const out = await collect(emit(plan, reader.read, { chunkBytes }));
        expect(out.equals(source)).toBe(true);
        const dataBytes = map.extents.filter((e) => e.kind === 'data').reduce((n, e) => n + e.length, 0);
        expect(reader.reads.reduce((n, r) => n + r.length, 0)).toBe(dataBytes);
        for (const r of reader.reads) {
          const inData = map.extents.some((e) => e.kind === 'data' && e.offset <= r.offset && r.offset < e.offset + e.length);
          expect(inData).toBe(true);
        }
      }),
      { numRuns: 40 },
    );
  });

  it('is chosen by planImage and ignores qcow2 options', () => {
    const map = { virtualSize: 1024, extents: [{ offset: 0, length: 1024, kind: 'zero' as const }] };
    expect(planImage(map, { format: 'raw', clusterSize: 4096 })).toMatchObject({ format: 'raw', size: 1024 });
    expect(planImage(map, { format: 'qcow2' })).toMatchObject({ format: 'qcow2' });
  });
});
