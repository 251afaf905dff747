// The logical digest: the same value whether fed sparse pieces at any offsets or every raw byte,
// a value anyone can recompute with plain SHA-256, and a loud error for pieces out of order.
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { LogicalDigest, logicalDigestOf, LOGICAL_DIGEST_BLOCK, Qcow2LayoutError } from '../../../src/qcow2';
import { buildSource, extentMapArbitrary } from './support';

function reference(bytes: Buffer): string {
  const outer = createHash('sha256');
  for (let at = 0; at < bytes.length; at += LOGICAL_DIGEST_BLOCK) outer.update(createHash('sha256').update(bytes.subarray(at, at + LOGICAL_DIGEST_BLOCK)).digest());
  return outer.digest('hex');
}

describe('logical digest', () => {
  it('is SHA-256 over the SHA-256 of each 256 KiB block, the last one short', async () => {
    const bytes = Buffer.alloc(2 * LOGICAL_DIGEST_BLOCK + 4096, 7);
    bytes.fill(0, LOGICAL_DIGEST_BLOCK, 2 * LOGICAL_DIGEST_BLOCK);
    expect(await logicalDigestOf([bytes.subarray(0, 1000), bytes.subarray(1000)], bytes.length)).toBe(reference(bytes));
    expect(new LogicalDigest(0).digest()).toBe(createHash('sha256').digest('hex'));
  });

  it('sparse pieces (data extents only, cut anywhere) give the digest of the whole raw disk', () => {
    fc.assert(
      fc.property(extentMapArbitrary(12_000), fc.integer({ min: 1, max: 3_000_000 }), fc.integer(), (map, cut, seed) => {
        const source = buildSource(map, seed);
        const digest = new LogicalDigest(map.virtualSize);
        for (const extent of map.extents) {
          if (extent.kind !== 'data') continue;
          for (let at = extent.offset; at < extent.offset + extent.length; at += cut) {
            digest.update(at, source.subarray(at, Math.min(at + cut, extent.offset + extent.length)));
          }
        }
        expect(digest.digest()).toBe(reference(source));
      }),
      { numRuns: 60 },
    );
  });

  it('block hashes given whole (a chunk name) give the same digest as the bytes, gaps read as zeros', () => {
    const bytes = Buffer.alloc(3 * LOGICAL_DIGEST_BLOCK + 4096, 0);
    bytes.fill(3, 0, LOGICAL_DIGEST_BLOCK);
    bytes.fill(9, 2 * LOGICAL_DIGEST_BLOCK);
    const digest = new LogicalDigest(bytes.length);
    digest.updateBlockHash(0, createHash('sha256').update(bytes.subarray(0, LOGICAL_DIGEST_BLOCK)).digest());
    digest.update(2 * LOGICAL_DIGEST_BLOCK, bytes.subarray(2 * LOGICAL_DIGEST_BLOCK, 2 * LOGICAL_DIGEST_BLOCK + 10));
    digest.update(2 * LOGICAL_DIGEST_BLOCK + 10, bytes.subarray(2 * LOGICAL_DIGEST_BLOCK + 10, 3 * LOGICAL_DIGEST_BLOCK));
    digest.updateBlockHash(3 * LOGICAL_DIGEST_BLOCK, createHash('sha256').update(bytes.subarray(3 * LOGICAL_DIGEST_BLOCK)).digest());
    expect(digest.digest()).toBe(reference(bytes));
    expect(() => new LogicalDigest(bytes.length).updateBlockHash(4096, Buffer.alloc(32))).toThrow(Qcow2LayoutError);
  });

  it('refuses a piece that goes back or runs past the disk', () => {
    const digest = new LogicalDigest(LOGICAL_DIGEST_BLOCK);
    digest.update(4096, Buffer.alloc(512, 1));
    expect(() => digest.update(0, Buffer.alloc(512))).toThrow(Qcow2LayoutError);
    expect(() => digest.update(LOGICAL_DIGEST_BLOCK - 10, Buffer.alloc(512))).toThrow(/past the disk/);
    expect(() => new LogicalDigest(-1)).toThrow(Qcow2LayoutError);
  });

  it('a raw stream shorter than the disk is an error, not a digest', async () => {
    await expect(logicalDigestOf([Buffer.alloc(10)], 512)).rejects.toThrow(/holds 10 bytes/);
  });
});
