// Host-side reading of a guest's ext4 data disk out of a snapshot image, without mounting it (no
// root, no loop devices): qemu-img flattens it to a raw scratch copy, e2fsck judges it, debugfs
// copies single files out. The scratch copy is always ours, never the image under test, because a
// crash-consistent ext4 needs its journal replayed before either tool sees what a mount would.
import { randomBytes } from 'node:crypto';
import { open, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { assertSafePath } from '../../fs/safe-path';
import { runToolOutput, ToolFailed } from '../../process/tool-process';

export type GuestImageFaultKind = 'unsafe-name' | 'file-not-found' | 'dump-failed' | 'fsck-failed' | 'journal-replay-failed';

export class GuestImageError extends Error {
  override readonly name = 'GuestImageError';
  constructor(
    readonly kind: GuestImageFaultKind,
    message: string,
    readonly output = '',
  ) {
    super(message);
  }
}

export interface FsckReport {
  /** e2fsck -fn found nothing to fix (exit 0) */
  clean: boolean;
  exitCode: number;
  /** stdout then stderr of e2fsck */
  output: string;
}

export interface GuestImage {
  /** the raw scratch copy the tools read */
  readonly rawPath: string;
  /** the copy's ext4 had needs_recovery set and its journal was replayed first */
  readonly journalReplayed: boolean;
  fsck(): Promise<FsckReport>;
  /** The bytes of /<name> in the guest filesystem's root directory. */
  readFile(name: string): Promise<Buffer>;
  /** Removes the scratch copy and anything dumped; safe to call twice. */
  dispose(): Promise<void>;
}

export interface GuestImageOptions {
  /** default: qcow2 when the image starts with qcow2's magic, else raw */
  format?: 'qcow2' | 'raw';
  signal?: AbortSignal;
}

const GUEST_NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;
const QCOW2_MAGIC = Buffer.from([0x51, 0x46, 0x49, 0xfb]);
const EXT4_SUPERBLOCK_OFFSET = 1024;
const EXT4_MAGIC = 0xef53;
const EXT4_INCOMPAT_RECOVER = 0x4;

/** Refuses a guest file name before it can reach debugfs's command line. */
export function assertGuestFileName(name: string): string {
  if (typeof name !== 'string' || !GUEST_NAME_RE.test(name) || name === '.' || name === '..') {
    throw new GuestImageError('unsafe-name', `unsafe guest file name: ${JSON.stringify(name)}`);
  }
  return name;
}

async function readAt(file: string, position: number, length: number): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buf, 0, length, position);
    return buf.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

async function detectFormat(image: string): Promise<'qcow2' | 'raw'> {
  return (await readAt(image, 0, QCOW2_MAGIC.length)).equals(QCOW2_MAGIC) ? 'qcow2' : 'raw';
}

/** Whether the superblock says the journal holds transactions a mount would replay. */
async function needsJournalRecovery(raw: string): Promise<boolean> {
  const sb = await readAt(raw, EXT4_SUPERBLOCK_OFFSET, 1024);
  if (sb.length < 0x64 || sb.readUInt16LE(56) !== EXT4_MAGIC) return false; // e2fsck will say what is wrong
  return (sb.readUInt32LE(0x60) & EXT4_INCOMPAT_RECOVER) !== 0;
}

/** Runs a tool whose non-zero exits carry meaning; resolves with its exit code and all it printed. */
async function runWithExitCode(tool: string, args: string[], signal?: AbortSignal): Promise<{ exitCode: number; output: string }> {
  // onStdout keeps what ToolFailed drops: e2fsck reports its findings on stdout, then exits 4.
  let stdout = '';
  const onStdout = (text: string): void => {
    stdout += text;
  };
  try {
    const r = await runToolOutput(tool, args, { signal, onStdout });
    return { exitCode: 0, output: r.stdout + r.stderr };
  } catch (e) {
    if (e instanceof ToolFailed && e.exitCode !== null) return { exitCode: e.exitCode, output: stdout + e.stderr };
    throw e;
  }
}

function scratchName(scratchDir: string, suffix: string): string {
  return assertSafePath(path.join(scratchDir, `guest-${randomBytes(6).toString('hex')}${suffix}`));
}

export async function openGuestImage(image: string, scratchDir: string, options: GuestImageOptions = {}): Promise<GuestImage> {
  assertSafePath(image);
  assertSafePath(scratchDir);
  const format = options.format ?? (await detectFormat(image));
  const rawPath = scratchName(scratchDir, '.raw');
  const owned = new Set<string>([rawPath]);
  const dispose = async (): Promise<void> => {
    await Promise.all([...owned].map((f) => rm(f, { force: true })));
    owned.clear();
  };
  try {
    // -f always explicit: a raw guest disk whose first bytes look like qcow2 must not be probed as one.
    await runToolOutput('qemu-img', ['convert', '-q', '-f', format, '-O', 'raw', image, rawPath], { signal: options.signal });
    const journalReplayed = await needsJournalRecovery(rawPath);
    if (journalReplayed) {
      const replay = await runWithExitCode('e2fsck', ['-E', 'journal_only', '-p', rawPath], options.signal);
      if (replay.exitCode >= 4) throw new GuestImageError('journal-replay-failed', `e2fsck journal replay exited ${replay.exitCode}`, replay.output);
    }
    return {
      rawPath,
      journalReplayed,
      fsck: () => fsckRaw(rawPath, options.signal),
      readFile: async (name) => {
        const out = await dumpFile(rawPath, assertGuestFileName(name), scratchName(scratchDir, '.dump'), owned, options.signal);
        try {
          return await readFile(out);
        } finally {
          await rm(out, { force: true });
          owned.delete(out);
        }
      },
      dispose,
    };
  } catch (e) {
    await dispose();
    throw e;
  }
}

/** Opens, runs `fn`, and always removes the scratch files. */
export async function withGuestImage<T>(image: string, scratchDir: string, fn: (img: GuestImage) => Promise<T>, options: GuestImageOptions = {}): Promise<T> {
  const img = await openGuestImage(image, scratchDir, options);
  try {
    return await fn(img);
  } finally {
    await img.dispose();
  }
}

/** e2fsck -fn: 0 clean, 1..7 problems it was told not to fix, 8 and up it could not check at all. */
async function fsckRaw(rawPath: string, signal?: AbortSignal): Promise<FsckReport> {
  const r = await runWithExitCode('e2fsck', ['-f', '-n', rawPath], signal);
  if (r.exitCode >= 8) throw new GuestImageError('fsck-failed', `e2fsck could not check ${rawPath} (exit ${r.exitCode})`, r.output);
  return { clean: r.exitCode === 0, exitCode: r.exitCode, output: r.output };
}

/** Lines debugfs prints on success too. */
const DEBUGFS_BANNER_RE = /^debugfs \d+\.\d+/;

async function dumpFile(rawPath: string, name: string, out: string, owned: Set<string>, signal?: AbortSignal): Promise<string> {
  owned.add(out);
  await rm(out, { force: true });
  // debugfs reports most failures on stderr and still exits 0, so stderr is the verdict.
  const r = await runWithExitCode('debugfs', ['-R', `dump -p /${name} ${out}`, rawPath], signal);
  const complaints = r.output
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !DEBUGFS_BANNER_RE.test(l));
  if (complaints.some((l) => /File not found/i.test(l))) throw new GuestImageError('file-not-found', `/${name} is not in the guest filesystem`, r.output);
  if (r.exitCode !== 0 || complaints.length > 0) throw new GuestImageError('dump-failed', `debugfs could not dump /${name}: ${complaints.join('; ')}`, r.output);
  const st = await stat(out).catch(() => undefined);
  if (!st?.isFile()) throw new GuestImageError('dump-failed', `debugfs wrote no file for /${name}`, r.output);
  return out;
}
