// A read-only NBD export of a stopped disk chain (cold and shut-off snapshots), so that the cold
// path reads the disk through the same NBD reader as the live path's backup job. It is a
// `qemu-nbd --fork` daemon: the parent returns once the socket listens, and the server runs in a
// session of its own (daemon(3) calls setsid), so it is not killed with the host worker's process
// group and a restarted worker re-attaches to it by its socket and pid file.
//
// A pid is only ever signalled after /proc says it is a live qemu-nbd serving our socket: a pid
// file outlives its process, and the kernel hands its number to the next process.
import { constants } from 'node:fs';
import { open, readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import { z } from 'zod';
import { issueText } from '../config/validation';
import type { DiskLayer } from '../contract';
import { assertSafePath } from '../fs/safe-path';
import { blockdevSpec } from './qemu-img';
import { runTool, ToolFailed } from '../process/tool-process';
import { errorMessage, errnoCode } from '../contract';

export type NbdExportErrorCode = 'invalid-spec' | 'busy' | 'start-failed' | 'not-verified' | 'stop-failed';

/** A read-only export that could not be started, found or stopped; `code` says which. */
export class NbdExportError extends Error {
  override readonly name = 'NbdExportError';
  constructor(
    readonly code: NbdExportErrorCode,
    message: string,
    /** false for a spec we refuse by its spelling (the same input is refused again) */
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The NBD export names we hand out (the disk's target, "vda"): the same alphabet as backup-xml's names. */
const EXPORT_NAME_RE = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$/;
/** sun_path is 108 bytes with the NUL: qemu-nbd cannot listen on a longer path. */
const UNIX_SOCKET_PATH_MAX = 107;

const LayerSchema = z.object({ path: z.string(), format: z.enum(['qcow2', 'raw']) });
const CommonSpecSchema = z.object({
  socketPath: z.string(),
  pidFile: z.string(),
  exportName: z.string().regex(EXPORT_NAME_RE, 'an export name of [A-Za-z0-9._-], at most 64 characters, not starting with a dot'),
  /** clients served at once (--shared); the reader's connections plus the allocation-map one */
  maxClients: z.number().int().min(1).max(64).default(8),
  /** host page cache: see pickCacheMode */
  cache: z.enum(['none', 'writeback']).optional(),
});
const StartSpecSchema = z.union([
  CommonSpecSchema.extend({ diskPath: z.string(), format: LayerSchema.shape.format, backing: z.array(LayerSchema) }),
  CommonSpecSchema.extend({ blockdev: z.string().startsWith('json:{').max(8192) }),
]);

/** A file disk and its backing chain, each layer with its format. */
export interface FileImageSpec {
  diskPath: string;
  /** always stated: the image is never probed (a raw disk could pose as qcow2) */
  format: DiskLayer['format'];
  /** the layers below the disk, nearest first, as libvirt records them ([] for none): no backing name is taken from a header */
  backing: readonly DiskLayer[];
}

/**
 * A disk spelt out as a `json:` filename that names every node's driver (an RBD image:
 * src/host/disk-source/rbd-source.ts), so that qemu-nbd probes nothing. The builder checks the parts.
 */
export interface BlockdevImageSpec {
  blockdev: string;
}

export type ReadOnlyExportSpec = (FileImageSpec | BlockdevImageSpec) & {
  socketPath: string;
  pidFile: string;
  exportName: string;
  maxClients?: number;
  /** default: 'none' where the disk's filesystem supports O_DIRECT, else 'writeback' */
  cache?: 'none' | 'writeback';
  signal?: AbortSignal;
};

export interface ExportLocation {
  socketPath: string;
  pidFile: string;
}

function checkedLocation(loc: ExportLocation): ExportLocation {
  try {
    assertSafePath(loc.socketPath);
    assertSafePath(loc.pidFile);
  } catch (err) {
    throw new NbdExportError('invalid-spec', errorMessage(err), false, { cause: err });
  }
  if (Buffer.byteLength(loc.socketPath) > UNIX_SOCKET_PATH_MAX) {
    throw new NbdExportError('invalid-spec', `NBD socket path is ${Buffer.byteLength(loc.socketPath)} bytes, a unix socket allows ${UNIX_SOCKET_PATH_MAX}: ${loc.socketPath}`, false);
  }
  return loc;
}

/**
 * What qemu-nbd opens: every layer and its format spelt out (blockdevSpec), or a blockdev given
 * whole whose every node names its driver; nothing else: no --format probe of the disk, no backing
 * name taken from a header.
 */
export function exportedImage(s: FileImageSpec | BlockdevImageSpec): string {
  try {
    return 'blockdev' in s ? checkedBlockdev(s.blockdev) : blockdevSpec([{ path: s.diskPath, format: s.format }, ...s.backing]);
  } catch (err) {
    throw new NbdExportError('invalid-spec', errorMessage(err), false, { cause: err });
  }
}

/** A `json:` filename whose every node names its driver, as JSON; anything else is refused. */
function checkedBlockdev(spec: string): string {
  const nodes: unknown[] = [JSON.parse(spec.slice('json:'.length))];
  for (const node of nodes) {
    if (typeof node !== 'object' || node === null || typeof (node as { driver?: unknown }).driver !== 'string') throw new Error(`a blockdev node without a driver in ${spec}`);
    for (const child of ['file', 'backing'] as const) {
      const next = (node as Record<string, unknown>)[child];
      if (next !== undefined && next !== null) nodes.push(next);
    }
  }
  return spec;
}

export function readOnlyExportArgs(image: string, s: Pick<ReadOnlyExportSpec, 'exportName'> & { maxClients: number }, loc: ExportLocation, cache: 'none' | 'writeback'): string[] {
  return [
    '--read-only',
    '--persistent',
    `--shared=${s.maxClients}`,
    `--export-name=${s.exportName}`,
    `--socket=${loc.socketPath}`,
    `--pid-file=${loc.pidFile}`,
    `--cache=${cache}`,
    '--fork',
    image,
  ];
}

/**
 * Starts `qemu-nbd --read-only --persistent --fork` on `socketPath` and returns the daemon's pid.
 * Refuses (code 'busy') when a qemu-nbd already serves this socket or anything else answers on it:
 * qemu-nbd would unlink the path and take it over, cutting off the other server's clients.
 */
export async function startReadOnlyExport(spec: ReadOnlyExportSpec): Promise<{ pid: number }> {
  const parsed = StartSpecSchema.safeParse(spec);
  if (!parsed.success) throw new NbdExportError('invalid-spec', `invalid read-only export: ${issueText(parsed.error)}`, false);
  const s = parsed.data;
  const loc = checkedLocation({ socketPath: s.socketPath, pidFile: s.pidFile });
  const image = exportedImage(s);
  const running = await findReadOnlyExport(loc);
  if (running !== undefined) throw new NbdExportError('busy', `qemu-nbd (pid ${running}) already serves ${loc.socketPath}`, true);
  if (await socketAnswers(loc.socketPath)) throw new NbdExportError('busy', `something else already listens on ${loc.socketPath}`, true);

  // A network image has no host page cache to spare: its reads bypass it (cache=none turns librbd's cache off).
  const args = readOnlyExportArgs(image, s, loc, s.cache ?? ('blockdev' in s ? 'none' : await pickCacheMode(s.diskPath)));
  try {
    // --fork: the parent exits 0 once the daemon listens, non-zero with the daemon's error otherwise.
    await runTool('qemu-nbd', args, { signal: spec.signal });
  } catch (err) {
    // Killed on abort, the parent may leave a daemon that got as far as listening, and a daemon
    // that failed to open the disk leaves the socket it had bound: neither may stay. Nothing served
    // this socket before (checked above), so what stop finds there is the one we started.
    await stopReadOnlyExport(loc).catch(() => undefined);
    if (err instanceof ToolFailed) throw new NbdExportError('start-failed', `qemu-nbd could not export ${'blockdev' in s ? s.blockdev : s.diskPath}: ${err.message}`, err.retryable, { cause: err });
    throw err;
  }
  const pid = await findReadOnlyExport(loc);
  if (pid === undefined) throw new NbdExportError('not-verified', `qemu-nbd exited 0 but no live qemu-nbd named in ${loc.pidFile} serves ${loc.socketPath}`, true);
  return { pid };
}

/**
 * Why the default is --cache=none: a snapshot reads the whole disk once, and through the host's
 * page cache that would evict the other guests' hot data for nothing (the reason Nova converts
 * with -t none); the NBD reader asks for large extents, so losing readahead costs little. tmpfs
 * and some network filesystems refuse O_DIRECT, and there qemu-nbd would fail to open the disk:
 * those get writeback, which Nova falls back to in the same case.
 */
export async function pickCacheMode(diskPath: string): Promise<'none' | 'writeback'> {
  try {
    const handle = await open(diskPath, constants.O_RDONLY | constants.O_DIRECT);
    await handle.close();
    return 'none';
  } catch (err) {
    if (errnoCode(err) === 'EINVAL') return 'writeback';
    // ENOENT, EACCES: qemu-nbd reports those itself, with its own words.
    return 'none';
  }
}

const PidFileSchema = z
  .string()
  .trim()
  .regex(/^\d{1,10}$/, 'a process id')
  .transform(Number)
  .pipe(z.number().int().min(2).max(2 ** 22));

/** /proc/<pid>/stat: "pid (comm) S ...", where comm may itself hold spaces and parentheses. */
const ProcStatSchema = z
  .string()
  .regex(/^\d+ \(.*\) [A-Za-z] /s, '/proc stat line')
  .transform((line) => line.slice(line.lastIndexOf(')') + 2, line.lastIndexOf(')') + 3));

async function readPidFile(pidFile: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(pidFile, 'utf8');
  } catch {
    return undefined;
  }
  const parsed = PidFileSchema.safeParse(text);
  return parsed.success ? parsed.data : undefined;
}

/** Running or sleeping, not a zombie waiting for its parent to reap it (its /proc entry stays until then). */
async function isLive(pid: number): Promise<boolean> {
  try {
    const state = ProcStatSchema.safeParse(await readFile(`/proc/${pid}/stat`, 'utf8'));
    return state.success && state.data !== 'Z' && state.data !== 'X';
  } catch {
    return false;
  }
}

/** Whether argv (from /proc/<pid>/cmdline) is a qemu-nbd listening on `socketPath`, in any of its spellings. */
export function isQemuNbdServing(argv: readonly string[], socketPath: string): boolean {
  if (argv.length === 0 || path.basename(argv[0] ?? '') !== 'qemu-nbd') return false;
  return argv.some((a, i) => a === `--socket=${socketPath}` || ((a === '--socket' || a === '-k') && argv[i + 1] === socketPath) || a === `-k${socketPath}`);
}

async function verifiedPid(pid: number, socketPath: string): Promise<boolean> {
  if (!(await isLive(pid))) return false;
  let cmdline: string;
  try {
    cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return false;
  }
  const argv = cmdline.split('\0');
  if (argv.at(-1) === '') argv.pop();
  return isQemuNbdServing(argv, socketPath);
}

/** The pid of the live qemu-nbd the pid file names, when it serves `socketPath`; else undefined. */
export async function findReadOnlyExport(loc: ExportLocation): Promise<number | undefined> {
  const { socketPath, pidFile } = checkedLocation(loc);
  const pid = await readPidFile(pidFile);
  if (pid === undefined) return undefined;
  return (await verifiedPid(pid, socketPath)) ? pid : undefined;
}

export interface StopOptions {
  /** how long SIGTERM gets before SIGKILL (default 5 s) */
  graceMs?: number;
}

/**
 * Stops the verified qemu-nbd (SIGTERM, then SIGKILL after `graceMs`) and removes its socket and
 * pid file. Idempotent. A socket that something else still answers on (a backup job's QEMU on the
 * same path) is left alone; only a dead one is removed.
 */
export async function stopReadOnlyExport(loc: ExportLocation, options: StopOptions = {}): Promise<{ stopped: boolean }> {
  const { socketPath, pidFile } = checkedLocation(loc);
  const graceMs = options.graceMs ?? 5_000;
  const pid = await findReadOnlyExport(loc);
  if (pid !== undefined) {
    signal(pid, 'SIGTERM');
    if (!(await waitUntilGone(pid, socketPath, graceMs))) {
      // Checked again right before: in the grace period the pid may have ended and been reused.
      if (await verifiedPid(pid, socketPath)) signal(pid, 'SIGKILL');
      if (!(await waitUntilGone(pid, socketPath, 2_000))) throw new NbdExportError('stop-failed', `qemu-nbd (pid ${pid}) on ${socketPath} survived SIGKILL`, true);
    }
  }
  if (pid !== undefined || !(await socketAnswers(socketPath))) await rm(socketPath, { force: true });
  // Whatever it named is not a qemu-nbd on our socket any more: the file is stale.
  await rm(pidFile, { force: true });
  return { stopped: pid !== undefined };
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if (errnoCode(err) !== 'ESRCH') throw err;
  }
}

async function waitUntilGone(pid: number, socketPath: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!(await verifiedPid(pid, socketPath))) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** True when a server accepts a connection on the unix socket; a stale socket file refuses it. */
export function socketAnswers(socketPath: string, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ path: socketPath });
    const done = (answer: boolean): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(answer);
    };
    // A listener too busy to accept within the bound still holds the path: count it as answering.
    const timer = setTimeout(() => done(true), timeoutMs);
    sock.once('connect', () => done(true));
    sock.once('error', (err: NodeJS.ErrnoException) => done(err.code !== 'ECONNREFUSED' && err.code !== 'ENOENT' && err.code !== 'ENOTSOCK'));
  });
}
