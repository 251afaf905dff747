// Thin wrappers over qemu-img / qemu-io. Arguments are argv arrays built from validated paths and
// numbers only: no shell ever sees them.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Absolute, normalised, and limited to characters that are safe in argv and in domain XML. */
const SAFE_PATH_RE = /^\/[A-Za-z0-9._/-]*$/;

export class HostPathError extends Error {
  override readonly name = 'HostPathError';
}

export function assertSafePath(p: string): string {
  if (typeof p !== 'string' || !SAFE_PATH_RE.test(p) || path.normalize(p) !== p || p.split('/').includes('..') || p.length > 4000) {
    throw new HostPathError(`unsafe or non-canonical path: ${JSON.stringify(p)}`);
  }
  return p;
}

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(tool: string, args: string[]): Promise<ToolResult> {
  try {
    const { stdout, stderr } = await execFileAsync(tool, args, { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { code?: number | string; stdout?: string; stderr?: string };
    if (typeof err.code !== 'number') throw new Error(`cannot run ${tool}: ${err.message}`, { cause: e });
    return { code: err.code, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

async function runOk(tool: string, args: string[]): Promise<string> {
  const r = await run(tool, args);
  if (r.code !== 0) throw new Error(`${tool} ${args.join(' ')} exited with ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Creates a qcow2 image; with `backing`, an overlay whose virtual size follows the backing file. */
export async function createQcow2(file: string, opts: { sizeBytes?: number; backing?: string }): Promise<void> {
  const args = ['create', '-q', '-f', 'qcow2'];
  if (opts.backing !== undefined) args.push('-b', assertSafePath(opts.backing), '-F', 'qcow2');
  args.push(assertSafePath(file));
  if (opts.sizeBytes !== undefined) {
    if (!Number.isSafeInteger(opts.sizeBytes) || opts.sizeBytes <= 0) throw new RangeError(`bad image size ${opts.sizeBytes}`);
    args.push(String(opts.sizeBytes));
  } else if (opts.backing === undefined) {
    throw new RangeError('a qcow2 image without backing file needs a size');
  }
  await runOk('qemu-img', args);
}

export interface Pattern {
  /** Byte value written/expected, 0..255. */
  byte: number;
  offset: number;
  length: number;
}

function patternArgs(op: 'write' | 'read', p: Pattern): string {
  if (!Number.isInteger(p.byte) || p.byte < 0 || p.byte > 255) throw new RangeError(`bad pattern byte ${p.byte}`);
  if (!Number.isSafeInteger(p.offset) || p.offset < 0 || !Number.isSafeInteger(p.length) || p.length <= 0) throw new RangeError('bad pattern range');
  return `${op} -P 0x${p.byte.toString(16)} ${p.offset} ${p.length}`;
}

export async function writePattern(file: string, p: Pattern): Promise<void> {
  await runOk('qemu-io', ['-f', 'qcow2', '-c', patternArgs('write', p), assertSafePath(file)]);
}

/**
 * Whether the image (read through its backing chain) holds `p`. `forceShare` reads an image a
 * running QEMU holds locked (qemu-io -U), the way an operator would inspect a live disk.
 */
export async function hasPattern(file: string, p: Pattern, opts: { forceShare?: boolean } = {}): Promise<boolean> {
  const args = ['-f', 'qcow2', '-r'];
  if (opts.forceShare) args.push('-U');
  args.push('-c', patternArgs('read', p), assertSafePath(file));
  const r = await run('qemu-io', args);
  if (r.code !== 0 && !/Pattern verification failed/.test(r.stdout + r.stderr)) throw new Error(`qemu-io failed: ${r.stderr.trim()}`);
  return r.code === 0 && !/Pattern verification failed/.test(r.stdout + r.stderr);
}

/** `qemu-img compare`: true when both images present identical guest-visible content. */
export async function imagesIdentical(a: string, b: string, opts: { forceShare?: boolean } = {}): Promise<boolean> {
  const args = ['compare', '-q'];
  if (opts.forceShare) args.push('-U');
  args.push('-f', 'qcow2', '-F', 'qcow2', assertSafePath(a), assertSafePath(b));
  const r = await run('qemu-img', args);
  if (r.code === 0) return true;
  if (r.code === 1) return false;
  throw new Error(`qemu-img compare failed (${r.code}): ${r.stderr.trim()}`);
}

export interface ImageInfo {
  format: string;
  virtualSize: number;
  backingFilename: string | null;
  /** absolute path of the backing file, as qemu-img resolved it */
  fullBackingFilename: string | null;
  backingFormat: string | null;
}

export async function imageInfo(file: string, opts: { forceShare?: boolean } = {}): Promise<ImageInfo> {
  const args = ['info', '--output=json'];
  if (opts.forceShare) args.push('-U');
  args.push(assertSafePath(file));
  const j = JSON.parse(await runOk('qemu-img', args)) as Record<string, unknown>;
  const text = (key: string): string | null => (typeof j[key] === 'string' ? j[key] : null);
  return {
    format: String(j.format),
    virtualSize: Number(j['virtual-size']),
    backingFilename: text('backing-filename'),
    fullBackingFilename: text('full-backing-filename'),
    backingFormat: text('backing-filename-format'),
  };
}
