// The host activity of Nova's direct snapshot: the disk's source and the host's settings say
// whether it applies; the guest is quiesced (live) around the disk's RBD snapshot only; the rest
// happens inside the cluster and in Glance (src/host/direct-snapshot.ts).
import { Context } from '@temporalio/activity';
import { RbdClones } from '../ceph';
import type { HostActivities } from '../contract';
import { hasImageLocations } from '../images/client';
import { directSnapshot, directSnapshotNames, directSnapshotRefusal, discardDirectSnapshot } from '../host/direct-snapshot';
import { RbdDiskSource } from '../host/disk-source/rbd-source';
import { diskSourceOf } from '../host/disk-source/root-disk';
import { withQuiescedGuest, type QuiesceOutcome } from '../host/quiesce';
import { withHeartbeat } from './activity-support';
import type { HostActivityDeps } from './host-activity-deps';

export function createDirectSnapshotActivity(deps: HostActivityDeps): Pick<HostActivities, 'directSnapshot' | 'discardDirectSnapshot'> {
  const { config, session, images } = deps;
  return {
    async discardDirectSnapshot({ description, imageId }) {
      const source = diskSourceOf(description, config.rbd);
      const glancePool = config.rbd.glancePool;
      if (!(source instanceof RbdDiskSource) || glancePool === undefined || !hasImageLocations(images)) return { removed: false };
      return discardDirectSnapshot({ clones: new RbdClones(source.conn), images }, directSnapshotNames(source.ref, glancePool, imageId), imageId);
    },
    async directSnapshot({ domainName, mode, description, imageId }) {
      return withHeartbeat(async () => {
        const source = diskSourceOf(description, config.rbd);
        const refusal = directSnapshotRefusal(source.kind, config.rbd);
        const glancePool = config.rbd.glancePool;
        if (refusal !== null || !(source instanceof RbdDiskSource) || glancePool === undefined) return { done: false, reason: refusal ?? 'not an RBD disk' };
        if (!hasImageLocations(images)) return { done: false, reason: 'the image client cannot hand Glance a location' };
        const log = (message: string, fields: Record<string, unknown>) => Context.current().log.warn(message, { ...fields, domain: domainName });
        // Nova freezes nothing here; a running guest's snapshot is quiesced as the live path's cut is,
        // for the instant of `rbd snap create` only. A cold guest is saved or off: nothing to freeze.
        const cut = async (take: () => Promise<void>): Promise<QuiesceOutcome> => {
          if (mode !== 'live') {
            await take();
            return { quiesced: false, freezeWindowMs: null };
          }
          const client = await session.client();
          const dom = await client.domainLookupByName(domainName);
          return (await withQuiescedGuest(client, dom, { timeoutMs: config.quiesceTimeoutMs, log }, take)).quiesce;
        };
        const names = directSnapshotNames(source.ref, glancePool, imageId);
        return directSnapshot({ clones: new RbdClones(source.conn), images, cut, log }, names, imageId, description.virtualSize);
      });
    },
  };
}
