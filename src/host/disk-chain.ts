// The "file" disk source: a root disk that is a file (or a chain of files), its layers and their
// formats as libvirt records them, confined to the instance and image-cache directories. No qemu
// tool ever probes a layer's format here or follows a backing name it was not told to (OSSA-2024-001,
// CVE-2024-32498, CVE-2024-4467): a raw disk's first bytes are the guest's, and a qcow2 header in
// them would otherwise choose the backing file the host reads and the size it believes.
import { realpath } from 'node:fs/promises';
import { sep } from 'node:path';
import type { DiskLayer, DomainDescription } from '../contract';
import { MAX_BACKING_DEPTH, type DomainDisk } from './domain-xml';
import { assertSafePath, HostPathError } from '../fs/safe-path';
import { imageInfo, type ImageInfo } from './qemu-img';
import { errnoCode } from '../contract';

/** A disk whose chain we will not read: refused before any tool runs on the layer, and again on a retry. */
export class BackingChainRefused extends Error {
  override readonly name = 'BackingChainRefused';
  readonly retryable = false;
}

/** A source this driver cannot extract (lvm, rbd, a format other than qcow2/raw): refused again, never retried. */
export class UnsupportedSourceFormat extends Error {
  override readonly name = 'UnsupportedSourceFormat';
  readonly retryable = false;
  constructor(readonly sourceFormat: string) {
    super(`unsupported source format ${JSON.stringify(sourceFormat)}`);
  }
}

/** Nova's instances_path and its image cache (_base): the only places a backing layer may be. */
export interface ChainRoots {
  instancesPath: string;
  imageCachePath: string;
}

/** Reads a qcow2 layer's header: its backing name and format, its data file. */
export type Qcow2HeaderReader = (path: string) => Promise<Pick<ImageInfo, 'fullBackingFilename' | 'backingFormat' | 'dataFile'>>;

// A running QEMU holds the disk locked; -U reads the header anyway.
const readQcow2Header: Qcow2HeaderReader = (path) => imageInfo(path, 'qcow2', { forceShare: true });

function layerFormat(format: string | null, where: string): DiskLayer['format'] {
  if (format === 'qcow2' || format === 'raw') return format;
  throw new UnsupportedSourceFormat(format ?? `(none recorded for ${where})`);
}

async function canonical(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch (err) {
    throw new BackingChainRefused(`backing file ${path} cannot be resolved: ${errnoCode(err) ?? String(err)}`);
  }
}

/**
 * A backing layer's path, refused unless its spelling is canonical (absolute, normalised, safe
 * characters) and, symlinks resolved, it lies inside the instances path or the image cache.
 */
export async function confineBackingPath(path: string, roots: ChainRoots): Promise<string> {
  try {
    assertSafePath(path);
  } catch (err) {
    if (err instanceof HostPathError) throw new BackingChainRefused(`backing file refused: ${err.message}`);
    throw err;
  }
  const real = await canonical(path);
  for (const root of [roots.instancesPath, roots.imageCachePath]) {
    const realRoot = await realpath(root).catch(() => null);
    if (realRoot !== null && real.startsWith(realRoot.endsWith(sep) ? realRoot : realRoot + sep)) return path;
  }
  throw new BackingChainRefused(`backing file ${path} is outside the instances path ${roots.instancesPath} and the image cache ${roots.imageCachePath}`);
}

/** libvirt's own record of the chain (a running domain's `<backingStore>` elements). */
async function chainFromXml(disk: DomainDisk, layers: NonNullable<DomainDisk['backingStore']>, roots: ChainRoots): Promise<DiskLayer[]> {
  const chain: DiskLayer[] = [];
  for (const layer of layers) {
    if (layer.sourceType !== 'file' || layer.source === null) throw new BackingChainRefused(`disk ${disk.target} has a ${layer.sourceType} backing layer: only files are read`);
    if (layer.hasDataStore) throw new BackingChainRefused(`backing layer ${layer.source} of ${disk.target} has an external data file`);
    chain.push({ path: await confineBackingPath(layer.source, roots), format: layerFormat(layer.format, layer.source) });
  }
  return chain;
}

/**
 * A stopped domain's XML has no `<backingStore>`: libvirt reads the chain only when it starts the
 * domain, from the same headers read here. Only the header of a layer that is qcow2 by libvirt's
 * word (the disk's `<driver type>`, or the format the layer above recorded) is read, with
 * `-f qcow2`: qcow2 metadata is the host's, written by qemu-img, and a guest's writes land in data
 * clusters, never in it. A raw layer ends the chain unread. Each backing name must come with its
 * format (never probed) and lie inside the confinement roots before its own header is read; a
 * data file, a loop or a chain deeper than MAX_BACKING_DEPTH is refused.
 */
async function chainFromHeaders(top: DiskLayer, roots: ChainRoots, readHeader: Qcow2HeaderReader): Promise<DiskLayer[]> {
  const chain: DiskLayer[] = [];
  const seen = new Set([top.path]);
  let layer = top;
  while (layer.format === 'qcow2') {
    const header = await readHeader(layer.path);
    if (header.dataFile !== null) throw new BackingChainRefused(`${layer.path} has an external data file ${JSON.stringify(header.dataFile)}`);
    if (header.fullBackingFilename === null) break;
    if (header.backingFormat === null) throw new BackingChainRefused(`${layer.path} names backing file ${JSON.stringify(header.fullBackingFilename)} without its format: it would be probed`);
    if (chain.length >= MAX_BACKING_DEPTH) throw new BackingChainRefused(`the backing chain of ${top.path} is deeper than ${MAX_BACKING_DEPTH} layers`);
    const path = await confineBackingPath(header.fullBackingFilename, roots);
    if (seen.has(path)) throw new BackingChainRefused(`the backing chain of ${top.path} loops at ${path}`);
    seen.add(path);
    layer = { path, format: layerFormat(header.backingFormat, path) };
    chain.push(layer);
  }
  return chain;
}

export interface FileDiskChain {
  top: DiskLayer;
  /** the layers below `top`, nearest first */
  backing: DiskLayer[];
}

/** The root disk's layers and formats: libvirt's `<backingStore>` when the XML has it, else the qcow2 headers as above. */
export async function fileDiskChain(disk: DomainDisk, roots: ChainRoots, readHeader: Qcow2HeaderReader = readQcow2Header): Promise<FileDiskChain> {
  if (disk.source === null) throw new BackingChainRefused(`disk ${disk.target} has no source`);
  if (disk.hasDataStore) throw new BackingChainRefused(`disk ${disk.target} has an external data file`);
  const top: DiskLayer = { path: assertSafePath(disk.source), format: layerFormat(disk.driverType ?? 'raw', disk.source) };
  const backing = disk.backingStore !== null ? await chainFromXml(disk, disk.backingStore, roots) : await chainFromHeaders(top, roots, readHeader);
  if (top.format === 'raw' && backing.length > 0) throw new BackingChainRefused(`raw disk ${disk.target} cannot have backing layers`);
  return { top, backing };
}

/** The chain describeDomain recorded for a file disk, for the tools that read it. */
export function describedChain(description: Pick<DomainDescription, 'diskPath' | 'sourceFormat' | 'backingChain'>): FileDiskChain {
  if (description.backingChain === undefined) {
    throw new BackingChainRefused(`the description of ${description.diskPath} predates recorded backing chains: describe the domain again`);
  }
  return { top: { path: description.diskPath, format: layerFormat(description.sourceFormat, description.diskPath) }, backing: description.backingChain };
}
