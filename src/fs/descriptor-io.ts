// Small-file writes and syncs on plain descriptors (the callback API, promisified). A chunk store
// makes and syncs thousands of 256 KiB files per GiB; fs/promises' FileHandle objects cost the
// event loop several times the CPU per call of a plain descriptor (docs/benchmarks.md, "One-pass
// live, pipelined").
import { close, fsync, futimes, open, write } from 'node:fs';
import { promisify } from 'node:util';

const openFd = promisify(open);
const writeFd = promisify(write);
const futimesFd = promisify(futimes);
const fsyncFd = promisify(fsync);
const closeFd = promisify(close);

/** fsync of a file or a directory by its path. */
export async function syncPath(path: string): Promise<void> {
  const fd = await openFd(path, 'r');
  try {
    await fsyncFd(fd);
  } finally {
    await closeFd(fd);
  }
}

/** Writes `bytes` into a new file (refused when `path` exists), then sets its times to `times` when given; not synced. */
export async function writeNewFile(path: string, bytes: Uint8Array, options: { mode: number; times?: Date }): Promise<void> {
  const fd = await openFd(path, 'wx', options.mode);
  try {
    for (let at = 0; at < bytes.length; ) at += (await writeFd(fd, bytes, at, bytes.length - at)).bytesWritten;
    if (options.times !== undefined) await futimesFd(fd, options.times, options.times);
  } finally {
    await closeFd(fd);
  }
}
