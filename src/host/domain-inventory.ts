// What a host reports about its domains so that an existing libvirt host, Nova-managed or not, is
// usable without registering anything: project and base image from Nova's domain metadata when
// present, else the configured default project, else none (a domain that names no owner is no
// tenant's: only cloud admins see it); the size from Nova's flavor record, else the domain's own
// vCPUs and memory.
import { XMLParser } from 'fast-xml-parser';
import { isLibvirtError, VIR_ERR_NO_DOMAIN, type DomainState, type Libvirt } from '../libvirt';
import { errorMessage, InventoryDomainSchema, type InventoryDisk, type InventoryDomain, type InventoryFlavor } from '../contract';
import { parseDomainXml } from './domain-xml';
import { novaPowerState } from './power-state';
import { volumeDisks } from './volume-disks';

const metadataParser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@_', removeNSPrefix: true });

export interface NovaOwnership {
  projectId: string | null;
  userId: string | null;
  imageRef: string | null;
}

function field(node: unknown, ...path: string[]): unknown {
  let current: unknown = node;
  for (const key of path) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

function text(value: unknown): string | null {
  return typeof value === 'string' && value.length > 0 ? value : null;
}

/** A count from an element that may carry attributes (`<vcpu placement='static'>2</vcpu>`). */
function count(node: unknown): number | null {
  const value = typeof node === 'object' && node !== null ? field(node, '#text') : node;
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : NaN;
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
}

const KIB_PER_UNIT: Record<string, number> = { b: 1 / 1024, bytes: 1 / 1024, k: 1, kib: 1, kb: 1000 / 1024, m: 1024, mib: 1024, mb: 1e6 / 1024, g: 1024 ** 2, gib: 1024 ** 2, gb: 1e9 / 1024 };

/** Reads `<nova:owner>` (project, user) and `<nova:root type='image' uuid=…>` from `<metadata>`. */
export function novaOwnership(xml: string): NovaOwnership {
  return ownershipOf(metadataParser.parse(xml));
}

function ownershipOf(doc: unknown): NovaOwnership {
  const instance = field(doc, 'domain', 'metadata', 'instance');
  const root = field(instance, 'root');
  return {
    projectId: text(field(instance, 'owner', 'project', '@_uuid')),
    userId: text(field(instance, 'owner', 'user', '@_uuid')),
    imageRef: field(root, '@_type') === 'image' ? text(field(root, '@_uuid')) : null,
  };
}

/** Nova's `<nova:flavor name=…>` record when present, else the domain's own vCPUs and memory. */
export function domainFlavor(xml: string): InventoryFlavor | null {
  return flavorOf(metadataParser.parse(xml));
}

function flavorOf(doc: unknown): InventoryFlavor | null {
  const nova = field(doc, 'domain', 'metadata', 'instance', 'flavor');
  const novaVcpus = count(field(nova, 'vcpus'));
  const novaMemory = count(field(nova, 'memory'));
  if (novaVcpus !== null && novaMemory !== null) {
    return {
      name: text(field(nova, '@_name')),
      vcpus: novaVcpus,
      memoryMiB: novaMemory,
      diskGiB: count(field(nova, 'disk')) ?? 0,
      swapMiB: count(field(nova, 'swap')) ?? 0,
      ephemeralGiB: count(field(nova, 'ephemeral')) ?? 0,
    };
  }
  const vcpus = count(field(doc, 'domain', 'vcpu'));
  const memory = field(doc, 'domain', 'memory');
  const amount = count(memory);
  const unit = String(field(memory, '@_unit') ?? 'KiB').toLowerCase();
  const kibPerUnit = KIB_PER_UNIT[unit];
  if (vcpus === null || amount === null || kibPerUnit === undefined) return null;
  return { name: null, vcpus, memoryMiB: Math.floor((amount * kibPerUnit) / 1024), diskGiB: 0, swapMiB: 0, ephemeralGiB: 0 };
}

/** One domain's report from its libvirt description. */
export function inventoryDomain(dom: { uuid: string; name: string }, state: DomainState, xml: string, host: string, defaultProject?: string): InventoryDomain {
  const facts = parseDomainXml(xml);
  const disks: InventoryDisk[] = facts.disks
    .filter((d) => d.device === 'disk' && d.source !== null && (d.driverType === 'qcow2' || d.driverType === 'raw'))
    .map((d) => ({ path: d.source as string, format: d.driverType as 'qcow2' | 'raw', target: d.target }));
  const doc: unknown = metadataParser.parse(xml);
  const owner = ownershipOf(doc);
  return {
    uuid: dom.uuid,
    name: dom.name,
    host,
    projectId: owner.projectId ?? defaultProject ?? null,
    userId: owner.userId,
    powerState: novaPowerState(state),
    disks,
    imageRef: owner.imageRef,
    flavor: flavorOf(doc),
    volumes: volumeDisks(facts),
  };
}

/** A domain the host could not describe in a valid report: left out, with the reason, so the others still go. */
export interface SkippedDomain {
  uuid: string;
  name: string;
  reason: string;
}

export async function scanDomains(client: Libvirt, host: string, defaultProject?: string): Promise<{ domains: InventoryDomain[]; skipped: SkippedDomain[] }> {
  const listed = await client.connectListAllDomains(0);
  const domains: InventoryDomain[] = [];
  const skipped: SkippedDomain[] = [];
  for (const dom of listed) {
    let state: DomainState;
    let xml: string;
    try {
      [{ state }, xml] = await Promise.all([client.domainGetState(dom), client.domainGetXMLDesc(dom, 0)]);
    } catch (err) {
      // undefined between the listing and the look: it is simply not part of this report
      if (isLibvirtError(err, VIR_ERR_NO_DOMAIN)) continue;
      throw err;
    }
    try {
      domains.push(InventoryDomainSchema.parse(inventoryDomain(dom, state, xml, host, defaultProject)));
    } catch (err) {
      skipped.push({ uuid: dom.uuid, name: dom.name, reason: errorMessage(err).slice(0, 500) });
    }
  }
  return { domains, skipped };
}
