// Nova's server view builder for the fields this system knows: status from vm_state/task_state
// (nova/api/openstack/common.py status_from_state), OS-EXT-STS:* always, OS-EXT-SRV-ATTR:* for admins.
import type { Instance } from '../store';
import type { ServerDetail } from './api-schemas';

const STATUS_BY_VM_STATE: Record<Instance['vmState'], string> = {
  active: 'ACTIVE',
  stopped: 'SHUTOFF',
  paused: 'PAUSED',
  suspended: 'SUSPENDED',
  error: 'ERROR',
  deleted: 'DELETED',
};

export function serverStatus(instance: Pick<Instance, 'vmState' | 'taskState'>): string {
  // Nova shows a server being deleted as ACTIVE/...; only the vm_state decides here, as for snapshots.
  return STATUS_BY_VM_STATE[instance.vmState];
}

export interface ViewContext {
  /** e.g. http://127.0.0.1:8774 */
  baseUrl: string;
  imageUrl: string;
  isAdmin: boolean;
}

function serverLinks(ctx: ViewContext, instance: Instance): { rel: string; href: string }[] {
  return [
    { rel: 'self', href: `${ctx.baseUrl}/v2.1/servers/${instance.uuid}` },
    { rel: 'bookmark', href: `${ctx.baseUrl}/servers/${instance.uuid}` },
  ];
}

export function serverSummary(ctx: ViewContext, instance: Instance): { id: string; name: string; links: { rel: string; href: string }[] } {
  return { id: instance.uuid, name: instance.name, links: serverLinks(ctx, instance) };
}

export function serverDetail(ctx: ViewContext, instance: Instance): ServerDetail {
  const detail: ServerDetail = {
    ...serverSummary(ctx, instance),
    status: serverStatus(instance),
    tenant_id: instance.projectId,
    image: instance.imageRef === null ? '' : { id: instance.imageRef, links: [{ rel: 'bookmark', href: `${ctx.imageUrl}/v2/images/${instance.imageRef}` }] },
    created: instance.createdAt,
    updated: instance.updatedAt,
    metadata: {},
    'OS-EXT-STS:task_state': instance.taskState,
    'OS-EXT-STS:vm_state': instance.vmState,
    'OS-EXT-STS:power_state': instance.powerState,
  };
  if (ctx.isAdmin) {
    detail['OS-EXT-SRV-ATTR:host'] = instance.host;
    detail['OS-EXT-SRV-ATTR:instance_name'] = instance.name;
  }
  return detail;
}
