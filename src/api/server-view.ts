// Nova's server view builder (nova/api/openstack/compute/views/servers.py), whole for the fields
// Tempest's response schemas require at each microversion. What this system knows comes from the
// instance store; what has no meaning here takes Nova's own empty or default form (no addresses,
// no tags, not locked), never an invented value.
import { createHash } from 'node:crypto';
import { isVolumeBacked } from '../contract';
import type { Instance } from '../store';
import type { ServerDetail } from './api-schemas';
import { atLeast, type Microversion } from './microversion';

const STATUS_BY_VM_STATE: Record<Instance['vmState'], string> = {
  active: 'ACTIVE',
  stopped: 'SHUTOFF',
  paused: 'PAUSED',
  suspended: 'SUSPENDED',
  error: 'ERROR',
  deleted: 'DELETED',
};

/** Microversions that add a field to the server view. */
const LOCKED = { major: 2, minor: 9 };
const DESCRIPTION = { major: 2, minor: 19 };
const TAGS = { major: 2, minor: 26 };
const EMBEDDED_FLAVOR = { major: 2, minor: 47 };
const TRUSTED_CERTS = { major: 2, minor: 63 };
const SERVER_GROUPS = { major: 2, minor: 71 };
const LOCKED_REASON = { major: 2, minor: 73 };
const PINNED_AZ = { major: 2, minor: 96 };

export function serverStatus(instance: Pick<Instance, 'vmState' | 'taskState'>): string {
  // Nova shows a server being deleted as ACTIVE/...; only the vm_state decides here, as for snapshots.
  return STATUS_BY_VM_STATE[instance.vmState];
}

export interface ViewContext {
  /** e.g. http://127.0.0.1:8774 */
  baseUrl: string;
  imageUrl: string;
  isAdmin: boolean;
  version: Microversion;
}

type Link = { rel: string; href: string };

/** Nova's utils.generate_hostid: the host as one project sees it, so projects cannot map hosts together. */
export function hostId(projectId: string, host: string): string {
  return host === '' ? '' : createHash('sha224').update(projectId + host).digest('hex');
}

/** Nova's timestamps carry whole seconds. */
export function novaTime(iso: string): string {
  return iso.replace(/\.\d+Z$/, 'Z');
}

function serverLinks(ctx: ViewContext, instance: Instance): Link[] {
  return [
    { rel: 'self', href: `${ctx.baseUrl}/v2.1/servers/${instance.uuid}` },
    { rel: 'bookmark', href: `${ctx.baseUrl}/servers/${instance.uuid}` },
  ];
}

/**
 * The flavor as Nova shows it: embedded from 2.47 (from the domain's Nova metadata, else its vCPUs and
 * memory); before, a reference by flavor id. Nova's domain metadata records the flavor's name but not
 * its id, so the reference carries the name ('' when the domain has no Nova metadata).
 */
function flavorView(ctx: ViewContext, instance: Instance): ServerDetail['flavor'] {
  const f = instance.flavor;
  if (!atLeast(ctx.version, EMBEDDED_FLAVOR)) {
    const id = f?.name ?? '';
    return { id, links: [{ rel: 'bookmark', href: `${ctx.baseUrl}/flavors/${encodeURIComponent(id)}` }] };
  }
  return { original_name: f?.name ?? '', vcpus: f?.vcpus ?? 0, ram: f?.memoryMiB ?? 0, disk: f?.diskGiB ?? 0, ephemeral: f?.ephemeralGiB ?? 0, swap: f?.swapMiB ?? 0 };
}

export function serverSummary(ctx: ViewContext, instance: Instance): { id: string; name: string; links: Link[] } {
  return { id: instance.uuid, name: instance.name, links: serverLinks(ctx, instance) };
}

/** `one`: GET /servers/{id}, which alone shows server_groups (Nova's show view, not its detail list). */
export function serverDetail(ctx: ViewContext, instance: Instance, one = false): ServerDetail {
  const v = ctx.version;
  const detail: ServerDetail = {
    ...serverSummary(ctx, instance),
    status: serverStatus(instance),
    // An ownerless server (no <nova:owner>) belongs to no project.
    tenant_id: instance.projectId ?? '',
    user_id: instance.userId ?? '',
    metadata: {},
    hostId: hostId(instance.projectId ?? '', instance.host),
    // Nova shows image "" for a server that boots from a volume.
    image: instance.imageRef === null || isVolumeBacked(instance) ? '' : { id: instance.imageRef, links: [{ rel: 'bookmark', href: `${ctx.imageUrl}/v2/images/${instance.imageRef}` }] },
    flavor: flavorView(ctx, instance),
    created: novaTime(instance.createdAt),
    updated: novaTime(instance.updatedAt),
    addresses: {},
    accessIPv4: '',
    accessIPv6: '',
    // Nova adds delete_on_termination from 2.3; the domain does not record it, so it is left out (Tempest's schema allows that)
    'os-extended-volumes:volumes_attached': instance.volumes.map((v) => ({ id: v.volumeId })),
    'OS-EXT-STS:task_state': instance.taskState,
    'OS-EXT-STS:vm_state': instance.vmState,
    'OS-EXT-STS:power_state': instance.powerState,
  };
  if (ctx.isAdmin) {
    detail['OS-EXT-SRV-ATTR:host'] = instance.host;
    detail['OS-EXT-SRV-ATTR:instance_name'] = instance.name;
  }
  if (atLeast(v, LOCKED)) detail.locked = false;
  if (atLeast(v, DESCRIPTION)) detail.description = null;
  if (atLeast(v, TAGS)) detail.tags = [];
  if (atLeast(v, TRUSTED_CERTS)) detail.trusted_image_certificates = null;
  if (one && atLeast(v, SERVER_GROUPS)) detail.server_groups = [];
  if (atLeast(v, LOCKED_REASON)) detail.locked_reason = null;
  if (atLeast(v, PINNED_AZ)) detail.pinned_availability_zone = null;
  return detail;
}
