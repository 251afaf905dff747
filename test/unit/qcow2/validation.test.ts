// Bad maps and options are refused before anything is planned, with an error that says what is wrong.

import { AllocationMap, emit, Extent, planQcow2, planRaw, Qcow2LayoutError } from '../../../src/qcow2';

const d = (offset: number, length: number): Extent => ({ offset, length, kind: 'data' });
const h = (offset: number, length: number): Extent => ({ offset, length, kind: 'hole' });

function refusal(map: AllocationMap): Qcow2LayoutError {
  let caught: unknown;
  try {
    planQcow2(map);
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(Qcow2LayoutError);
  expect(() => planRaw(map)).toThrow(Qcow2LayoutError);
  return caught as Qcow2LayoutError;
}

describe('allocation map validation', () => {
  it.each<[string, AllocationMap, RegExp]>([
    ['a gap', { virtualSize: 4096, extents: [d(0, 1024), h(2048, 2048)] }, /gap \[1024, 2048\)/],
    ['an overlap', { virtualSize: 4096, extents: [d(0, 2048), h(1024, 3072)] }, /overlaps the previous extent/],
    ['unsorted extents', { virtualSize: 4096, extents: [h(2048, 2048), d(0, 2048)] }, /out of order|gap/],
    ['an extent beyond the size', { virtualSize: 4096, extents: [d(0, 4096), h(4096, 512)] }, /beyond the virtual size/],
    ['a short map', { virtualSize: 4096, extents: [d(0, 2048)] }, /\[2048, 4096\) is not covered/],
    ['no extents', { virtualSize: 4096, extents: [] }, /not covered/],
    ['a zero length', { virtualSize: 4096, extents: [d(0, 0), h(0, 4096)] }, /length must be a positive integer/],
    ['a negative length', { virtualSize: 4096, extents: [d(0, -512)] }, /length must be a positive integer/],
    ['a fractional offset', { virtualSize: 4096, extents: [d(0.5, 4096)] }, /offset must be a non-negative integer/],
    ['an unknown kind', { virtualSize: 4096, extents: [{ offset: 0, length: 4096, kind: 'dirty' as never }] }, /unknown kind/],
    ['a size off the sector grid', { virtualSize: 4000, extents: [d(0, 4000)] }, /not a multiple of 512/],
    ['a negative size', { virtualSize: -512, extents: [] }, /non-negative integer/],
  ])('refuses %s', (_what, map, message) => {
    const error = refusal(map);
    expect(error.code).toBe('bad-map');
    expect(error.message).toMatch(message);
    expect(error.retryable).toBe(false);
  });

  it('names the out-of-order extent', () => {
    const error = refusal({ virtualSize: 8192, extents: [d(0, 4096), h(4096, 2048), h(2048, 2048)] });
    expect(error.message).toMatch(/extent 2 .* is out of order/);
  });

  it('refuses a disk beyond 64 TiB', () => {
    const size = 64 * 2 ** 40 + 512;
    expect(refusal({ virtualSize: size, extents: [h(0, size)] }).code).toBe('too-large');
  });

  it('accepts adjacent extents of the same kind and data at odd sector offsets', () => {
    const plan = planQcow2({ virtualSize: 3 * 65536, extents: [d(0, 512), d(512, 1024), h(1536, 65536), d(67072, 3 * 65536 - 67072)] });
    expect(plan.data.clusters).toBe(3);
  });
});

describe('option validation', () => {
  const map: AllocationMap = { virtualSize: 512, extents: [h(0, 512)] };

  it.each([256, 3000, 4 * 1024 * 1024, 0, -65536, 65536.5])('refuses cluster size %p', (clusterSize) => {
    expect(() => planQcow2(map, { clusterSize })).toThrow(expect.objectContaining({ code: 'bad-option', message: expect.stringMatching(/cluster size/) }));
  });

  it.each([0, 3, 12, 128])('refuses refcount bits %p', (refcountBits) => {
    expect(() => planQcow2(map, { refcountBits })).toThrow(expect.objectContaining({ code: 'bad-option', message: expect.stringMatching(/refcount bits/) }));
  });

  it('refuses emit options out of range when the stream starts', async () => {
    const plan = planQcow2(map);
    const drain = async (options: { chunkBytes?: number; maxReadsInFlight?: number }): Promise<void> => {
      for await (const _chunk of emit(plan, () => Buffer.alloc(0), options)) void _chunk;
    };
    await expect(drain({ chunkBytes: 100 })).rejects.toMatchObject({ code: 'bad-option' });
    await expect(drain({ chunkBytes: 128 * 1024 * 1024 })).rejects.toMatchObject({ code: 'bad-option' });
    await expect(drain({ maxReadsInFlight: 0 })).rejects.toMatchObject({ code: 'bad-option' });
  });
});
