// The layout both ends derive a logical upload's staged bytes from: the same pieces, in disk order,
// and a refusal of layouts that do not describe a disk.
import { LAYOUT_ENTRIES_ANY_SERVICE_TAKES, LogicalLayoutSchema, fitLayout, piecesLength, sentPieces, type LogicalLayout } from '../../../src/images/client';

const map = { virtualSize: 100, extents: [[0, 10, 'd'], [10, 20, 'h'], [30, 40, 'd'], [70, 10, 'z'], [80, 20, 'd']] as [number, number, 'd' | 'z' | 'h'][] };

describe('sentPieces', () => {
  it('a full upload sends every data extent, and nothing of zeros or holes', () => {
    const layout: LogicalLayout = { format: 'raw', map };
    expect(sentPieces(layout)).toEqual([{ offset: 0, length: 10 }, { offset: 30, length: 40 }, { offset: 80, length: 20 }]);
    expect(piecesLength(sentPieces(layout))).toBe(70);
  });

  it('an incremental sends the data extents cut to the changed ranges', () => {
    const parent = '4b3f7c8e-35a5-4a8e-9d7f-2f1e4f9d6c11';
    const layout: LogicalLayout = { format: 'raw', map, parent, changed: [[5, 30], [60, 30], [95, 5]] };
    expect(sentPieces(layout)).toEqual([
      { offset: 5, length: 5 },
      { offset: 30, length: 5 },
      { offset: 60, length: 10 },
      { offset: 80, length: 10 },
      { offset: 95, length: 5 },
    ]);
  });
});

describe('LogicalLayoutSchema', () => {
  const parent = '4b3f7c8e-35a5-4a8e-9d7f-2f1e4f9d6c11';
  it.each([
    ['extents that leave a gap', { format: 'raw', map: { virtualSize: 100, extents: [[0, 10, 'd'], [20, 80, 'h']] } }],
    ['extents short of the disk', { format: 'raw', map: { virtualSize: 100, extents: [[0, 10, 'd']] } }],
    ['changed ranges out of order', { format: 'raw', map, parent, changed: [[50, 10], [10, 10]] }],
    ['changed ranges past the disk', { format: 'raw', map, parent, changed: [[90, 20]] }],
    ['a parent without changed ranges', { format: 'raw', map, parent }],
    ['a parent that is not an image id', { format: 'raw', map, parent: '../x', changed: [] }],
  ])('refuses %s', (_what, layout) => {
    expect(LogicalLayoutSchema.safeParse(layout).success).toBe(false);
  });
});

describe('fitLayout', () => {
  /** `n` extents alternating data and hole, `unit` bytes each. */
  const alternating = (n: number, unit: number): LogicalLayout['map'] => ({
    virtualSize: n * unit,
    extents: Array.from({ length: n }, (_, i): [number, number, 'd' | 'h'] => [i * unit, unit, i % 2 === 0 ? 'd' : 'h']),
  });
  /** Whether every byte of `inner`'s pieces is inside one of `outer`'s. */
  const within = (inner: LogicalLayout, outer: LogicalLayout): boolean => {
    const cover = sentPieces(outer);
    let j = 0;
    return sentPieces(inner).every((p) => {
      while (j < cover.length && (cover[j] as { offset: number; length: number }).offset + (cover[j] as { length: number }).length <= p.offset) j++;
      const c = cover[j];
      return c !== undefined && c.offset <= p.offset && c.offset + c.length >= p.offset + p.length;
    });
  };

  it('leaves a layout within the limit as it is', () => {
    const layout: LogicalLayout = { format: 'qcow2', map };
    expect(fitLayout(layout)).toBe(layout);
  });

  it('describes a disk fragmented past what any service takes coarser: a valid layout, within the limit, sending every byte of data', () => {
    const layout: LogicalLayout = { format: 'qcow2', map: alternating(200_000, 4096) };
    const fitted = fitLayout(layout);
    expect(LogicalLayoutSchema.safeParse(fitted).success).toBe(true);
    expect(fitted.map.extents.length).toBeLessThanOrEqual(LAYOUT_ENTRIES_ANY_SERVICE_TAKES);
    expect(within(layout, fitted)).toBe(true);
    expect(fitLayout(layout)).toEqual(fitted);
  });

  it('coarsens an incremental’s changed ranges too, both within the limit together', () => {
    const disk = alternating(100_000, 4096);
    const changed = Array.from({ length: 45_000 }, (_, i): [number, number] => [i * 8192 + 512, 1024]);
    const layout: LogicalLayout = { format: 'raw', map: disk, parent: '4b3f7c8e-35a5-4a8e-9d7f-2f1e4f9d6c11', changed };
    const fitted = fitLayout(layout);
    expect(LogicalLayoutSchema.safeParse(fitted).success).toBe(true);
    expect(fitted.map.extents.length + (fitted.changed?.length ?? 0)).toBeLessThanOrEqual(LAYOUT_ENTRIES_ANY_SERVICE_TAKES);
    expect(within(layout, fitted)).toBe(true);
  });
});
