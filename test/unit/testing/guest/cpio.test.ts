// The initramfs writer, read back by an independent parse of the newc headers (the layout the
// kernel's initramfs unpacker reads), and the ldd parser that picks the agent's libraries.
import { buildCpio, CpioError } from '../../../../src/testing/guest/cpio';
import { parseLdd } from '../../../../src/testing/guest/guest-builder';

interface NewcEntry {
  name: string;
  mode: number;
  size: number;
  rdev: [number, number];
  data: Buffer;
}

function readNewc(archive: Buffer): NewcEntry[] {
  const entries: NewcEntry[] = [];
  let at = 0;
  const align = (n: number) => (n + 3) & ~3;
  for (;;) {
    const header = archive.subarray(at, at + 110).toString('ascii');
    expect(header.slice(0, 6)).toBe('070701');
    const field = (i: number) => Number.parseInt(header.slice(6 + i * 8, 14 + i * 8), 16);
    const nameSize = field(11);
    const size = field(6);
    const name = archive.subarray(at + 110, at + 110 + nameSize - 1).toString('utf8');
    const dataAt = align(at + 110 + nameSize);
    entries.push({ name, mode: field(1), size, rdev: [field(9), field(10)], data: archive.subarray(dataAt, dataAt + size) });
    at = align(dataAt + size);
    if (name === 'TRAILER!!!') break;
  }
  expect(at).toBe(archive.length);
  return entries;
}

describe('cpio newc writer', () => {
  it('writes directories, files, symlinks and device nodes the kernel can unpack, 4-byte aligned, with a trailer', () => {
    const archive = buildCpio([
      { kind: 'dir', path: 'bin' },
      { kind: 'file', path: 'bin/busybox', data: Buffer.from('#!busybox\n'), mode: 0o755 },
      { kind: 'symlink', path: 'bin/sh', target: 'busybox' },
      { kind: 'dir', path: 'dev' },
      { kind: 'chardev', path: 'dev/console', major: 5, minor: 1 },
      { kind: 'file', path: 'init', data: Buffer.alloc(5, 0x41), mode: 0o755 },
    ]);
    const entries = readNewc(archive);
    expect(entries.map((e) => e.name)).toEqual(['bin', 'bin/busybox', 'bin/sh', 'dev', 'dev/console', 'init', 'TRAILER!!!']);
    expect(entries[0]?.mode).toBe(0o040755);
    expect(entries[1]).toMatchObject({ mode: 0o100755, size: 10 });
    expect(entries[1]?.data.toString()).toBe('#!busybox\n');
    expect(entries[2]).toMatchObject({ mode: 0o120777 });
    expect(entries[2]?.data.toString()).toBe('busybox');
    expect(entries[4]).toMatchObject({ mode: 0o020600, rdev: [5, 1] });
    expect(entries[5]?.data).toEqual(Buffer.alloc(5, 0x41));
  });

  it('is a pure function of its entries', () => {
    const entries = [{ kind: 'file' as const, path: 'init', data: Buffer.from('x') }];
    expect(buildCpio(entries).equals(buildCpio(entries))).toBe(true);
  });

  it('refuses paths that could land outside the archive root, duplicates, and children before their directory', () => {
    for (const path of ['/init', '../x', 'a/../b', 'a//b', '', 'a b']) {
      expect(() => buildCpio([{ kind: 'file', path, data: Buffer.alloc(0) }])).toThrow(CpioError);
    }
    expect(() => buildCpio([{ kind: 'dir', path: 'a' }, { kind: 'dir', path: 'a' }])).toThrow(/duplicate/);
    expect(() => buildCpio([{ kind: 'file', path: 'bin/sh', data: Buffer.alloc(0) }])).toThrow(/before its directory/);
  });
});

describe('ldd output', () => {
  it('names each resolved library and the loader, and refuses a missing one', () => {
    const out = [
      '\tlinux-vdso.so.1 (0x00007ffd)',
      '\tlibglib-2.0.so.0 => /lib/x86_64-linux-gnu/libglib-2.0.so.0 (0x00007f9a)',
      '\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f9b)',
      '\t/lib64/ld-linux-x86-64.so.2 (0x00007f9c)',
    ].join('\n');
    expect(parseLdd(out)).toEqual(['/lib/x86_64-linux-gnu/libglib-2.0.so.0', '/lib/x86_64-linux-gnu/libc.so.6', '/lib64/ld-linux-x86-64.so.2']);
    expect(() => parseLdd('\tlibnuma.so.1 => not found\n')).toThrow(/missing on this host/);
  });
});
