// Whole-export maps over a scripted disk: merging, kinds, short server answers, windows.
import { allocationKind, allocationMap, dirtyRanges, NbdClient, NbdUsageError, walkExtents } from '../../../src/nbd';
import { CMD, diskHandler, serve, standardHandshake, startFakeServer, type DiskModel, type FakeServer, type Peer } from './fake-server';

const MiB = 1024 * 1024;
let server: FakeServer | null = null;

afterEach(async () => {
  await server?.close();
  server = null;
});

async function connectDisk(model: DiskModel, contexts: Record<string, number> = { 'base:allocation': 1 }): Promise<{ client: NbdClient; peer: () => Peer }> {
  server = await startFakeServer(async (peer) => {
    await standardHandshake(peer, { size: model.image.length, contexts });
    await serve(peer, diskHandler(peer, model));
  });
  const s = server;
  const client = await NbdClient.connect({ socketPath: s.socketPath, metaContexts: Object.keys(contexts) });
  return { client, peer: () => s.peers[0] as Peer };
}

describe('allocationKind', () => {
  it('maps base:allocation flags: ZERO|HOLE is a hole, ZERO alone is zero, HOLE alone must still be read', () => {
    expect([0, 1, 2, 3].map(allocationKind)).toEqual(['data', 'data', 'zero', 'hole']);
  });
});

describe('allocationMap', () => {
  it('walks the export through short answers and merges adjacent extents of one kind', async () => {
    const allocation: Array<[number, number, number]> = [
      [0, 64 * 1024, 0],
      [64 * 1024, 64 * 1024, 0], // same kind as the previous one: merged
      [128 * 1024, 1 * MiB - 128 * 1024, 3],
      [1 * MiB, 512 * 1024, 2],
      [1.5 * MiB, 512 * 1024, 1], // HOLE without ZERO: data
      [2 * MiB, 2 * MiB, 3],
    ];
    const { client, peer } = await connectDisk({ image: Buffer.alloc(4 * MiB), allocation, maxExtentsPerReply: 2 });
    expect(await allocationMap(client)).toEqual([
      { offset: 0, length: 128 * 1024, kind: 'data' },
      { offset: 128 * 1024, length: MiB - 128 * 1024, kind: 'hole' },
      { offset: MiB, length: 512 * 1024, kind: 'zero' },
      { offset: 1.5 * MiB, length: 512 * 1024, kind: 'data' },
      { offset: 2 * MiB, length: 2 * MiB, kind: 'hole' },
    ]);
    expect(peer().requests.filter((r) => r.command === CMD.blockStatus).length).toBe(3);
    await client.close();
  });

  it('cuts the export into windows walked concurrently, and covers it exactly', async () => {
    const allocation: Array<[number, number, number]> = Array.from({ length: 16 }, (_, i) => [i * 256 * 1024, 256 * 1024, i % 3 === 0 ? 0 : 3]);
    const { client, peer } = await connectDisk({ image: Buffer.alloc(4 * MiB), allocation });
    const map = await allocationMap(client, { windowBytes: MiB, concurrency: 3 });
    expect(map.reduce((n, e) => n + e.length, 0)).toBe(4 * MiB);
    map.forEach((e, i) => i > 0 && expect(e.offset).toBe((map[i - 1]?.offset ?? 0) + (map[i - 1]?.length ?? 0)));
    const starts = peer().requests.map((r) => r.offset);
    expect(starts).toEqual(expect.arrayContaining([0, MiB, 2 * MiB, 3 * MiB]));
    expect(peer().requests.every((r) => r.length <= MiB)).toBe(true);
    expect(await walkExtents(client, 'base:allocation', { offset: MiB, length: 512 * 1024 })).toEqual([{ offset: MiB, length: 512 * 1024, flags: 3 }]);
    await client.close();
  });

  it('needs base:allocation to have been negotiated', async () => {
    const { client } = await connectDisk({ image: Buffer.alloc(MiB) }, { 'qemu:dirty-bitmap:b0': 5 });
    await expect(allocationMap(client)).rejects.toBeInstanceOf(NbdUsageError);
    await client.close();
  });
});

describe('dirtyRanges', () => {
  it('returns the ranges a dirty bitmap marks', async () => {
    const allocation: Array<[number, number, number]> = [
      [0, 64 * 1024, 0],
      [64 * 1024, 128 * 1024, 1],
      [192 * 1024, MiB - 192 * 1024, 0],
    ];
    const { client } = await connectDisk({ image: Buffer.alloc(MiB), allocation, allocationId: 9 }, { 'qemu:dirty-bitmap:b0': 9 });
    expect(await dirtyRanges(client, 'qemu:dirty-bitmap:b0')).toEqual([{ offset: 64 * 1024, length: 128 * 1024 }]);
    await client.close();
  });
});

