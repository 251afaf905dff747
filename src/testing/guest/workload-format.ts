// The byte formats snapwl (workload/snapwl.c) writes, mirrored byte for byte: every record and
// block is a pure function of its number or (offset, generation), so the host can regenerate what
// a correct copy must hold instead of trusting anything it reads. Pure: no I/O. Change both together.

/**
 * One log record, ASCII: `SWL1 ` [0,5) | n, 16 lowercase hex [5,21) | ' ' | 96 payload chars [22,118) |
 * ' ' | CRC32C of bytes [0,118), 8 lowercase hex [119,127) | '\n' [127].
 */
export const LOG_RECORD_BYTES = 128;
const LOG_MAGIC = 'SWL1 ';
const LOG_PAYLOAD_OFFSET = 22;
const LOG_PAYLOAD_BYTES = 96;
const LOG_CRC_OFFSET = 119;
const LOG_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

export const BLOCK_MAGIC = Buffer.from('SNAPWLB1', 'ascii');
/** magic 8 | offset u64 | generation u64 | sequence u64 | block bytes u32 | crc32c u32, little-endian */
export const BLOCK_HEADER_BYTES = 40;
export const BLOCK_CRC_OFFSET = 36;
/** Every sector after the first starts with its block's generation (u64 LE), so a tear is attributable. */
export const SECTOR_BYTES = 512;
export const MAX_BLOCK_BYTES = 1024 * 1024;

const LOG_DOMAIN = 0x4c4f4731; // "LOG1"
const BLOCK_DOMAIN = 0x424c4b31; // "BLK1"
const TWO_POW_32 = 2 ** 32;

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[i] = c >>> 0;
  }
  return table;
})();

/** CRC32C (Castagnoli) over the concatenation of `parts`. */
export function crc32c(...parts: readonly Uint8Array[]): number {
  let state = 0xffffffff;
  for (const part of parts) {
    for (let i = 0; i < part.length; i++) state = (CRC_TABLE[(state ^ (part[i] ?? 0)) & 0xff] ?? 0) ^ (state >>> 8);
  }
  return ~state >>> 0;
}

function fmix32(input: number): number {
  let h = input >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function hi32(n: number): number {
  return Math.floor(n / TWO_POW_32) >>> 0;
}

/** Same chain as snapwl.c's mix_seed over two u64 values (safe integers here). */
function mixSeed(a: number, b: number, domain: number): number {
  let h = fmix32(domain ^ (a >>> 0));
  h = fmix32(h ^ hi32(a));
  h = fmix32(h ^ (b >>> 0));
  h = fmix32(h ^ hi32(b));
  return h === 0 ? 0x9e3779b9 : h;
}

function xorshift32(input: number): number {
  let x = input >>> 0;
  x ^= x << 13;
  x >>>= 0;
  x ^= x >>> 17;
  x ^= x << 5;
  return x >>> 0;
}

function assertCount(what: string, n: number, min: number): void {
  if (!Number.isSafeInteger(n) || n < min) throw new RangeError(`${what} must be a safe integer >= ${min}, got ${n}`);
}

export function encodeLogRecord(n: number): Buffer {
  assertCount('record number', n, 1);
  const record = Buffer.alloc(LOG_RECORD_BYTES);
  record.write(`${LOG_MAGIC}${n.toString(16).padStart(16, '0')} `, 0, 'ascii');
  let x = mixSeed(n, 0, LOG_DOMAIN);
  for (let i = 0; i < LOG_PAYLOAD_BYTES; i++) {
    x = xorshift32(x);
    record[LOG_PAYLOAD_OFFSET + i] = LOG_ALPHABET.charCodeAt(x >>> 26);
  }
  record[LOG_CRC_OFFSET - 1] = 0x20;
  const crc = crc32c(record.subarray(0, LOG_CRC_OFFSET - 1));
  record.write(`${crc.toString(16).padStart(8, '0')}\n`, LOG_CRC_OFFSET, 'ascii');
  return record;
}

const LOG_SHAPE_RE = /^SWL1 ([0-9a-f]{16}) [A-Za-z0-9_-]{96} ([0-9a-f]{8})\n$/;

/**
 * The number a 128-byte slice claims when it is shaped like a record with a matching checksum
 * (whether it is byte-exactly that record is the caller's question), else undefined.
 */
export function parseLogRecord(slice: Uint8Array): number | undefined {
  if (slice.length !== LOG_RECORD_BYTES) return undefined;
  const m = LOG_SHAPE_RE.exec(Buffer.from(slice).toString('latin1'));
  if (!m?.[1] || !m[2]) return undefined;
  if (Number.parseInt(m[2], 16) !== crc32c(slice.subarray(0, LOG_CRC_OFFSET - 1))) return undefined;
  const n = Number.parseInt(m[1], 16);
  return Number.isSafeInteger(n) && n >= 1 ? n : undefined;
}

export interface BlockHeader {
  offset: number;
  generation: number;
  sequence: number;
  blockBytes: number;
  crc: number;
}

export function assertBlockBytes(blockBytes: number): void {
  if (!Number.isSafeInteger(blockBytes) || blockBytes < SECTOR_BYTES || blockBytes > MAX_BLOCK_BYTES || blockBytes % SECTOR_BYTES !== 0) {
    throw new RangeError(`block size must be a multiple of ${SECTOR_BYTES} up to ${MAX_BLOCK_BYTES}, got ${blockBytes}`);
  }
}

/** A whole block as snapwl writes it. */
export function encodeBlock(h: Omit<BlockHeader, 'crc'>): Buffer {
  assertBlockBytes(h.blockBytes);
  assertCount('block offset', h.offset, 0);
  assertCount('generation', h.generation, 1);
  assertCount('sequence', h.sequence, 1);
  const block = Buffer.alloc(h.blockBytes);
  BLOCK_MAGIC.copy(block, 0);
  block.writeBigUInt64LE(BigInt(h.offset), 8);
  block.writeBigUInt64LE(BigInt(h.generation), 16);
  block.writeBigUInt64LE(BigInt(h.sequence), 24);
  block.writeUInt32LE(h.blockBytes, 32);
  let x = mixSeed(h.offset, h.generation, BLOCK_DOMAIN);
  for (let p = BLOCK_HEADER_BYTES; p < h.blockBytes; p += 4) {
    x = xorshift32(x);
    block.writeUInt32LE(x, p);
  }
  const stamp = BigInt(h.generation);
  for (let s = SECTOR_BYTES; s < h.blockBytes; s += SECTOR_BYTES) block.writeBigUInt64LE(stamp, s);
  block.writeUInt32LE(blockChecksum(block), BLOCK_CRC_OFFSET);
  return block;
}

/** The checksum a block's bytes call for: CRC32C over everything but the checksum field. */
export function blockChecksum(block: Uint8Array): number {
  return crc32c(block.subarray(0, BLOCK_CRC_OFFSET), block.subarray(BLOCK_HEADER_BYTES));
}

function readSafeU64(block: Buffer, offset: number): number | undefined {
  const v = block.readBigUInt64LE(offset);
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : undefined;
}

/** The header fields when the magic is present and every field fits a safe integer, else undefined. */
export function decodeBlockHeader(block: Buffer): BlockHeader | undefined {
  if (block.length < BLOCK_HEADER_BYTES || !block.subarray(0, BLOCK_MAGIC.length).equals(BLOCK_MAGIC)) return undefined;
  const offset = readSafeU64(block, 8);
  const generation = readSafeU64(block, 16);
  const sequence = readSafeU64(block, 24);
  if (offset === undefined || generation === undefined || sequence === undefined) return undefined;
  return { offset, generation, sequence, blockBytes: block.readUInt32LE(32), crc: block.readUInt32LE(BLOCK_CRC_OFFSET) };
}

/** The generation stamp at the start of sector `sector` (>= 1) of a block, when it is a safe integer. */
export function sectorGeneration(block: Buffer, sector: number): number | undefined {
  const at = sector * SECTOR_BYTES;
  if (sector < 1 || at + 8 > block.length) return undefined;
  return readSafeU64(block, at);
}
