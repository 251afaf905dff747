// What a host reports about its domains so that an existing libvirt host, Nova-managed or not, is
// usable without registering anything: project and base image from Nova's domain metadata when
// present, else the configured default project.
import { XMLParser } from 'fast-xml-parser';
import { isLibvirtError, VIR_ERR_NO_DOMAIN, type DomainState, type Libvirt } from '../libvirt';
import type { InventoryDisk, InventoryDomain } from '../contract';
import { parseDomainXml } from './domain-xml';
import { novaPowerState } from './power-state';

const metadataParser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@_', removeNSPrefix: true });

export interface NovaOwnership {
  projectId: string | null;
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

/** Reads `<nova:owner><nova:project uuid=…>` and `<nova:root type='image' uuid=…>` from `<metadata>`. */
export function novaOwnership(xml: string): NovaOwnership {
  const doc: unknown = metadataParser.parse(xml);
  const instance = field(doc, 'domain', 'metadata', 'instance');
  const project = field(instance, 'owner', 'project', '@_uuid');
  const root = field(instance, 'root');
  const rootUuid = field(root, '@_type') === 'image' ? field(root, '@_uuid') : undefined;
  return {
    projectId: typeof project === 'string' && project.length > 0 ? project : null,
    imageRef: typeof rootUuid === 'string' && rootUuid.length > 0 ? rootUuid : null,
  };
}

export async function scanDomains(client: Libvirt, host: string, defaultProject: string): Promise<InventoryDomain[]> {
  const domains = await client.connectListAllDomains(0);
  const found: InventoryDomain[] = [];
  for (const dom of domains) {
    let state: DomainState;
    let xml: string;
    try {
      [{ state }, xml] = await Promise.all([client.domainGetState(dom), client.domainGetXMLDesc(dom, 0)]);
    } catch (err) {
      // undefined between the listing and the look: it is simply not part of this report
      if (isLibvirtError(err, VIR_ERR_NO_DOMAIN)) continue;
      throw err;
    }
    const facts = parseDomainXml(xml);
    const disks: InventoryDisk[] = facts.disks
      .filter((d) => d.device === 'disk' && d.source !== null && (d.driverType === 'qcow2' || d.driverType === 'raw'))
      .map((d) => ({ path: d.source as string, format: d.driverType as 'qcow2' | 'raw', target: d.target }));
    const owner = novaOwnership(xml);
    found.push({ uuid: dom.uuid, name: dom.name, host, projectId: owner.projectId ?? defaultProject, powerState: novaPowerState(state), disks, imageRef: owner.imageRef });
  }
  return found;
}
