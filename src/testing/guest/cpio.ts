// The initramfs archive: cpio "newc" (SVR4, no CRC), the one format the kernel unpacks. Pure: the
// same entries always give the same bytes (fixed inode numbers and mtime), so a cached guest is
// reproducible and its hash says whether anything changed.

export type CpioEntry =
  | { kind: 'dir'; path: string; mode?: number }
  | { kind: 'file'; path: string; data: Buffer; mode?: number }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'chardev'; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const TRAILER = 'TRAILER!!!';
const ENTRY_PATH_RE = /^[A-Za-z0-9._+-]+(\/[A-Za-z0-9._+-]+)*$/;

export class CpioError extends Error {
  override readonly name = 'CpioError';
}

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new CpioError(`cpio field out of range: ${n}`);
  return n.toString(16).padStart(8, '0');
}

function pad4(length: number): Buffer {
  return Buffer.alloc((4 - (length % 4)) % 4);
}

function record(ino: number, mode: number, name: string, data: Buffer, rdev: [number, number] = [0, 0]): Buffer[] {
  const nameBytes = Buffer.from(`${name}\0`, 'utf8');
  const isDir = (mode & 0o170000) === S_IFDIR;
  const fields = [ino, mode, 0, 0, isDir ? 2 : 1, 0, data.length, 0, 0, rdev[0], rdev[1], nameBytes.length, 0];
  const header = Buffer.from(`070701${fields.map(hex8).join('')}`, 'ascii');
  return [header, nameBytes, pad4(header.length + nameBytes.length), data, pad4(data.length)];
}

/** Paths are relative ("bin/sh"); parents must be listed before their children. */
export function buildCpio(entries: readonly CpioEntry[]): Buffer {
  const seen = new Set<string>();
  const parts: Buffer[] = [];
  entries.forEach((entry, i) => {
    if (!ENTRY_PATH_RE.test(entry.path) || entry.path.split('/').some((p) => p === '.' || p === '..')) throw new CpioError(`bad cpio path ${JSON.stringify(entry.path)}`);
    if (seen.has(entry.path)) throw new CpioError(`duplicate cpio path ${entry.path}`);
    const parent = entry.path.includes('/') ? entry.path.slice(0, entry.path.lastIndexOf('/')) : null;
    if (parent !== null && !seen.has(parent)) throw new CpioError(`${entry.path} listed before its directory ${parent}`);
    seen.add(entry.path);
    const ino = i + 1;
    if (entry.kind === 'dir') parts.push(...record(ino, S_IFDIR | (entry.mode ?? 0o755), entry.path, Buffer.alloc(0)));
    else if (entry.kind === 'file') parts.push(...record(ino, S_IFREG | (entry.mode ?? 0o644), entry.path, entry.data));
    else if (entry.kind === 'symlink') parts.push(...record(ino, S_IFLNK | 0o777, entry.path, Buffer.from(entry.target, 'utf8')));
    else parts.push(...record(ino, S_IFCHR | (entry.mode ?? 0o600), entry.path, Buffer.alloc(0), [entry.major, entry.minor]));
  });
  parts.push(...record(0, 0, TRAILER, Buffer.alloc(0)));
  return Buffer.concat(parts);
}
