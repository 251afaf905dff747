// Crash-safe file replacement: readers see either the old or the new content, never a torn
// write, because the new bytes are fsynced under a temporary name and then renamed over.
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { syncPath } from './descriptor-io';

export const TEMP_SUFFIX = '.tmp';

export function fsyncDirectory(dir: string): Promise<void> {
  return fsyncPath(dir);
}

/** fsync of a file or a directory by its path. */
export const fsyncPath = syncPath;

export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`);
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (err) {
    await handle.close();
    await rm(temp, { force: true });
    throw err;
  }
  await handle.close();
  try {
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  // The rename itself lives in the directory entry; without this it can be lost on power failure.
  await fsyncDirectory(dirname(path));
}
