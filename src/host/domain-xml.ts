// Facts the snapshot path reads from a domain's XML: its virt type, its disks, and the devices a
// cold snapshot must detach first (PCI host devices and SR-IOV ports, Nova's _detach_pci_devices and
// _detach_sriov_ports). Parsed, never pattern-matched, so quoting and entities cannot fool it.
import { XMLBuilder, XMLParser } from 'fast-xml-parser';
import { z } from 'zod';

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

export interface DomainDisk {
  target: string;
  /** file path, block device, or rbd/... name */
  source: string | null;
  sourceType: string;
  driverType: string | null;
  device: string;
  /** a `<disk type='network'>`: its protocol (rbd, …) and the cephx user and libvirt secret of its `<auth>` */
  network: NetworkDiskSource | null;
}

export interface NetworkDiskSource {
  protocol: string;
  authUsername: string | null;
  secretUuid: string | null;
}

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

export function parseDomainXml(xml: string): DomainFacts {
  let doc: z.infer<typeof DomainDoc>;
  try {
    doc = DomainDoc.parse(parser.parse(xml));
  } catch (err) {
    throw new DomainXmlError(`unreadable domain XML: ${err instanceof Error ? err.message : String(err)}`);
  }
  const devices = doc.domain.devices ?? {};
  const disks = (devices.disk ?? []).map((d): DomainDisk => {
    const source = d.source;
    return {
      target: d.target[`${ATTR}dev`],
      source: source ? (attr(source, 'file') ?? attr(source, 'dev') ?? attr(source, 'name') ?? null) : null,
      sourceType: attr(d, 'type') ?? 'file',
      driverType: d.driver ? (attr(d.driver, 'type') ?? null) : null,
      device: attr(d, 'device') ?? 'disk',
      network: networkSourceOf(d),
    };
  });
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
export function rootDisk(facts: DomainFacts): DomainDisk {
  const disks = facts.disks.filter((d) => d.device === 'disk');
  const root = disks.find((d) => /^(vd|sd|xvd|hd)a$/.test(d.target)) ?? disks[0];
  if (!root || root.source === null) throw new DomainXmlError('the domain has no root disk with a source');
  return root;
}

/** Devices in the persistent definition that the running domain lacks: what a restore re-attaches. */
export function missingPassthrough(inactive: DomainFacts, live: DomainFacts): PassthroughDevice[] {
  const present = new Set(live.passthrough.map((d) => d.key));
  return inactive.passthrough.filter((d) => !present.has(d.key));
}
