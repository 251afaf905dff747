// The file disk's chain: libvirt's record of it, or qcow2 headers of layers libvirt says are qcow2,
// confined to the instances path and the image cache; refused before any tool touches a layer.
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BackingChainRefused, confineBackingPath, describedChain, fileDiskChain, UnsupportedSourceFormat, type Qcow2HeaderReader } from '../../../src/host/disk-chain';
import type { DomainDisk } from '../../../src/host/domain-xml';

let root: string;
let roots: { instancesPath: string; imageCachePath: string };
let outside: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'disk-chain-'));
  roots = { instancesPath: path.join(root, 'instances'), imageCachePath: path.join(root, 'cache') };
  outside = path.join(root, 'elsewhere');
  for (const d of [roots.instancesPath, path.join(roots.instancesPath, 'uuid'), roots.imageCachePath, outside]) await mkdir(d, { recursive: true });
  for (const f of ['instances/uuid/disk', 'instances/uuid/mid', 'cache/img', 'elsewhere/secret']) await writeFile(path.join(root, f), '');
  await symlink(path.join(outside, 'secret'), path.join(roots.imageCachePath, 'link'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const at = (p: string): string => path.join(root, p);

function fileDisk(driverType: string | null, backingStore: DomainDisk['backingStore']): DomainDisk {
  return { target: 'vda', source: at('instances/uuid/disk'), sourceType: 'file', driverType, device: 'disk', hasDataStore: false, backingStore };
}

/** A header reader over a table; records every path whose header was read. */
function headers(table: Record<string, { backing?: string; format?: string; dataFile?: string }>): { read: Qcow2HeaderReader; seen: string[] } {
  const seen: string[] = [];
  const read: Qcow2HeaderReader = async (p) => {
    seen.push(p);
    const h = table[p];
    if (h === undefined) throw new Error(`no header for ${p}`);
    return { fullBackingFilename: h.backing ?? null, backingFormat: h.format ?? null, dataFile: h.dataFile ?? null };
  };
  return { read, seen };
}

describe('confineBackingPath', () => {
  it('accepts files inside the instances path or the image cache', async () => {
    await expect(confineBackingPath(at('instances/uuid/mid'), roots)).resolves.toBe(at('instances/uuid/mid'));
    await expect(confineBackingPath(at('cache/img'), roots)).resolves.toBe(at('cache/img'));
  });

  it('refuses a file elsewhere, a symlink out of the roots, a non-canonical spelling, a missing file and a json:/protocol name', async () => {
    for (const bad of [at('elsewhere/secret'), at('cache/link'), `${roots.imageCachePath}/../elsewhere/secret`, `${roots.imageCachePath}//img`, 'img', at('cache/missing'), 'json:{"driver":"file"}', 'nbd://host/x', `${root}/instances-evil/x`]) {
      await expect(confineBackingPath(bad, roots)).rejects.toBeInstanceOf(BackingChainRefused);
    }
    await expect(confineBackingPath(at('elsewhere/secret'), roots)).rejects.toMatchObject({ retryable: false });
  });
});

describe('fileDiskChain from libvirt\'s <backingStore>', () => {
  it('takes the layers and formats libvirt records, reading no header at all', async () => {
    const { read, seen } = headers({});
    const chain = await fileDiskChain(
      fileDisk('qcow2', [
        { sourceType: 'file', format: 'qcow2', source: at('instances/uuid/mid'), hasDataStore: false },
        { sourceType: 'file', format: 'raw', source: at('cache/img'), hasDataStore: false },
      ]),
      roots,
      read,
    );
    expect(chain).toEqual({
      top: { path: at('instances/uuid/disk'), format: 'qcow2' },
      backing: [
        { path: at('instances/uuid/mid'), format: 'qcow2' },
        { path: at('cache/img'), format: 'raw' },
      ],
    });
    expect(seen).toEqual([]);
  });

  it('a raw disk libvirt says has no backing has none, whatever its first bytes say', async () => {
    const { read, seen } = headers({ [at('instances/uuid/disk')]: { backing: at('elsewhere/secret'), format: 'raw' } });
    await expect(fileDiskChain(fileDisk('raw', []), roots, read)).resolves.toEqual({ top: { path: at('instances/uuid/disk'), format: 'raw' }, backing: [] });
    expect(seen).toEqual([]);
  });

  it('refuses layers outside the roots, non-file layers, unknown formats and data files', async () => {
    const layer = (over: Partial<NonNullable<DomainDisk['backingStore']>[number]>) => [{ sourceType: 'file', format: 'qcow2', source: at('cache/img'), hasDataStore: false, ...over }];
    await expect(fileDiskChain(fileDisk('qcow2', layer({ source: at('elsewhere/secret') })), roots)).rejects.toBeInstanceOf(BackingChainRefused);
    await expect(fileDiskChain(fileDisk('qcow2', layer({ sourceType: 'network', source: 'pool/img' })), roots)).rejects.toBeInstanceOf(BackingChainRefused);
    await expect(fileDiskChain(fileDisk('qcow2', layer({ format: 'vmdk' })), roots)).rejects.toBeInstanceOf(UnsupportedSourceFormat);
    await expect(fileDiskChain(fileDisk('qcow2', layer({ format: null })), roots)).rejects.toBeInstanceOf(UnsupportedSourceFormat);
    await expect(fileDiskChain(fileDisk('qcow2', layer({ hasDataStore: true })), roots)).rejects.toBeInstanceOf(BackingChainRefused);
    await expect(fileDiskChain({ ...fileDisk('qcow2', []), hasDataStore: true }, roots)).rejects.toBeInstanceOf(BackingChainRefused);
    await expect(fileDiskChain(fileDisk('raw', layer({})), roots)).rejects.toBeInstanceOf(BackingChainRefused);
  });
});

describe('fileDiskChain of a stopped domain (no <backingStore> in its XML)', () => {
  it('walks the qcow2 headers, each backing name with its stated format, down to a raw layer it never reads', async () => {
    const { read, seen } = headers({
      [at('instances/uuid/disk')]: { backing: at('instances/uuid/mid'), format: 'qcow2' },
      [at('instances/uuid/mid')]: { backing: at('cache/img'), format: 'raw' },
    });
    const chain = await fileDiskChain(fileDisk('qcow2', null), roots, read);
    expect(chain.backing).toEqual([
      { path: at('instances/uuid/mid'), format: 'qcow2' },
      { path: at('cache/img'), format: 'raw' },
    ]);
    expect(seen).toEqual([at('instances/uuid/disk'), at('instances/uuid/mid')]);
  });

  it('never reads the header of a raw disk', async () => {
    const { read, seen } = headers({});
    await expect(fileDiskChain(fileDisk('raw', null), roots, read)).resolves.toEqual({ top: { path: at('instances/uuid/disk'), format: 'raw' }, backing: [] });
    await expect(fileDiskChain(fileDisk(null, null), roots, read)).resolves.toMatchObject({ top: { format: 'raw' }, backing: [] });
    expect(seen).toEqual([]);
  });

  it('refuses a backing outside the roots before reading its header', async () => {
    const { read, seen } = headers({ [at('instances/uuid/disk')]: { backing: at('elsewhere/secret'), format: 'qcow2' } });
    await expect(fileDiskChain(fileDisk('qcow2', null), roots, read)).rejects.toBeInstanceOf(BackingChainRefused);
    expect(seen).toEqual([at('instances/uuid/disk')]);
  });

  it('refuses a backing name without its format (it would be probed), a data file and a loop', async () => {
    const cases = [
      { [at('instances/uuid/disk')]: { backing: at('cache/img') } },
      { [at('instances/uuid/disk')]: { dataFile: at('elsewhere/secret') } },
      { [at('instances/uuid/disk')]: { backing: at('instances/uuid/mid'), format: 'qcow2' }, [at('instances/uuid/mid')]: { backing: at('instances/uuid/disk'), format: 'qcow2' } },
    ];
    for (const table of cases) await expect(fileDiskChain(fileDisk('qcow2', null), roots, headers(table).read)).rejects.toBeInstanceOf(BackingChainRefused);
  });
});

describe('describedChain', () => {
  it('gives the recorded chain back, and refuses a description recorded before chains were', () => {
    const backing = [{ path: '/i/_base/img', format: 'raw' as const }];
    expect(describedChain({ diskPath: '/i/disk', sourceFormat: 'qcow2', backingChain: backing })).toEqual({ top: { path: '/i/disk', format: 'qcow2' }, backing });
    expect(() => describedChain({ diskPath: '/i/disk', sourceFormat: 'qcow2' })).toThrow(BackingChainRefused);
    expect(() => describedChain({ diskPath: '/i/disk', sourceFormat: 'rbd', backingChain: [] })).toThrow(UnsupportedSourceFormat);
  });
});
