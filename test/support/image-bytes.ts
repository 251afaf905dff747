import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { ImageClient } from '../../src/images/client';

/** Downloads an image into `dir` (as an operator would with `glance image-download`). */
export async function downloadImage(images: ImageClient, imageId: string, dir: string): Promise<string> {
  const path = join(dir, `${imageId}.download`);
  await pipeline(await images.download(imageId), createWriteStream(path));
  return path;
}
