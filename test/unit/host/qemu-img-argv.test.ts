// Every qemu-img / qemu-io / qemu-nbd command line the host builds states each image's format: no
// call leaves QEMU to probe a disk (whose first bytes a guest may have made into a qcow2 header).
// The tools are stand-ins that record their argv (spawn is pointed at them: a test's process.env
// is jest's copy, which child processes do not see), so the real wrappers run unchanged.
import childProcess, { type SpawnOptions } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { DiskLayer } from '../../../src/contract';
import { exportedImage, NbdExportError, readOnlyExportArgs } from '../../../src/host/nbd-export';
import { blockdevSpec, createQcow2, hasPattern, imageInfo, imagesIdentical, writePattern } from '../../../src/host/qemu-img';
import { convertImage } from '../../../src/host/qemu-img-convert';
import { ToolOutputInvalid } from '../../../src/process/tool-process';

let dir: string;
let log: string;
let infoJson: string;
const realSpawn = childProcess.spawn;

const STUB = `#!/bin/sh
{ printf '%s' "$(basename "$0")"; for a in "$@"; do printf '\\t%s' "$a"; done; printf '\\n'; } >> "$QEMU_STUB_LOG"
if [ "$1" = info ]; then cat "$QEMU_STUB_INFO"; fi
exit 0
`;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'qemu-argv-'));
  log = path.join(dir, 'calls.log');
  infoJson = path.join(dir, 'info.json');
  for (const tool of ['qemu-img', 'qemu-io']) {
    await writeFile(path.join(dir, tool), STUB);
    await chmod(path.join(dir, tool), 0o755);
  }
  const env = { ...process.env, PATH: `${dir}:${process.env.PATH ?? ''}`, QEMU_STUB_LOG: log, QEMU_STUB_INFO: infoJson };
  jest.spyOn(childProcess, 'spawn').mockImplementation(((cmd: string, args: readonly string[], opts: SpawnOptions) => realSpawn(cmd, args, { ...opts, env })) as typeof childProcess.spawn);
});

afterAll(async () => {
  jest.restoreAllMocks();
  await rm(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  await writeFile(log, '');
  await writeFile(infoJson, JSON.stringify({ format: 'raw', 'virtual-size': 1048576 }));
});

async function calls(): Promise<string[][]> {
  return (await readFile(log, 'utf8'))
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split('\t'));
}

const valueOf = (argv: readonly string[], flag: string): string | undefined => {
  const i = argv.indexOf(flag);
  return i < 0 ? undefined : argv[i + 1];
};

/** A json: image spec: every node names its format driver and its file; a qcow2 node names its backing (a node or null). */
function specLayers(spec: string): DiskLayer[] {
  expect(spec.startsWith('json:')).toBe(true);
  const layers: DiskLayer[] = [];
  let node = JSON.parse(spec.slice('json:'.length)) as Record<string, unknown> | null;
  while (node !== null) {
    expect(['qcow2', 'raw']).toContain(node.driver);
    expect(node.file).toMatchObject({ driver: 'file' });
    layers.push({ path: (node.file as { filename: string }).filename, format: node.driver as DiskLayer['format'] });
    if (node.driver === 'raw') {
      expect('backing' in node).toBe(false);
      break;
    }
    expect('backing' in node).toBe(true);
    node = node.backing as Record<string, unknown> | null;
  }
  return layers;
}

/** The rule for each command line: the format of every image it opens is given, never left to a probe. */
function expectFormatStated(argv: readonly string[]): void {
  const [tool, ...args] = argv;
  const images = args.filter((a) => a.startsWith('/') || a.startsWith('json:'));
  if (tool === 'qemu-io') {
    expect(valueOf(args, '-f')).toMatch(/^(qcow2|raw)$/);
    return;
  }
  expect(tool).toBe('qemu-img');
  switch (args[0]) {
    case 'info':
      expect(valueOf(args, '-f')).toMatch(/^(qcow2|raw)$/);
      break;
    case 'create':
      expect(valueOf(args, '-f')).toBe('qcow2');
      if (args.includes('-b')) expect(valueOf(args, '-F')).toMatch(/^(qcow2|raw)$/);
      break;
    case 'compare':
      expect(valueOf(args, '-f')).toMatch(/^(qcow2|raw)$/);
      expect(valueOf(args, '-F')).toMatch(/^(qcow2|raw)$/);
      break;
    case 'convert':
      expect(valueOf(args, '-O')).toMatch(/^(qcow2|raw)$/);
      expect(args.includes('-f')).toBe(false);
      expect(images[0]?.startsWith('json:')).toBe(true);
      specLayers(images[0] ?? '');
      break;
    default:
      throw new Error(`unexpected qemu-img subcommand ${String(args[0])}`);
  }
}

const overlay: DiskLayer = { path: '/i/uuid/disk', format: 'qcow2' };
const base: DiskLayer = { path: '/i/_base/img', format: 'raw' };

describe('qemu-img and qemu-io command lines', () => {
  it('state every image\'s format, in every wrapper', async () => {
    await createQcow2('/w/blank.qcow2', { sizeBytes: 1 << 20 });
    await createQcow2('/w/delta.qcow2', { sizeBytes: 1 << 20, backing: base.path, backingFormat: 'raw' });
    await createQcow2('/w/overlay.qcow2', { backing: '/w/blank.qcow2' });
    await imageInfo('/i/uuid/disk', 'raw', { forceShare: true });
    await writePattern('/w/blank.qcow2', { byte: 1, offset: 0, length: 512 });
    await hasPattern('/w/blank.qcow2', { byte: 1, offset: 0, length: 512 });
    await imagesIdentical('/w/a.qcow2', '/w/b.qcow2');
    await convertImage([overlay, base], '/w/out.qcow2', { outputFormat: 'qcow2', forceShare: true });
    await convertImage([{ path: '/i/uuid/disk', format: 'raw' }], '/w/out.raw', { outputFormat: 'raw' });
    const seen = await calls();
    expect(seen).toHaveLength(9);
    // The delta's backing is named with its format and, its size given, not even opened.
    expect(seen[1]).toEqual(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', '/i/_base/img', '-F', 'raw', '-u', '/w/delta.qcow2', String(1 << 20)]);
    for (const argv of seen) expectFormatStated(argv);
  });

  it('info asks for the format it is told and refuses an answer in another one', async () => {
    await imageInfo('/i/uuid/disk', 'raw');
    expect((await calls())[0]).toEqual(['qemu-img', 'info', '--output=json', '-f', 'raw', '/i/uuid/disk']);
    await writeFile(infoJson, JSON.stringify({ format: 'qcow2', 'virtual-size': 1 << 40, 'backing-filename': '/etc/shadow' }));
    await expect(imageInfo('/i/uuid/disk', 'raw')).rejects.toBeInstanceOf(ToolOutputInvalid);
  });

  it('convert spells out the whole chain: each layer\'s driver and file, the bottom qcow2 with no backing', async () => {
    await convertImage([{ path: '/w/delta', format: 'qcow2' }, overlay, { path: '/i/_base/q', format: 'qcow2' }], '/w/out.raw', { outputFormat: 'raw' });
    const argv = (await calls())[0] ?? [];
    const spec = argv.find((a) => a.startsWith('json:')) ?? '';
    expect(specLayers(spec)).toEqual([{ path: '/w/delta', format: 'qcow2' }, overlay, { path: '/i/_base/q', format: 'qcow2' }]);
    expect(spec).toContain('"backing":null');
    expect(argv.at(-1)).toBe('/w/out.raw');
  });
});

describe('blockdevSpec', () => {
  it('refuses a raw layer with layers below it, an unknown format, an unsafe path and an empty chain', () => {
    expect(() => blockdevSpec([base, overlay])).toThrow(RangeError);
    expect(() => blockdevSpec([{ path: '/i/x', format: 'vmdk' as DiskLayer['format'] }])).toThrow(RangeError);
    expect(() => blockdevSpec([{ path: '/i/x",{"driver":"file', format: 'raw' }])).toThrow(/unsafe/);
    expect(() => blockdevSpec([])).toThrow(RangeError);
  });
});

describe('qemu-nbd command line', () => {
  const loc = { socketPath: '/w/nbd.sock', pidFile: '/w/nbd.pid' };

  it('opens the chain spelt out, with no --format and nothing to probe', () => {
    const argv = readOnlyExportArgs(exportedImage({ diskPath: overlay.path, format: 'qcow2', backing: [base] }), { exportName: 'vda', maxClients: 8 }, loc, 'none');
    expect(argv.some((a) => a.startsWith('--format') || a === '-f' || a === '--image-opts')).toBe(false);
    expect(argv.slice(0, -1)).toEqual(['--read-only', '--persistent', '--shared=8', '--export-name=vda', '--socket=/w/nbd.sock', '--pid-file=/w/nbd.pid', '--cache=none', '--fork']);
    expect(specLayers(argv.at(-1) ?? '')).toEqual([overlay, base]);
    const raw = readOnlyExportArgs(exportedImage({ diskPath: '/i/uuid/disk', format: 'raw', backing: [] }), { exportName: 'vda', maxClients: 1 }, loc, 'writeback');
    expect(specLayers(raw.at(-1) ?? '')).toEqual([{ path: '/i/uuid/disk', format: 'raw' }]);
  });

  it('refuses a chain it cannot spell as an invalid spec, never retried', () => {
    expect(() => exportedImage({ diskPath: '/i/uuid/disk', format: 'raw', backing: [base] })).toThrow(NbdExportError);
    expect(() => exportedImage({ diskPath: 'disk', format: 'raw', backing: [] })).toThrow(expect.objectContaining({ code: 'invalid-spec', retryable: false }) as Error);
  });
});
