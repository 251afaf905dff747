// What a full snapshot's named upload (protocol 2) guarantees when its host worker dies mid-stream:
// the retry re-reads the disk and sends only the chunks the image service lacks. The bytes are the
// ones the service received, counted by the fault stack's proxy in front of it; what the image
// needs is read back from the image itself (its distinct chunks that are not all zeros, the only
// bytes a named upload sends).
import { createHash } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CHUNK_PUTS_IN_FLIGHT } from '../../src/host/named-upload';
import { NAMED_CHUNK_BYTES, type ImageClient } from '../../src/images/client';
import { runTool } from '../../src/process/tool-process';
import { downloadImage } from './image-bytes';

const MiB = 1024 * 1024;

/**
 * What the retry may send beyond what the service lacked: the chunks in flight at the kill (the
 * host's CHUNK_PUTS_IN_FLIGHT; a chunk cut short is refused and sent again), plus 1 MiB for the
 * names and the known-chunks questions of a window (a few KiB).
 */
export const RESEND_BOUND_BYTES = CHUNK_PUTS_IN_FLIGHT * NAMED_CHUNK_BYTES + MiB;

/** Bytes the service received for one run: before the kill, and from the new worker's start to the end. */
export interface ReceivedAroundKill {
  beforeKill: number;
  onRetry: number;
}

/** The bytes of the image's distinct chunks that are not all zeros: what a named upload of it sends once. */
export async function namedChunkBytes(images: ImageClient, imageId: string, scratchDir: string): Promise<number> {
  const format = (await images.get(imageId)).disk_format === 'raw' ? 'raw' : 'qcow2';
  const file = await downloadImage(images, imageId, scratchDir);
  const raw = join(scratchDir, `${imageId}.chunks.raw`);
  try {
    await runTool('qemu-img', ['convert', '-q', '-f', format, '-O', 'raw', file, raw]);
    const handle = await open(raw, 'r');
    try {
      const names = new Set<string>();
      let bytes = 0;
      const buf = Buffer.alloc(NAMED_CHUNK_BYTES);
      for (let at = 0; ; at += NAMED_CHUNK_BYTES) {
        const { bytesRead } = await handle.read(buf, 0, NAMED_CHUNK_BYTES, at);
        if (bytesRead === 0) break;
        const chunk = buf.subarray(0, bytesRead);
        if (chunk.every((b) => b === 0)) continue;
        const name = createHash('sha256').update(chunk).digest('hex');
        if (names.has(name)) continue;
        names.add(name);
        bytes += bytesRead;
      }
      return bytes;
    } finally {
      await handle.close();
    }
  } finally {
    await rm(file, { force: true });
    await rm(raw, { force: true });
  }
}

/**
 * The kill landed mid-stream (the service had part of the image, not all of it), and the retry
 * sent no more than the rest plus RESEND_BOUND_BYTES. Each broken rule is one readable line.
 */
export function resendViolations(received: ReceivedAroundKill, imageChunkBytes: number): string[] {
  const mib = (n: number): string => `${(n / MiB).toFixed(2)} MiB`;
  const { beforeKill, onRetry } = received;
  if (beforeKill <= 0) return ['the kill landed before the stream sent anything'];
  if (beforeKill >= imageChunkBytes) return [`the kill landed after the stream had sent all of the image's ${mib(imageChunkBytes)} of chunks (${mib(beforeKill)})`];
  const lacking = imageChunkBytes - beforeKill;
  if (onRetry > lacking + RESEND_BOUND_BYTES) {
    return [`the retry sent ${mib(onRetry)}; the service lacked ${mib(lacking)} of the image's ${mib(imageChunkBytes)} (bound ${mib(RESEND_BOUND_BYTES)} more)`];
  }
  return [];
}
