import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { crc32c, encodeBlock, encodeLogRecord, LOG_RECORD_BYTES } from '../../../src/testing/guest/workload-format';
import { lastFsynced, verifyAppendLog, verifyBlockFile, verifyLockstepLogs, WorkloadVerificationFailed, type WorkloadFaultKind } from '../../../src/testing/guest/workload-verifiers';

const SOURCE = path.join(__dirname, '../../../src/testing/guest/workload/snapwl.c');
const FAST = ['--rate-kib', '1048576'];
const BLOCK = 4096;

let dir: string;
let snapwl: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

async function snap(args: string[]): Promise<Run> {
  const r = await run(snapwl, args);
  if (r.code !== 0) throw new Error(`snapwl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r;
}

function fault(fn: () => unknown): WorkloadVerificationFailed {
  try {
    fn();
  } catch (e) {
    if (e instanceof WorkloadVerificationFailed) return e;
    throw e;
  }
  throw new Error('verification passed but should have failed');
}

function expectFault(fn: () => unknown, kind: WorkloadFaultKind, offset?: number): void {
  const e = fault(fn);
  expect(e.kind).toBe(kind);
  if (offset !== undefined) expect(e.offset).toBe(offset);
}

function flip(buf: Buffer, at: number, mask: number): void {
  buf.writeUInt8(buf.readUInt8(at) ^ mask, at);
}

function logOf(n: number): Buffer {
  return Buffer.concat(Array.from({ length: n }, (_, i) => encodeLogRecord(i + 1)));
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'snapwl-'));
  snapwl = path.join(dir, 'snapwl');
  // The exact build the guest image uses: a warning is a failure here, not a skip.
  const cc = await run('gcc', ['-static', '-O2', '-Wall', '-Wextra', '-Werror', '-o', snapwl, SOURCE]);
  if (cc.code !== 0) throw new Error(`gcc failed (${cc.code}): ${cc.stderr}`);
}, 60_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('formats', () => {
  it('uses CRC32C (the standard check value) and 128-byte newline-terminated records', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    const r = encodeLogRecord(0x1234);
    expect(r.length).toBe(LOG_RECORD_BYTES);
    expect(r.toString('latin1')).toMatch(/^SWL1 0000000000001234 [A-Za-z0-9_-]{96} [0-9a-f]{8}\n$/);
  });
});

describe('snapwl log on the host', () => {
  it('appends numbered records the verifier regenerates, and reports each fsync', async () => {
    const file = path.join(dir, 'log1');
    const r = await snap(['log', file, ...FAST, '--fsync-every', '16', '--max-records', '100']);
    expect(r.stdout.split('\n')[0]).toBe('SNAPWL log started resume=0');
    expect(r.stdout).toContain('SNAPWL log fsynced=16\n');
    expect(lastFsynced(r.stdout, 'log')).toBe(100);
    expect(verifyAppendLog(await readFile(file), { minRecords: 100 })).toEqual({ records: 100, trailingPartialBytes: 0 });
  });

  it('resumes after a restart and after a crash cut a record short', async () => {
    const file = path.join(dir, 'log2');
    await snap(['log', file, ...FAST, '--max-records', '40']);
    const second = await snap(['log', file, ...FAST, '--max-records', '25']);
    expect(second.stdout).toContain('SNAPWL log started resume=40\n');
    expect(verifyAppendLog(await readFile(file))).toEqual({ records: 65, trailingPartialBytes: 0 });

    await truncate(file, 65 * LOG_RECORD_BYTES - 50);
    expect(verifyAppendLog(await readFile(file))).toEqual({ records: 64, trailingPartialBytes: LOG_RECORD_BYTES - 50 });
    const third = await snap(['log', file, ...FAST, '--max-records', '10']);
    expect(third.stdout).toContain('SNAPWL log started resume=64\n');
    expect(lastFsynced(third.stdout, 'log')).toBe(74);
    expect(verifyAppendLog(await readFile(file), { minRecords: 74 })).toEqual({ records: 74, trailingPartialBytes: 0 });
  });

  it('holds the default rate: 256 KiB at 1024 KiB/s takes about a quarter second', async () => {
    const started = Date.now();
    await snap(['log', path.join(dir, 'log3'), '--max-records', '2048']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
  });

  it('refuses bad arguments with a message', async () => {
    for (const args of [['log'], ['log', path.join(dir, 'x'), '--fsync-every', '0'], ['log', path.join(dir, 'x'), '--max-writes', '3'], ['blocks', path.join(dir, 'x'), '--block-kib', 'abc'], ['nope']]) {
      const r = await run(snapwl, args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^snapwl: /);
    }
    const r = await run(snapwl, ['log', path.join(dir, 'no-such-dir', 'log'), '--max-records', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/No such file or directory/);
  });
});

describe('snapwl lockstep on the host', () => {
  it('writes the same records to both logs, and reports what both hold', async () => {
    const [first, second] = [path.join(dir, 'ls1a'), path.join(dir, 'ls1b')];
    const r = await snap(['lockstep', first, second, ...FAST, '--report-every', '16', '--max-records', '40']);
    expect(r.stdout.split('\n')[0]).toBe('SNAPWL lockstep started resume=0');
    expect(r.stdout).toContain('SNAPWL lockstep fsynced=16\n');
    expect(lastFsynced(r.stdout, 'lockstep')).toBe(40);
    expect(lastFsynced(r.stdout, 'log')).toBe(0);
    const summary = verifyLockstepLogs(await readFile(first), await readFile(second), { minRecords: 40 });
    expect([summary.first.records, summary.second.records]).toEqual([40, 40]);
  });

  it('after a crash between the two fsyncs the second log catches up first; logs further apart are refused', async () => {
    const [first, second] = [path.join(dir, 'ls2a'), path.join(dir, 'ls2b')];
    await snap(['lockstep', first, second, ...FAST, '--max-records', '20']);
    await truncate(second, 19 * LOG_RECORD_BYTES + 7);
    const resumed = await snap(['lockstep', first, second, ...FAST, '--max-records', '5']);
    expect(resumed.stdout).toContain('SNAPWL lockstep started resume=20\n');
    expect(lastFsynced(resumed.stdout, 'lockstep')).toBe(25);
    expect(verifyLockstepLogs(await readFile(first), await readFile(second))).toMatchObject({ first: { records: 25 }, second: { records: 25 } });

    await truncate(second, 20 * LOG_RECORD_BYTES);
    const refused = await run(snapwl, ['lockstep', first, second, ...FAST, '--max-records', '1']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/holds 25 records .* 20: not written in lockstep/);
    for (const args of [['lockstep', first], ['lockstep', first, second, '--fsync-every', '4']]) expect((await run(snapwl, args)).code).toBe(2);
  });
});

describe('verifyLockstepLogs', () => {
  it('accepts the first log equal to the second or one record ahead, cut tails included', () => {
    expect(verifyLockstepLogs(logOf(7), logOf(7))).toMatchObject({ first: { records: 7 }, second: { records: 7 } });
    expect(verifyLockstepLogs(logOf(8), logOf(7))).toMatchObject({ first: { records: 8 }, second: { records: 7 } });
    const cut = Buffer.concat([logOf(8), encodeLogRecord(9).subarray(0, 30)]);
    expect(verifyLockstepLogs(cut, Buffer.concat([logOf(7), encodeLogRecord(8).subarray(0, 100)]))).toMatchObject({ first: { records: 8, trailingPartialBytes: 30 }, second: { records: 7 } });
  });

  it('names two copies of different moments, and still checks each log and the fsynced floor', () => {
    expectFault(() => verifyLockstepLogs(logOf(9), logOf(7)), 'not-one-point', 8 * LOG_RECORD_BYTES);
    expectFault(() => verifyLockstepLogs(logOf(6), logOf(7)), 'not-one-point', 6 * LOG_RECORD_BYTES);
    expectFault(() => verifyLockstepLogs(logOf(7), Buffer.concat([logOf(3), encodeLogRecord(5)])), 'gap', 3 * LOG_RECORD_BYTES);
    expectFault(() => verifyLockstepLogs(logOf(5), logOf(5), { minRecords: 6 }), 'too-few-records');
  });
});

describe('snapwl blocks on the host', () => {
  const args = (file: string, writes: number): string[] => ['blocks', file, '--size-mib', '1', '--block-kib', '4', ...FAST, '--fsync-every', '8', '--max-writes', String(writes)];

  it('writes whole blocks with rising sequences, zeros elsewhere, and continues generations on restart', async () => {
    const file = path.join(dir, 'blocks1');
    const first = await snap(args(file, 300));
    expect(first.stdout).toContain('SNAPWL blocks started resume=0\n');
    expect(lastFsynced(first.stdout, 'blocks')).toBe(300);
    const one = verifyBlockFile(await readFile(file), { blockBytes: BLOCK, minSequence: 300 });
    expect(one).toMatchObject({ blocks: 256, maxSequence: 300 });
    expect(one.written).toBeLessThan(256);
    expect(one.maxGeneration).toBeGreaterThan(1);

    const second = await snap([...args(file, 500), '--seed', '7']);
    expect(second.stdout).toContain('SNAPWL blocks started resume=300\n');
    const two = verifyBlockFile(await readFile(file), { blockBytes: BLOCK, minSequence: 800 });
    expect(two.maxSequence).toBe(800);
    expect(two.maxGeneration).toBeGreaterThan(one.maxGeneration);
    expect(two.written).toBeGreaterThanOrEqual(one.written);
  });

  it('defaults to an 8 MiB file of 64 KiB blocks, as the guest runs it', async () => {
    const file = path.join(dir, 'blocks-default');
    await snap(['blocks', file, ...FAST, '--max-writes', '40']);
    const bytes = await readFile(file);
    expect(bytes.length).toBe(8 * 1024 * 1024);
    expect(verifyBlockFile(bytes, { blockBytes: 64 * 1024, minSequence: 40 })).toMatchObject({ blocks: 128, maxSequence: 40 });
  });

  it('rewrites a block a crash tore before it writes anything new', async () => {
    const file = path.join(dir, 'blocks2');
    await snap(args(file, 200));
    const bytes = await readFile(file);
    const victim = bytes.findIndex((_, i) => i % BLOCK === 0 && bytes[i] === 0x53);
    bytes.fill(0, victim + BLOCK / 2, victim + BLOCK);
    await writeFile(file, bytes);
    expectFault(() => verifyBlockFile(bytes, { blockBytes: BLOCK }), 'torn-block', victim + BLOCK / 2);
    const r = await snap(args(file, 1));
    expect(r.stdout).toContain('SNAPWL blocks fsynced=201\nSNAPWL blocks started resume=201\n');
    expect(verifyBlockFile(await readFile(file), { blockBytes: BLOCK }).maxSequence).toBe(202);
  });
});

describe('verifyAppendLog', () => {
  const log = logOf(20);

  it('names a dropped record as a gap at its offset', () => {
    const dropped = Buffer.concat([log.subarray(0, 5 * LOG_RECORD_BYTES), log.subarray(6 * LOG_RECORD_BYTES)]);
    expectFault(() => verifyAppendLog(dropped), 'gap', 5 * LOG_RECORD_BYTES);
  });

  it('names a flipped byte as a bad record at that byte', () => {
    const flipped = Buffer.from(log);
    flip(flipped, 7 * LOG_RECORD_BYTES + 40, 0x01);
    expectFault(() => verifyAppendLog(flipped), 'bad-record', 7 * LOG_RECORD_BYTES + 40);
    const badTail = Buffer.concat([log, Buffer.alloc(10)]);
    expectFault(() => verifyAppendLog(badTail), 'bad-record', log.length);
  });

  it('fails when fewer records survive than were fsynced', () => {
    expect(verifyAppendLog(log, { minRecords: 20 }).records).toBe(20);
    expectFault(() => verifyAppendLog(log.subarray(0, 12 * LOG_RECORD_BYTES + 3), { minRecords: 13 }), 'too-few-records', 12 * LOG_RECORD_BYTES);
  });

  it('accepts every byte prefix of a valid log, and no single flipped byte', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: log.length }), (cut) => {
        const r = verifyAppendLog(log.subarray(0, cut));
        return r.records === Math.floor(cut / LOG_RECORD_BYTES) && r.trailingPartialBytes === cut % LOG_RECORD_BYTES;
      }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: log.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, mask) => {
        const bad = Buffer.from(log);
        flip(bad, at, mask);
        const e = fault(() => verifyAppendLog(bad));
        return e.offset === at || e.kind === 'gap';
      }),
    );
  });
});

describe('verifyBlockFile', () => {
  const B = 8192;
  const block = (index: number, generation: number, sequence: number): Buffer => encodeBlock({ offset: index * B, generation, sequence, blockBytes: B });
  const file = (...blocks: Buffer[]): Buffer => Buffer.concat(blocks);

  it('accepts whole blocks and never-written zeros', () => {
    expect(verifyBlockFile(file(block(0, 3, 9), Buffer.alloc(B), block(2, 1, 4)), { blockBytes: B, minSequence: 9 })).toEqual({ blocks: 3, written: 2, maxSequence: 9, maxGeneration: 3 });
    expectFault(() => verifyBlockFile(file(block(0, 3, 9)), { blockBytes: B, minSequence: 10 }), 'sequence-too-low');
    expectFault(() => verifyBlockFile(file(block(0, 3, 9), block(1, 1, 9)), { blockBytes: B }), 'duplicate-sequence', B + 24);
    expectFault(() => verifyBlockFile(Buffer.alloc(B + 100), { blockBytes: B }), 'bad-size', B);
  });

  it('names a block whose second half is another generation', () => {
    const torn = Buffer.concat([block(1, 5, 20).subarray(0, B / 2), block(1, 4, 11).subarray(B / 2)]);
    expectFault(() => verifyBlockFile(file(block(0, 1, 1), torn), { blockBytes: B }), 'mixed-generation', B + B / 2);
    const olderHeader = Buffer.concat([block(1, 4, 11).subarray(0, 512), block(1, 5, 20).subarray(512)]);
    expectFault(() => verifyBlockFile(file(Buffer.alloc(B), olderHeader), { blockBytes: B }), 'mixed-generation', B + 512);
  });

  it('names zeros in a block tail, or a missing header sector, as torn', () => {
    const tail = block(1, 2, 2);
    tail.fill(0, 6000);
    expectFault(() => verifyBlockFile(file(block(0, 1, 1), tail), { blockBytes: B }), 'torn-block', B + 6000);
    const noHeader = block(0, 2, 2);
    noHeader.fill(0, 0, 512);
    expectFault(() => verifyBlockFile(noHeader, { blockBytes: B }), 'torn-block', 0);
  });

  it('names a block written at the wrong position', () => {
    expectFault(() => verifyBlockFile(file(block(0, 1, 1), block(0, 2, 2)), { blockBytes: B }), 'wrong-offset', B + 8);
  });

  it('names a bad checksum, in the field or in the payload', () => {
    const badField = block(0, 1, 1);
    flip(badField, 37, 0xff);
    expectFault(() => verifyBlockFile(badField, { blockBytes: B }), 'bad-checksum', 36);
    const badPayload = block(0, 1, 1);
    flip(badPayload, 3000, 0x10);
    expectFault(() => verifyBlockFile(badPayload, { blockBytes: B }), 'bad-checksum', 3000);
    const noMagic = block(0, 1, 1);
    noMagic[0] = 0x58;
    expectFault(() => verifyBlockFile(noMagic, { blockBytes: B }), 'bad-block', 0);
  });
});

describe('lastFsynced', () => {
  it('takes the last whole line of the mode and ignores kernel noise', () => {
    const text = [
      '[    0.000000] Linux version 6.1.0',
      'SNAPWL log started resume=0',
      'SNAPWL log fsynced=16\r',
      'SNAPWL blocks fsynced=99',
      '[    1.2] virtio_blk SNAPWL log fsynced=500',
      'SNAPWL log fsynced=32',
      'SNAPWL log fsynced=4x',
      'SNAPWL log fsync',
    ].join('\n');
    expect(lastFsynced(text, 'log')).toBe(32);
    expect(lastFsynced(text, 'blocks')).toBe(99);
    expect(lastFsynced('no workload here', 'log')).toBe(0);
  });
});
