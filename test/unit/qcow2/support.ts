// Shared by the qcow2 tests: random extent maps, a raw source that follows them, a guest reader
// that checks the writer's read contract, and qemu-img run through execFile.

import { execFile } from 'node:child_process';
import { open } from 'node:fs/promises';
import fc from 'fast-check';
import { AllocationMap, emitFrom, EmitOptions, Extent, ExtentKind, ImagePlan, ReadGuest } from '../../../src/qcow2';

export const SECTOR = 512;

/** Maps of up to maxSectors 512-byte sectors, extents of every kind at odd offsets and lengths. */
export function extentMapArbitrary(maxSectors: number): fc.Arbitrary<AllocationMap> {
  const piece = fc.record({
    sectors: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 16384 })),
    kind: fc.constantFrom<ExtentKind>('data', 'zero', 'hole'),
  });
  return fc.array(piece, { maxLength: 16 }).map((pieces) => {
    const extents: Extent[] = [];
    let offset = 0;
    for (const p of pieces) {
      const sectors = Math.min(p.sectors, maxSectors - offset / SECTOR);
      if (sectors <= 0) break;
      extents.push({ offset, length: sectors * SECTOR, kind: p.kind });
      offset += sectors * SECTOR;
    }
    return { virtualSize: offset, extents };
  });
}

/** The guest disk as bytes: seeded pseudo-random data in data extents, zeros elsewhere. */
export function buildSource(map: AllocationMap, seed: number): Buffer {
  const source = Buffer.alloc(map.virtualSize);
  let state = seed >>> 0 || 0x9e3779b9;
  for (const extent of map.extents) {
    if (extent.kind !== 'data') continue;
    for (let i = extent.offset; i < extent.offset + extent.length; i += 4) {
      // xorshift32: fast, deterministic, and never all-zero, so data clusters really hold data
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      source.writeUInt32LE(state >>> 0, i);
    }
  }
  return source;
}

export interface RecordingReader {
  readonly read: ReadGuest;
  readonly reads: Array<{ offset: number; length: number }>;
}

/** Reads from `source`, failing the test if a qcow2 read is not whole clusters within the disk. */
export function readerOf(source: Buffer, alignment?: number): RecordingReader {
  const reads: Array<{ offset: number; length: number }> = [];
  const read: ReadGuest = async (offset, length) => {
    reads.push({ offset, length });
    if (offset < 0 || length <= 0 || offset + length > source.length) throw new Error(`read [${offset}, ${offset + length}) outside the disk`);
    if (alignment !== undefined && (offset % alignment !== 0 || (length % alignment !== 0 && offset + length !== source.length))) {
      throw new Error(`read [${offset}, ${offset + length}) is not aligned to ${alignment}`);
    }
    await Promise.resolve();
    return Buffer.from(source.subarray(offset, offset + length));
  };
  return { read, reads };
}

export async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}

export async function emitToFile(plan: ImagePlan, read: ReadGuest, path: string, options?: EmitOptions): Promise<number> {
  const file = await open(path, 'w');
  let written = 0;
  try {
    for await (const chunk of emitFrom(plan, 0, read, options)) {
      await file.write(chunk);
      written += chunk.length;
    }
  } finally {
    await file.close();
  }
  return written;
}

export interface ToolResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function qemuImg(args: readonly string[]): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    execFile('qemu-img', args, { maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error !== null && typeof error.code !== 'number') {
        reject(error);
        return;
      }
      resolve({ code: error === null ? 0 : Number(error.code), stdout, stderr });
    });
  });
}
