// A digest of the guest-visible disk, independent of the image format that carries it: the disk is
// cut into 256 KiB blocks, each block hashed with SHA-256, and the digest is the SHA-256 of those
// hashes in order. A zero block's hash is a constant, so a sparse multi-TiB disk costs only its
// data; and anyone holding the image (qcow2 or raw, downloaded or on the host) can recompute it
// from the raw bytes and compare it with the disk itself. The block is the composing store's chunk:
// a block's hash is the name of the chunk holding it, so the host and the store derive the digest
// from the chunk names they compute anyway (updateBlockHash), without a second pass over the bytes.
// (Images committed before this scheme carry `sha256-1m-blocks`, 1 MiB blocks; the tag says which.)
import { createHash, type Hash } from 'node:crypto';
import { MiB } from './allocation-map';
import { Qcow2LayoutError } from './errors';

export const LOGICAL_DIGEST_BLOCK = MiB / 4;
/** The algorithm tag stored with the digest, so that a later scheme can never be mistaken for this one. */
export const LOGICAL_DIGEST_ALGORITHM = 'sha256-256k-blocks' as const;

const zeroBlockHashes = new Map<number, Buffer>();

/** SHA-256 of `length` zero bytes (cached): a zero block's hash in the digest. */
export function zeroBlockHash(length: number): Buffer {
  let hash = zeroBlockHashes.get(length);
  if (hash === undefined) {
    hash = createHash('sha256').update(Buffer.alloc(length)).digest();
    zeroBlockHashes.set(length, hash);
  }
  return hash;
}

/**
 * Fed the disk's data in increasing offset order; every byte not fed reads as zero. Pieces may
 * start and end anywhere, but must not overlap or go back.
 */
export class LogicalDigest {
  private readonly outer = createHash('sha256');
  /** the block being filled, and how far it is */
  private block: Hash | null = null;
  private at = 0;

  constructor(readonly virtualSize: number) {
    if (!Number.isSafeInteger(virtualSize) || virtualSize < 0) throw new Qcow2LayoutError('bad-map', `virtual size must be a non-negative integer, got ${virtualSize}`);
  }

  /** Adds bytes at `offset` (≥ the end of the previous piece); the gap before it is zeros. */
  update(offset: number, bytes: Uint8Array): void {
    if (!Number.isSafeInteger(offset) || offset < this.at || offset + bytes.length > this.virtualSize) {
      throw new Qcow2LayoutError('bad-offset', `digest piece at ${offset} (+${bytes.length}) is out of order or past the disk (at ${this.at} of ${this.virtualSize})`);
    }
    this.zerosTo(offset);
    let done = 0;
    while (done < bytes.length) {
      const blockEnd = this.blockEndOf(this.at);
      const take = Math.min(bytes.length - done, blockEnd - this.at);
      this.openBlock().update(bytes.subarray(done, done + take));
      done += take;
      this.at += take;
      if (this.at === blockEnd) this.closeBlock();
    }
  }

  /**
   * Adds the SHA-256 of the whole block at `offset` (block-aligned, ≥ the end of what was fed;
   * the last block may be short): what a chunk's name already is.
   */
  updateBlockHash(offset: number, hash: Uint8Array): void {
    if (!Number.isSafeInteger(offset) || offset % LOGICAL_DIGEST_BLOCK !== 0 || offset < this.at || offset >= this.virtualSize) {
      throw new Qcow2LayoutError('bad-offset', `block hash at ${offset} is not at a block boundary ahead of ${this.at} inside the disk of ${this.virtualSize}`);
    }
    this.zerosTo(offset);
    this.outer.update(hash);
    this.at = this.blockEndOf(offset);
  }

  /** The digest of the whole disk; what was not fed is zeros. */
  digest(): string {
    this.zerosTo(this.virtualSize);
    return this.outer.digest('hex');
  }

  private zerosTo(offset: number): void {
    while (this.at < offset) {
      const blockEnd = this.blockEndOf(this.at);
      if (this.block === null && this.at % LOGICAL_DIGEST_BLOCK === 0 && blockEnd <= offset) {
        // A whole block of zeros: its hash is known.
        this.outer.update(zeroBlockHash(blockEnd - this.at));
        this.at = blockEnd;
        continue;
      }
      const take = Math.min(offset, blockEnd) - this.at;
      this.openBlock().update(Buffer.alloc(take));
      this.at += take;
      if (this.at === blockEnd) this.closeBlock();
    }
  }

  private blockEndOf(offset: number): number {
    return Math.min(this.virtualSize, (Math.floor(offset / LOGICAL_DIGEST_BLOCK) + 1) * LOGICAL_DIGEST_BLOCK);
  }

  private openBlock(): Hash {
    this.block ??= createHash('sha256');
    return this.block;
  }

  private closeBlock(): void {
    if (this.block === null) return;
    this.outer.update(this.block.digest());
    this.block = null;
  }
}

/** The digest of a raw disk image given as a stream of its bytes from offset 0. */
export async function logicalDigestOf(raw: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, virtualSize: number): Promise<string> {
  const digest = new LogicalDigest(virtualSize);
  let at = 0;
  for await (const chunk of raw) {
    digest.update(at, chunk);
    at += chunk.length;
  }
  if (at !== virtualSize) throw new Qcow2LayoutError('bad-map', `raw image holds ${at} bytes, the disk has ${virtualSize}`);
  return digest.digest();
}
