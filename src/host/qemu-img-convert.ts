import { assertSafePath } from './qemu-img';
import { parseQemuImgProgress, runTool } from './tool-process';

export type ImageFormat = 'qcow2' | 'raw';

/** A source this driver cannot extract (lvm, rbd): the same disk is refused again, so never retried. */
export class UnsupportedSourceFormat extends Error {
  override readonly name = 'UnsupportedSourceFormat';
  readonly retryable = false;
  constructor(readonly sourceFormat: string) {
    super(`unsupported source format ${JSON.stringify(sourceFormat)}`);
  }
}

export interface ConvertOptions {
  sourceFormat: string;
  outputFormat: ImageFormat;
  /** read an image a running QEMU holds open (qemu-img -U) */
  forceShare?: boolean;
  signal?: AbortSignal;
  onProgress?: (fraction: number) => void;
}

const SOURCE_FORMATS = new Set(['qcow2', 'raw']);

/** Nova's extract_snapshot: flatten the backing chain into one image in the requested format. */
export async function convertImage(source: string, destination: string, options: ConvertOptions): Promise<void> {
  if (!SOURCE_FORMATS.has(options.sourceFormat)) throw new UnsupportedSourceFormat(options.sourceFormat);
  const args = ['convert', '-p', '-f', options.sourceFormat, '-O', options.outputFormat];
  if (options.forceShare) args.push('-U');
  // Nova's default for qcow2 output: no compression, keep it fast and bit-identical in content.
  args.push(assertSafePath(source), assertSafePath(destination));
  await runTool('qemu-img', args, {
    signal: options.signal,
    onStdout: (text) => {
      const fraction = parseQemuImgProgress(text);
      if (fraction !== undefined) options.onProgress?.(fraction);
    },
  });
}
