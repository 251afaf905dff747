// The layout both ends derive a logical upload's staged bytes from: the same pieces, in disk order,
// and a refusal of layouts that do not describe a disk.
import { LogicalLayoutSchema, piecesLength, sentPieces, type LogicalLayout } from '../../../src/images';

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
