// Thin wrappers over qemu-img / qemu-io. Arguments are argv arrays built from validated paths and
// numbers only: no shell ever sees them.
import { z } from 'zod';
import type { DiskLayer } from '../contract';
import { assertSafePath } from '../fs/safe-path';
import { parseToolJson, runTool, runToolOutput, ToolFailed, ToolOutputInvalid } from '../process/tool-process';

export interface Qcow2Options {
  /** virtual size; without it the image follows its backing file's */
  sizeBytes?: number;
  /** an overlay on this file */
  backing?: string;
  /** format of `backing` (default qcow2), written into the header so nothing probes it */
  backingFormat?: DiskLayer['format'];
  signal?: AbortSignal;
}

/** Creates a qcow2 image: a blank one of `sizeBytes`, or an overlay on `backing`. */
export async function createQcow2(file: string, opts: Qcow2Options): Promise<void> {
  const args = ['create', '-q', '-f', 'qcow2'];
  if (opts.backing !== undefined) args.push('-b', assertSafePath(opts.backing), '-F', opts.backingFormat ?? 'qcow2');
  // Given the size, qemu-img need not open the backing file (nor follow the chain under it): -u.
  if (opts.backing !== undefined && opts.sizeBytes !== undefined) args.push('-u');
  args.push(assertSafePath(file));
  if (opts.sizeBytes !== undefined) {
    if (!Number.isSafeInteger(opts.sizeBytes) || opts.sizeBytes <= 0) throw new RangeError(`bad image size ${opts.sizeBytes}`);
    args.push(String(opts.sizeBytes));
  } else if (opts.backing === undefined) {
    throw new RangeError('a qcow2 image without backing file needs a size');
  }
  await runTool('qemu-img', args, { signal: opts.signal });
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

export async function writePattern(file: string, p: Pattern, format: DiskLayer['format'] = 'qcow2'): Promise<void> {
  await runTool('qemu-io', ['-f', format, '-c', patternArgs('write', p), assertSafePath(file)]);
}

/**
 * Whether the image (read through its backing chain) holds `p`. `forceShare` reads an image a
 * running QEMU holds locked (qemu-io -U), the way an operator would inspect a live disk.
 */
export async function hasPattern(file: string, p: Pattern, opts: { forceShare?: boolean } = {}): Promise<boolean> {
  const args = ['-f', 'qcow2', '-r'];
  if (opts.forceShare) args.push('-U');
  args.push('-c', patternArgs('read', p), assertSafePath(file));
  // qemu-io reports a mismatch in its output, with exit 0 or 1 depending on its version.
  const r = await runToolOutput('qemu-io', args, { okExitCodes: [0, 1] });
  const mismatch = /Pattern verification failed/.test(r.stdout + r.stderr);
  if (r.exitCode !== 0 && !mismatch) throw new ToolFailed('qemu-io', r.exitCode, r.stderr);
  return r.exitCode === 0 && !mismatch;
}

/** `qemu-img compare`: true when both images present identical guest-visible content. */
export async function imagesIdentical(a: string, b: string, opts: { forceShare?: boolean; format?: 'qcow2' | 'raw' } = {}): Promise<boolean> {
  const args = ['compare', '-q'];
  if (opts.forceShare) args.push('-U');
  const format = opts.format ?? 'qcow2';
  args.push('-f', format, '-F', format, assertSafePath(a), assertSafePath(b));
  // exit 1 is the answer "they differ"; 2 and up are failures to compare
  const r = await runToolOutput('qemu-img', args, { okExitCodes: [0, 1] });
  return r.exitCode === 0;
}

// What we read of `qemu-img info --output=json`; the rest of its keys vary by format and version.
const QemuImgInfoSchema = z.object({
  format: z.string().min(1),
  'virtual-size': z.number().int().nonnegative(),
  'backing-filename': z.string().optional(),
  'full-backing-filename': z.string().optional(),
  'backing-filename-format': z.string().optional(),
  'format-specific': z.object({ data: z.object({ 'data-file': z.string().optional() }).passthrough().optional() }).passthrough().optional(),
});

export interface ImageInfo {
  format: string;
  virtualSize: number;
  backingFilename: string | null;
  /** absolute path of the backing file, as qemu-img resolved it */
  fullBackingFilename: string | null;
  backingFormat: string | null;
  /** a qcow2 image's external data file, when its header names one */
  dataFile: string | null;
}

/**
 * `qemu-img info -f <format>` of one image, its backing file not opened (info never opens it
 * without --backing-chain). The format is the caller's to know, never probed.
 */
export async function imageInfo(file: string, format: DiskLayer['format'], opts: { forceShare?: boolean } = {}): Promise<ImageInfo> {
  const args = ['info', '--output=json', '-f', format];
  if (opts.forceShare) args.push('-U');
  args.push(assertSafePath(file));
  const { stdout } = await runToolOutput('qemu-img', args);
  const info = parseToolJson('qemu-img info', QemuImgInfoSchema, stdout);
  if (info.format !== format) throw new ToolOutputInvalid('qemu-img info', `asked for ${format}, it read ${info.format}`);
  return {
    format: info.format,
    virtualSize: info['virtual-size'],
    backingFilename: info['backing-filename'] ?? null,
    fullBackingFilename: info['full-backing-filename'] ?? null,
    backingFormat: info['backing-filename-format'] ?? null,
    dataFile: info['format-specific']?.data?.['data-file'] ?? null,
  };
}

type BlockdevNode = { driver: DiskLayer['format']; file: { driver: 'file'; filename: string }; backing?: BlockdevNode | null };

/**
 * A whole chain spelt out for QEMU's tools as a `json:` filename: each layer's format driver and
 * file, each qcow2 layer's backing given (the next layer) or none (null), so no tool probes a
 * format or follows a backing name from a header. Top layer first.
 */
export function blockdevSpec(layers: readonly DiskLayer[]): string {
  if (layers.length === 0) throw new RangeError('a disk chain has at least one layer');
  let below: BlockdevNode | null = null;
  for (const layer of [...layers].reverse()) {
    if (layer.format !== 'qcow2' && layer.format !== 'raw') throw new RangeError(`unknown layer format ${JSON.stringify(layer.format)}`);
    if (below !== null && layer.format === 'raw') throw new RangeError(`raw layer ${layer.path} cannot have a backing file`);
    const node: BlockdevNode = { driver: layer.format, file: { driver: 'file', filename: assertSafePath(layer.path) } };
    if (layer.format === 'qcow2') node.backing = below;
    below = node;
  }
  return `json:${JSON.stringify(below)}`;
}
