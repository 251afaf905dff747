// Proof that a snapshot holds a correct point-in-time copy of what snapwl wrote: every byte is
// regenerated from the formats in workload-format.ts and compared, so a copy that mixes two moments
// (a gap in the log, a block torn across generations) fails with the first fault's byte offset.
import { z } from 'zod';
import {
  assertBlockBytes,
  BLOCK_CRC_OFFSET,
  BLOCK_HEADER_BYTES,
  blockChecksum,
  decodeBlockHeader,
  encodeBlock,
  encodeLogRecord,
  LOG_RECORD_BYTES,
  parseLogRecord,
  SECTOR_BYTES,
  sectorGeneration,
} from './workload-format';

export type WorkloadFaultKind =
  | 'gap'
  | 'bad-record'
  | 'too-few-records'
  | 'bad-size'
  | 'bad-block'
  | 'wrong-offset'
  | 'torn-block'
  | 'mixed-generation'
  | 'bad-checksum'
  | 'duplicate-sequence'
  | 'sequence-too-low'
  | 'not-one-point';

export class WorkloadVerificationFailed extends Error {
  override readonly name = 'WorkloadVerificationFailed';
  constructor(
    readonly kind: WorkloadFaultKind,
    /** byte offset in the verified file of the first fault */
    readonly offset: number,
    detail: string,
  ) {
    super(`${kind} at byte ${offset}: ${detail}`);
  }
}

export interface AppendLogSummary {
  /** records 1..records are present, whole and in order */
  records: number;
  /** bytes of record records+1 a crash-consistent copy cut mid-append */
  trailingPartialBytes: number;
}

function firstDifference(actual: Uint8Array, expected: Uint8Array, from = 0, to = actual.length): number {
  for (let i = from; i < to; i++) if (actual[i] !== expected[i]) return i;
  return -1;
}

function isAllZero(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
}

/**
 * The file must be records 1..M, byte-exact, then at most a byte prefix of record M+1.
 * `minRecords`: the last `fsynced=` the guest printed before the snapshot began; all of those are durable.
 */
export function verifyAppendLog(bytes: Buffer, opts: { minRecords?: number } = {}): AppendLogSummary {
  let records = 0;
  let pos = 0;
  for (; pos + LOG_RECORD_BYTES <= bytes.length; pos += LOG_RECORD_BYTES) {
    const actual = bytes.subarray(pos, pos + LOG_RECORD_BYTES);
    const expected = encodeLogRecord(records + 1);
    if (!actual.equals(expected)) {
      const claimed = parseLogRecord(actual);
      if (claimed !== undefined && claimed !== records + 1) {
        throw new WorkloadVerificationFailed('gap', pos, `expected record ${records + 1}, found record ${claimed}`);
      }
      const at = pos + firstDifference(actual, expected);
      throw new WorkloadVerificationFailed('bad-record', at, `record ${records + 1} differs from what it must hold`);
    }
    records++;
  }
  const tail = bytes.subarray(pos);
  if (tail.length > 0) {
    const diff = firstDifference(tail, encodeLogRecord(records + 1));
    if (diff >= 0) throw new WorkloadVerificationFailed('bad-record', pos + diff, `trailing ${tail.length} bytes are not a prefix of record ${records + 1}`);
  }
  if (opts.minRecords !== undefined && records < opts.minRecords) {
    throw new WorkloadVerificationFailed('too-few-records', pos, `${records} whole records, but ${opts.minRecords} were fsynced before the snapshot`);
  }
  return { records, trailingPartialBytes: tail.length };
}

export interface BlockFileSummary {
  blocks: number;
  /** blocks that hold a write (the rest are all zeros) */
  written: number;
  maxSequence: number;
  maxGeneration: number;
}

/** Why `block` at file offset `pos` is not exactly what its header says, or undefined when it is. */
function blockFault(block: Buffer, pos: number): WorkloadVerificationFailed | undefined {
  const header = decodeBlockHeader(block);
  if (header === undefined) {
    // The header sector never landed but a later one did: a write torn by the copy.
    if (isAllZero(block.subarray(0, BLOCK_HEADER_BYTES))) return new WorkloadVerificationFailed('torn-block', pos, 'header sector is zeros, the rest is not');
    return new WorkloadVerificationFailed('bad-block', pos, 'no block magic (or a field beyond 2^53)');
  }
  if (header.offset !== pos) return new WorkloadVerificationFailed('wrong-offset', pos + 8, `block claims offset ${header.offset}`);
  if (header.blockBytes !== block.length) return new WorkloadVerificationFailed('bad-block', pos + 32, `block claims ${header.blockBytes} bytes, not ${block.length}`);
  if (header.generation < 1 || header.sequence < 1) return new WorkloadVerificationFailed('bad-block', pos + 16, 'generation and sequence start at 1');

  const expected = encodeBlock({ offset: pos, generation: header.generation, sequence: header.sequence, blockBytes: block.length });
  let diff = firstDifference(block, expected, 0, BLOCK_CRC_OFFSET);
  if (diff < 0) diff = firstDifference(block, expected, BLOCK_HEADER_BYTES);
  if (diff >= 0) {
    const sector = Math.floor(diff / SECTOR_BYTES);
    const sectorStart = sector * SECTOR_BYTES;
    if (isAllZero(block.subarray(diff)) || isAllZero(block.subarray(sectorStart, sectorStart + SECTOR_BYTES))) {
      return new WorkloadVerificationFailed('torn-block', pos + diff, `generation ${header.generation} block is zeros from here`);
    }
    const stamped = sectorGeneration(block, sector);
    if (stamped !== undefined && stamped >= 1 && stamped !== header.generation) {
      const other = encodeBlock({ offset: pos, generation: stamped, sequence: header.sequence, blockBytes: block.length });
      if (block.subarray(sectorStart, sectorStart + SECTOR_BYTES).equals(other.subarray(sectorStart, sectorStart + SECTOR_BYTES))) {
        return new WorkloadVerificationFailed('mixed-generation', pos + sectorStart, `header is generation ${header.generation}, sector ${sector} is generation ${stamped}`);
      }
    }
    if (blockChecksum(block) !== header.crc) return new WorkloadVerificationFailed('bad-checksum', pos + diff, `content of generation ${header.generation} differs and the checksum fails`);
    return new WorkloadVerificationFailed('bad-block', pos + diff, 'checksum matches but content is not what snapwl writes');
  }
  if (header.crc !== expected.readUInt32LE(BLOCK_CRC_OFFSET)) return new WorkloadVerificationFailed('bad-checksum', pos + BLOCK_CRC_OFFSET, 'stored checksum is wrong');
  return undefined;
}

/**
 * Every block must be all zeros (never written) or exactly the block its header names.
 * `minSequence`: the last `fsynced=` before the snapshot; later overwrites may have replaced any
 * one block, so the only sound check is that some write at least that recent is in the copy.
 */
export function verifyBlockFile(bytes: Buffer, opts: { blockBytes: number; minSequence?: number }): BlockFileSummary {
  assertBlockBytes(opts.blockBytes);
  const rem = bytes.length % opts.blockBytes;
  if (rem !== 0) throw new WorkloadVerificationFailed('bad-size', bytes.length - rem, `file size ${bytes.length} is not a multiple of ${opts.blockBytes}`);
  const summary: BlockFileSummary = { blocks: bytes.length / opts.blockBytes, written: 0, maxSequence: 0, maxGeneration: 0 };
  const sequences = new Map<number, number>();
  let maxSequenceAt = 0;
  for (let pos = 0; pos < bytes.length; pos += opts.blockBytes) {
    const block = bytes.subarray(pos, pos + opts.blockBytes);
    if (isAllZero(block)) continue;
    const fault = blockFault(block, pos);
    if (fault) throw fault;
    const header = decodeBlockHeader(block);
    if (header === undefined) throw new WorkloadVerificationFailed('bad-block', pos, 'header vanished after verification');
    // Each write gets a fresh sequence number, so two blocks with one number come from two timelines.
    const seen = sequences.get(header.sequence);
    if (seen !== undefined) throw new WorkloadVerificationFailed('duplicate-sequence', pos + 24, `sequence ${header.sequence} also in the block at ${seen}`);
    sequences.set(header.sequence, pos);
    summary.written++;
    if (header.sequence > summary.maxSequence) {
      summary.maxSequence = header.sequence;
      maxSequenceAt = pos;
    }
    summary.maxGeneration = Math.max(summary.maxGeneration, header.generation);
  }
  if (opts.minSequence !== undefined && summary.maxSequence < opts.minSequence) {
    throw new WorkloadVerificationFailed('sequence-too-low', maxSequenceAt, `newest write is ${summary.maxSequence}, but ${opts.minSequence} was fsynced before the snapshot`);
  }
  return summary;
}

export interface LockstepSummary {
  first: AppendLogSummary;
  second: AppendLogSummary;
}

/**
 * Two copies of snapwl's lockstep logs (record n fsynced to the first disk's log, then to the
 * second's, then n+1) taken at one point in time: each log contiguous as verifyAppendLog has it, and
 * the first holding as many whole records as the second or one more (the record in flight between
 * the two fsyncs). Anything wider means the two copies were cut at different moments. `minRecords`:
 * the last `lockstep fsynced=` before the snapshot (records both logs held by then).
 */
export function verifyLockstepLogs(first: Buffer, second: Buffer, opts: { minRecords?: number } = {}): LockstepSummary {
  const summary = { first: verifyAppendLog(first, opts), second: verifyAppendLog(second, opts) };
  const [a, b] = [summary.first.records, summary.second.records];
  if (a > b + 1) throw new WorkloadVerificationFailed('not-one-point', (b + 1) * LOG_RECORD_BYTES, `the first log holds ${a} records, the second ${b}: record ${b + 2} of the first is later than the second's copy`);
  if (a < b) throw new WorkloadVerificationFailed('not-one-point', a * LOG_RECORD_BYTES, `the second log holds ${b} records, the first ${a}: record ${a + 1} of the second is later than the first's copy`);
  return summary;
}

export type WorkloadMode = 'log' | 'blocks' | 'lockstep';

const FSYNCED_LINE_RE = {
  log: /^SNAPWL log fsynced=(\d{1,16})$/,
  blocks: /^SNAPWL blocks fsynced=(\d{1,16})$/,
  lockstep: /^SNAPWL lockstep fsynced=(\d{1,16})$/,
} as const;
const fsyncedNumber = z.coerce.number().int().nonnegative().safe();

/**
 * The last `SNAPWL <mode> fsynced=<n>` line of a guest console capture (0 when none). Only whole
 * lines count: kernel messages share the console and a line they cut into is not evidence.
 */
export function lastFsynced(consoleText: string, mode: WorkloadMode): number {
  let last = 0;
  for (const line of consoleText.split('\n')) {
    const m = FSYNCED_LINE_RE[mode].exec(line.replace(/\r+$/, ''));
    if (m?.[1] !== undefined) last = fsyncedNumber.parse(m[1]);
  }
  return last;
}
