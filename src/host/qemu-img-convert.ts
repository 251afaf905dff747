import type { DiskLayer } from '../contract';
import { assertSafePath } from '../fs/safe-path';
import { blockdevSpec } from './qemu-img';
import { parseQemuImgProgress, runTool } from '../process/tool-process';

export type ImageFormat = 'qcow2' | 'raw';

export interface ConvertOptions {
  outputFormat: ImageFormat;
  /** read an image a running QEMU holds open (qemu-img -U) */
  forceShare?: boolean;
  signal?: AbortSignal;
  onProgress?: (fraction: number) => void;
}

/** The argv of convertImage: the source chain spelt out layer by layer (blockdevSpec), never probed. */
export function convertArgs(layers: readonly DiskLayer[], destination: string, options: Pick<ConvertOptions, 'outputFormat' | 'forceShare'>): string[] {
  const args = ['convert', '-p', '-O', options.outputFormat];
  if (options.forceShare) args.push('-U');
  // Nova's default for qcow2 output: no compression, keep it fast and bit-identical in content.
  args.push(blockdevSpec(layers), assertSafePath(destination));
  return args;
}

/** Nova's extract_snapshot: flatten the chain (top layer first) into one image in the requested format. */
export async function convertImage(layers: readonly DiskLayer[], destination: string, options: ConvertOptions): Promise<void> {
  await runTool('qemu-img', convertArgs(layers, destination, options), {
    signal: options.signal,
    onStdout: (text) => {
      const fraction = parseQemuImgProgress(text);
      if (fraction !== undefined) options.onProgress?.(fraction);
    },
  });
}
