import childProcess from 'node:child_process';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { GuestImageError, openGuestImage, withGuestImage } from '../../../src/testing/guest/guest-image-reader';
import { encodeLogRecord } from '../../../src/testing/guest/workload-format';
import { verifyAppendLog } from '../../../src/testing/guest/workload-verifiers';

const execFileAsync = promisify(execFile);

let dir: string;
let scratch: string;
let raw: string;
let qcow2: string;
const log = Buffer.concat(Array.from({ length: 300 }, (_, i) => encodeLogRecord(i + 1)));

async function scratchFiles(): Promise<string[]> {
  return readdir(scratch);
}

async function copyWithEdit(from: string, to: string, edit: (img: Buffer) => void): Promise<void> {
  const img = await readFile(from);
  edit(img);
  await writeFile(to, img);
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'guest-image-'));
  scratch = path.join(dir, 'scratch');
  await mkdir(scratch);
  const content = path.join(dir, 'content');
  await mkdir(content);
  // Cut the last record short, as a crash-consistent copy of a running append would.
  await writeFile(path.join(content, 'log'), log.subarray(0, log.length - 77));
  raw = path.join(dir, 'disk.raw');
  qcow2 = path.join(dir, 'disk.qcow2');
  await execFileAsync('mkfs.ext4', ['-q', '-F', '-d', content, raw, '16M']);
  await execFileAsync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, qcow2]);
}, 60_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

afterEach(() => {
  jest.restoreAllMocks();
});

describe('guest image reader', () => {
  it.each([
    ['qcow2', () => qcow2],
    ['raw', () => raw],
  ])('reads a file back byte for byte out of a %s image, and finds it clean', async (_format, image) => {
    const summary = await withGuestImage(image(), scratch, async (img) => {
      expect(img.journalReplayed).toBe(false);
      const report = await img.fsck();
      expect(report).toMatchObject({ clean: true, exitCode: 0 });
      expect(report.output).toMatch(/Pass 5/);
      const bytes = await img.readFile('log');
      expect(bytes.equals(log.subarray(0, log.length - 77))).toBe(true);
      return verifyAppendLog(bytes, { minRecords: 299 });
    });
    expect(summary).toEqual({ records: 299, trailingPartialBytes: 128 - 77 });
    expect(await scratchFiles()).toEqual([]);
  });

  it('replays a pending journal transaction before reading, on the copy, never the image', async () => {
    // A crash-consistent copy: /log's first block is garbage in place and right only in the journal.
    const dirty = path.join(dir, 'dirty.raw');
    const { stdout } = await execFileAsync('debugfs', ['-R', 'bmap /log 0', raw]);
    const block = Number(stdout.trim());
    let blockBytes = 0;
    await copyWithEdit(raw, dirty, (img) => {
      blockBytes = 1024 << img.readUInt32LE(1024 + 24);
      img.fill(0xee, block * blockBytes, (block + 1) * blockBytes);
    });
    const journaled = path.join(dir, 'journaled-block');
    await writeFile(journaled, log.subarray(0, blockBytes));
    const script = path.join(dir, 'journal-script');
    await writeFile(script, `jo\njw -b ${block} ${journaled}\njc\n`);
    await execFileAsync('debugfs', ['-w', '-f', script, dirty]);

    await withGuestImage(dirty, scratch, async (img) => {
      expect(img.journalReplayed).toBe(true);
      expect((await img.fsck()).clean).toBe(true);
      expect(verifyAppendLog(await img.readFile('log'), { minRecords: 299 }).records).toBe(299);
    });
    const handle = await open(dirty, 'r');
    const sb = Buffer.alloc(4);
    await handle.read(sb, 0, 4, 1024 + 0x60);
    await handle.close();
    expect(sb.readUInt32LE(0) & 0x4).toBe(0x4);
    expect(await scratchFiles()).toEqual([]);
  });

  it('reports a superblock with a broken magic as not clean, and cannot read from it', async () => {
    const broken = path.join(dir, 'broken.raw');
    await copyWithEdit(raw, broken, (img) => img.fill(0, 1024 + 56, 1024 + 58));
    const img = await openGuestImage(broken, scratch);
    try {
      const report = await img.fsck();
      expect(report.clean).toBe(false);
      expect(report.exitCode).toBe(4);
      expect(report.output).toMatch(/Bad magic number in super-block/);
      await expect(img.readFile('log')).rejects.toMatchObject({ name: 'GuestImageError', kind: 'dump-failed' });
    } finally {
      await img.dispose();
    }
    expect(await scratchFiles()).toEqual([]);
  });

  it('throws when e2fsck cannot check the image at all', async () => {
    const zeros = path.join(dir, 'zeros.raw');
    await writeFile(zeros, Buffer.alloc(1024 * 1024));
    await expect(withGuestImage(zeros, scratch, (img) => img.fsck())).rejects.toMatchObject({ kind: 'fsck-failed' });
    expect(await scratchFiles()).toEqual([]);
  });

  it('names a missing guest file', async () => {
    await withGuestImage(qcow2, scratch, async (img) => {
      const err = await img.readFile('blocks').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GuestImageError);
      expect((err as GuestImageError).kind).toBe('file-not-found');
      expect((err as GuestImageError).message).toContain('/blocks');
    });
    expect(await scratchFiles()).toEqual([]);
  });

  it('refuses an unsafe guest file name before any process runs', async () => {
    await withGuestImage(raw, scratch, async (img) => {
      const spawn = jest.spyOn(childProcess, 'spawn');
      for (const name of ['../etc/passwd', 'a b', 'log; rm', '..', '', 'x'.repeat(65), 'dir/log']) {
        await expect(img.readFile(name)).rejects.toMatchObject({ kind: 'unsafe-name' });
      }
      expect(spawn).not.toHaveBeenCalled();
    });
  });

  it('refuses unsafe host paths', async () => {
    await expect(openGuestImage('relative.qcow2', scratch)).rejects.toMatchObject({ name: 'HostPathError' });
    await expect(openGuestImage(raw, `${scratch}/../x`)).rejects.toMatchObject({ name: 'HostPathError' });
  });
});
