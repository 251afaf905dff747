// What the plan decides before any byte: sizes, which clusters exist, and that neither depends on
// how large the virtual disk is, only on how much of it holds data.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { AllocationMap, emit, Extent, planQcow2, qcow2DataPlacements, qcow2HostOffset, renderQcow2Metadata } from '../../../src/qcow2';
import { decodeQcow2 } from './decode';
import { collect, emitToFile, extentMapArbitrary, qemuImg } from './support';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;

/** data extents at the given offsets, holes between them, over a disk of virtualSize */
function sparseMap(virtualSize: number, data: ReadonlyArray<readonly [number, number]>): AllocationMap {
  const extents: Extent[] = [];
  let at = 0;
  for (const [offset, length] of data) {
    if (offset > at) extents.push({ offset: at, length: offset - at, kind: 'hole' });
    extents.push({ offset, length, kind: 'data' });
    at = offset + length;
  }
  if (at < virtualSize) extents.push({ offset: at, length: virtualSize - at, kind: 'hole' });
  return { virtualSize, extents };
}

describe('planQcow2', () => {
  it('lays regions out in order, cluster-aligned, and sizes the file exactly', () => {
    const plan = planQcow2(sparseMap(10 * MiB, [[0, 512], [3 * MiB + 4096, 200 * KiB]]));
    const regions = [plan.header, plan.refcountTable, plan.refcountBlocks, plan.l1Table, plan.l2Tables, plan.data];
    let next = 0;
    for (const region of regions) {
      expect(region.offset).toBe(next);
      next += region.clusters * plan.clusterSize;
    }
    expect(plan.size).toBe(next);
    // 1 cluster for the first extent, 200 KiB from 3 MiB + 4 KiB touches 4 clusters (48..51)
    expect(plan.data.clusters).toBe(5);
    expect(plan.l2Tables.clusters).toBe(1);
    expect(plan.header.clusters + plan.refcountTable.clusters + plan.refcountBlocks.clusters + plan.l1Table.clusters).toBe(4);
  });

  it('allocates nothing for zero and hole extents: the image grows only with data clusters', () => {
    fc.assert(
      fc.property(extentMapArbitrary(16384), fc.constantFrom(4096, 65536), (map, clusterSize) => {
        const plan = planQcow2(map, { clusterSize });
        const touched = new Set<number>();
        for (const e of map.extents) {
          if (e.kind !== 'data') continue;
          for (let c = Math.floor(e.offset / clusterSize); c * clusterSize < e.offset + e.length; c++) touched.add(c);
        }
        expect(plan.data.clusters).toBe(touched.size);
        const asZeros = planQcow2({ virtualSize: map.virtualSize, extents: map.extents.map((e) => ({ ...e, kind: e.kind === 'data' ? 'data' : 'zero' })) }, { clusterSize });
        const asHoles = planQcow2({ virtualSize: map.virtualSize, extents: map.extents.map((e) => ({ ...e, kind: e.kind === 'data' ? 'data' : 'hole' })) }, { clusterSize });
        expect(asZeros.size).toBe(plan.size);
        expect(asHoles.size).toBe(plan.size);
        for (const c of touched) expect(qcow2HostOffset(plan, c * clusterSize)).not.toBeNull();
      }),
      { numRuns: 100 },
    );
  });

  it('sizes refcount structures to cover every host cluster, themselves included, and no more', () => {
    fc.assert(
      fc.property(extentMapArbitrary(16384), fc.constantFrom(512, 1024, 4096), fc.constantFrom(1, 4, 16, 64), (map, clusterSize, refcountBits) => {
        const plan = planQcow2(map, { clusterSize, refcountBits });
        const perBlock = (clusterSize * 8) / refcountBits;
        expect(plan.refcountBlocks.clusters).toBe(Math.ceil(plan.hostClusters / perBlock));
        expect(plan.refcountTable.clusters).toBe(Math.ceil(plan.refcountBlocks.clusters / (clusterSize / 8)));
        expect(plan.size).toBe(plan.hostClusters * clusterSize);
      }),
      { numRuns: 100 },
    );
  });

  it('writes an all-hole or all-zero disk as metadata alone, whatever its size', () => {
    for (const kind of ['hole', 'zero'] as const) {
      const small = planQcow2({ virtualSize: GiB, extents: [{ offset: 0, length: GiB, kind }] });
      expect(small.data.clusters).toBe(0);
      expect(small.l2Tables.clusters).toBe(0);
      expect(small.size).toBe(4 * 64 * KiB); // header, refcount table, one refcount block, L1
    }
  });

  it('places data clusters in guest order right after the L2 tables', () => {
    const plan = planQcow2(sparseMap(64 * MiB, [[MiB, 100], [MiB + 200, 100], [40 * MiB, 3 * 64 * KiB]]));
    expect([...qcow2DataPlacements(plan)]).toEqual([
      { guestOffset: MiB, hostOffset: plan.data.offset, length: 64 * KiB },
      { guestOffset: 40 * MiB, hostOffset: plan.data.offset + 64 * KiB, length: 3 * 64 * KiB },
    ]);
    expect(qcow2HostOffset(plan, 40 * MiB + 64 * KiB + 5)).toBe(plan.data.offset + 2 * 64 * KiB + 5);
    expect(qcow2HostOffset(plan, 2 * MiB)).toBeNull();
  });

  it('plans a 4 TiB disk from runs, not per-cluster arrays', () => {
    const data: Array<[number, number]> = [];
    for (let i = 0; i < 1000; i++) data.push([i * 4 * GiB + 12345 * 512, 3 * MiB + 512]);
    const map = sparseMap(4 * TiB, data);
    const before = process.memoryUsage().heapUsed;
    const plan = planQcow2(map);
    const grown = process.memoryUsage().heapUsed - before;
    // 64 Mi guest clusters: a per-cluster array would be hundreds of MiB
    expect(grown).toBeLessThan(16 * MiB);
    expect(plan.dataClusters.count).toBe(1000);
    expect(plan.dataClusters.starts.length).toBe(1000);
    expect(plan.l2TableIndices.count).toBe(1000);
    expect(plan.l1Entries).toBe((4 * TiB) / (64 * KiB) / 8192);
    // 3 MiB + 512 from 0.45 of the way into a cluster reaches 0.46 into the 49th
    expect(plan.data.clusters).toBe(1000 * 49);
    // 50 005 host clusters need two refcount blocks of 32 768 entries
    expect(plan.refcountBlocks.clusters).toBe(2);
    expect(plan.size).toBe((1 + 1 + 2 + 1 + 1000 + 49_000) * 64 * KiB);
  });

  it('accepts 64 TiB at 64 KiB clusters and refuses what QEMU could not open', () => {
    const whole = (size: number): AllocationMap => ({ virtualSize: size, extents: [{ offset: 0, length: size, kind: 'hole' }] });
    expect(planQcow2(whole(64 * TiB)).l1Entries).toBe(128 * 1024);
    expect(() => planQcow2(whole(64 * TiB + 512))).toThrow(expect.objectContaining({ name: 'Qcow2LayoutError', code: 'too-large' }));
    // 512-byte clusters: QEMU's 32 MiB L1 limit stops at 128 GiB
    expect(() => planQcow2(whole(256 * GiB), { clusterSize: 512 })).toThrow(/L1 table/);
    expect(planQcow2(whole(128 * GiB), { clusterSize: 512 }).l1Entries * 8).toBe(32 * MiB);
  });
});

describe('a 2 TiB image with a few data extents', () => {
  const map = sparseMap(2 * TiB, [[0, 4096], [700 * GiB + 512, 5 * MiB], [2 * TiB - 64 * KiB - 1024, 1024]]);
  const plan = planQcow2(map);
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qcow2-large-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  // A 2 TiB source buffer is out of the question; the reader makes the bytes up from the offset.
  const pattern = (offset: number, length: number): Buffer => {
    const b = Buffer.alloc(length);
    for (let i = 0; i < length; i += 512) b.writeUInt32BE(((offset + i) / 512) % 2 ** 32, i);
    return b;
  };

  it('decodes to exactly the planned clusters, with consistent refcounts', async () => {
    const image = await collect(emit(plan, pattern));
    expect(image.length).toBe(plan.size);
    const decoded = decodeQcow2(image);
    expect(decoded.problems).toEqual([]);
    expect(decoded).toMatchObject({ version: 3, clusterSize: 64 * KiB, virtualSize: 2 * TiB, refcountBits: 16, headerLength: 112 });
    expect(decoded.features).toEqual({ incompatible: 0n, compatible: 0n, autoclear: 0n });
    const expected = new Map<number, number>();
    for (const p of qcow2DataPlacements(plan)) {
      for (let c = 0; c < p.length / plan.clusterSize; c++) expected.set(p.guestOffset / plan.clusterSize + c, p.hostOffset + c * plan.clusterSize);
    }
    expect(decoded.mapping).toEqual(expected);
    const firstRun = [...qcow2DataPlacements(plan)][1];
    expect(firstRun).toBeDefined();
    if (firstRun !== undefined) expect(image.subarray(firstRun.hostOffset, firstRun.hostOffset + 4096)).toEqual(pattern(firstRun.guestOffset, 4096));
    expect(renderQcow2Metadata(plan, 0, plan.data.offset)).toEqual(image.subarray(0, plan.data.offset));
  });

  it('passes qemu-img check and maps data where the plan says', async () => {
    const path = join(dir, 'large.qcow2');
    await emitToFile(plan, pattern, path);
    const check = await qemuImg(['check', '-f', 'qcow2', path]);
    expect({ code: check.code, stderr: check.stderr }).toEqual({ code: 0, stderr: '' });
    const mapped = JSON.parse((await qemuImg(['map', '-f', 'qcow2', '--output=json', path])).stdout) as Array<{ start: number; length: number; data: boolean; offset?: number }>;
    const withData = mapped.filter((m) => m.data).map((m) => ({ guestOffset: m.start, hostOffset: m.offset }));
    expect(withData).toEqual([...qcow2DataPlacements(plan)].map((p) => ({ guestOffset: p.guestOffset, hostOffset: p.hostOffset })));
  });

  it('reads whole clusters only', async () => {
    const reads: Array<[number, number]> = [];
    await collect(emit(plan, (o, l) => (reads.push([o, l]), pattern(o, l)), { chunkBytes: 256 * KiB }));
    for (const [o, l] of reads) {
      expect(o % plan.clusterSize).toBe(0);
      expect(l % plan.clusterSize).toBe(0);
      expect(l).toBeLessThanOrEqual(256 * KiB);
    }
    expect(reads.reduce((n, [, l]) => n + l, 0)).toBe(plan.data.clusters * plan.clusterSize);
  });
});
