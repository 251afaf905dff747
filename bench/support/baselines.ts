// The two references the engine is measured against, both without Temporal:
//  - the floor: one `qemu-img convert` of the live disk, then a copy of the result into the image
//    store's files directory (fsynced, as the image service fsyncs before it answers);
//  - Nova's own path: convert to a temp file under the snapshots directory, then upload that file
//    through the image API (GlanceHttpClient, streamed), then delete the temp file.
import { copyFile, open, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { DiskLayer } from '../../src/contract';
import { convertImage } from '../../src/host/qemu-img-convert';
import type { ImageClient } from '../../src/images/client';
import { timed } from './table';

export interface BaselineRun {
  ms: number;
  /** bytes of the produced image */
  size: number;
}

async function fsyncFile(path: string): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Floor: convert + copy. Returns the stored copy's path; the caller verifies and removes it. */
export async function bareConvertAndCopy(disk: readonly DiskLayer[], workDir: string, storeFilesDir: string, tag: string): Promise<BaselineRun & { storedPath: string }> {
  const converted = join(workDir, `bare-${tag}.qcow2`);
  const storedPath = join(storeFilesDir, `bench-floor-${tag}`);
  const { ms } = await timed(async () => {
    await convertImage(disk, converted, { outputFormat: 'qcow2', forceShare: true });
    await copyFile(converted, storedPath);
    await fsyncFile(storedPath);
    await rm(converted, { force: true });
  });
  return { ms, size: (await stat(storedPath)).size, storedPath };
}

/** Nova-style: convert to a temp file, upload it through the image API, remove the temp file. */
export async function novaStyleConvertUpload(disk: readonly DiskLayer[], workDir: string, images: ImageClient, tag: string): Promise<BaselineRun & { imageId: string }> {
  const converted = join(workDir, `nova-${tag}.qcow2`);
  let imageId = '';
  const { ms } = await timed(async () => {
    const image = await images.create({ name: `bench-nova-style-${tag}`, disk_format: 'qcow2', container_format: 'bare', properties: { image_type: 'snapshot' } });
    imageId = image.id;
    try {
      await convertImage(disk, converted, { outputFormat: 'qcow2', forceShare: true });
      await images.upload(image.id, converted);
    } finally {
      await rm(converted, { force: true });
    }
  });
  const uploaded = await images.get(imageId);
  if (uploaded.status !== 'active') throw new Error(`nova-style image ${imageId} ended ${uploaded.status}`);
  return { ms, size: uploaded.size ?? 0, imageId };
}
