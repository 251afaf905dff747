// Facts the snapshot path reads from a domain's XML: its virt type, its disks, and the devices a
// cold snapshot must detach first (PCI host devices and SR-IOV ports, Nova's _detach_pci_devices and
// _detach_sriov_ports). Parsed, never pattern-matched, so quoting and entities cannot fool it.
import { XMLBuilder, XMLParser } from 'fast-xml-parser';
import { z } from 'zod';
import { errorMessage } from '../contract';

const ATTR = '@_';
const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: ATTR,
  isArray: (name) => ['disk', 'hostdev', 'interface'].includes(name),
});
const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: ATTR, suppressEmptyNode: true });

const Attr = z.string().optional();
const DiskNode = z
  .object({
    [`${ATTR}type`]: Attr,
    [`${ATTR}device`]: Attr,
    driver: z.object({ [`${ATTR}type`]: Attr }).passthrough().optional(),
    source: z.object({ [`${ATTR}file`]: Attr, [`${ATTR}dev`]: Attr, [`${ATTR}name`]: Attr, [`${ATTR}protocol`]: Attr }).passthrough().optional(),
    auth: z.object({ [`${ATTR}username`]: Attr, secret: z.object({ [`${ATTR}uuid`]: Attr }).passthrough().optional() }).passthrough().optional(),
    target: z.object({ [`${ATTR}dev`]: z.string() }).passthrough(),
  })
  .passthrough();
const DeviceNode = z.record(z.unknown());
const DomainDoc = z.object({
  domain: z
    .object({
      [`${ATTR}type`]: z.string(),
      name: z.string().optional(),
      devices: z
        .object({
          disk: z.array(DiskNode).optional(),
          hostdev: z.array(DeviceNode).optional(),
          interface: z.array(DeviceNode).optional(),
        })
        .passthrough()
        .optional(),
    })
    .passthrough(),
});

/** One `<backingStore>` layer as libvirt writes it in a running domain's XML. */
export interface BackingStoreXml {
  sourceType: string;
  /** `<format type=…>`: what libvirt opened the layer as */
  format: string | null;
  source: string | null;
  /** the layer has a qcow2 external data file (`<dataStore>`) */
  hasDataStore: boolean;
}

export interface DomainDisk {
  target: string;
  /** file path, block device, or rbd/... name */
  source: string | null;
  sourceType: string;
  driverType: string | null;
  device: string;
  /** the top layer has a qcow2 external data file (`<dataStore>`) */
  hasDataStore: boolean;
  /**
   * The layers below the source, nearest first, ending where libvirt's empty `<backingStore/>` says
   * the chain ends; null when the XML does not describe the chain (a stopped domain's definition:
   * libvirt reads the chain only when it starts the domain).
   */
  backingStore: BackingStoreXml[] | null;
  /** a `<disk type='network'>`: its protocol (rbd, …) and the cephx user and libvirt secret of its `<auth>` */
  network?: NetworkDiskSource | null;
  /** `<serial>`: Nova writes a Cinder volume's id there */
  serial?: string | null;
}

export interface NetworkDiskSource {
  protocol: string;
  authUsername: string | null;
  secretUuid: string | null;
}

/** Deeper than any chain Nova makes (overlay on a cached image); a longer one is refused, not walked. */
export const MAX_BACKING_DEPTH = 16;

export interface PassthroughDevice {
  kind: 'hostdev' | 'sriov-port';
  /** what identifies the device across the live and the inactive definition */
  key: string;
  /** the element, ready for attach/detach */
  xml: string;
}

export interface DomainFacts {
  virtType: string;
  disks: DomainDisk[];
  passthrough: PassthroughDevice[];
}

export class DomainXmlError extends Error {
  override readonly name = 'DomainXmlError';
  /** the domain's definition does not change by asking again */
  readonly retryable = false;
}

function attr(node: Record<string, unknown>, name: string): string | undefined {
  const value = node[`${ATTR}${name}`];
  return typeof value === 'string' ? value : undefined;
}

function sourceOf(node: Record<string, unknown>): string | null {
  const source = node.source;
  if (typeof source !== 'object' || source === null) return null;
  const s = source as Record<string, unknown>;
  return attr(s, 'file') ?? attr(s, 'dev') ?? attr(s, 'name') ?? null;
}

/** Walks nested `<backingStore>` elements; an element with no `<source>` (`<backingStore/>`) ends the chain. */
function backingStoreOf(disk: Record<string, unknown>): BackingStoreXml[] | null {
  if (!('backingStore' in disk)) return null;
  const layers: BackingStoreXml[] = [];
  let node: unknown = disk.backingStore;
  while (typeof node === 'object' && node !== null && 'source' in node) {
    if (layers.length >= MAX_BACKING_DEPTH) throw new DomainXmlError(`a disk's backing chain is deeper than ${MAX_BACKING_DEPTH} layers`);
    const layer = node as Record<string, unknown>;
    const format = layer.format as Record<string, unknown> | undefined;
    layers.push({ sourceType: attr(layer, 'type') ?? 'file', format: format ? (attr(format, 'type') ?? null) : null, source: sourceOf(layer), hasDataStore: 'dataStore' in layer });
    node = layer.backingStore;
  }
  return layers;
}

function deviceKey(node: Record<string, unknown>): string {
  // PCI address of the host device (hostdev) or MAC of the port: stable across save/restore.
  const mac = node.mac as Record<string, unknown> | undefined;
  if (mac && attr(mac, 'address')) return `mac:${attr(mac, 'address')}`;
  const source = node.source as Record<string, unknown> | undefined;
  const address = source?.address as Record<string, unknown> | undefined;
  if (address) return `pci:${['domain', 'bus', 'slot', 'function'].map((k) => attr(address, k) ?? '').join(':')}`;
  return `xml:${builder.build(node) as string}`;
}

function networkSourceOf(disk: Record<string, unknown>): NetworkDiskSource | null {
  if (attr(disk, 'type') !== 'network') return null;
  const source = disk.source as Record<string, unknown> | undefined;
  const auth = disk.auth as Record<string, unknown> | undefined;
  const secret = auth?.secret as Record<string, unknown> | undefined;
  return { protocol: (source && attr(source, 'protocol')) ?? '', authUsername: (auth && attr(auth, 'username')) ?? null, secretUuid: (secret && attr(secret, 'uuid')) ?? null };
}

function serialOf(disk: Record<string, unknown>): string | null {
  const serial = disk.serial;
  return typeof serial === 'string' || typeof serial === 'number' ? String(serial) : null;
}

export function parseDomainXml(xml: string): DomainFacts {
  let doc: z.infer<typeof DomainDoc>;
  try {
    doc = DomainDoc.parse(parser.parse(xml));
  } catch (err) {
    throw new DomainXmlError(`unreadable domain XML: ${errorMessage(err)}`);
  }
  const devices = doc.domain.devices ?? {};
  const disks = (devices.disk ?? []).map(
    (d): DomainDisk => ({
      target: d.target[`${ATTR}dev`],
      source: sourceOf(d),
      sourceType: attr(d, 'type') ?? 'file',
      driverType: d.driver ? (attr(d.driver, 'type') ?? null) : null,
      device: attr(d, 'device') ?? 'disk',
      hasDataStore: 'dataStore' in d,
      backingStore: backingStoreOf(d),
      network: networkSourceOf(d),
      serial: serialOf(d),
    }),
  );
  const passthrough: PassthroughDevice[] = [];
  for (const node of devices.hostdev ?? []) {
    if (attr(node, 'type') === 'pci') passthrough.push({ kind: 'hostdev', key: deviceKey(node), xml: builder.build({ hostdev: node }) as string });
  }
  for (const node of devices.interface ?? []) {
    if (attr(node, 'type') === 'hostdev') passthrough.push({ kind: 'sriov-port', key: deviceKey(node), xml: builder.build({ interface: node }) as string });
  }
  return { virtType: doc.domain[`${ATTR}type`], disks, passthrough };
}

/** Nova's find_disk: the root disk is vda/sda/xvda/hda when present, else the first disk. */
export function findRootDisk(facts: DomainFacts): DomainDisk | undefined {
  const disks = facts.disks.filter((d) => d.device === 'disk');
  return disks.find((d) => /^(vd|sd|xvd|hd)a$/.test(d.target)) ?? disks[0];
}

/** The root disk (find_disk), which must have a source. */
export function rootDisk(facts: DomainFacts): DomainDisk {
  const root = findRootDisk(facts);
  if (!root || root.source === null) throw new DomainXmlError('the domain has no root disk with a source');
  return root;
}

/** Devices in the persistent definition that the running domain lacks: what a restore re-attaches. */
export function missingPassthrough(inactive: DomainFacts, live: DomainFacts): PassthroughDevice[] {
  const present = new Set(live.passthrough.map((d) => d.key));
  return inactive.passthrough.filter((d) => !present.has(d.key));
}
