// A cold snapshot's guest downtime as the guest sees it: the domain's state polled from outside,
// down from the first look that finds it not running (saved, shut off, paused) to the first that
// finds it running again. The same watch times every cold method and managedSave + restore alone.
import { DomainState, type Libvirt } from '../../src/libvirt';

export interface DowntimeWatch {
  /** Ends the watch: the downtime in ms, or null when the guest never went down and came back. */
  stop(): Promise<number | null>;
}

export function watchDowntime(client: Libvirt, domainName: string, intervalMs = 10): DowntimeWatch {
  let downSince: number | null = null;
  let upAt: number | null = null;
  let stopped = false;
  const poll = async (): Promise<void> => {
    const dom = await client.domainLookupByName(domainName);
    while (!stopped && upAt === null) {
      const { state } = await client.domainGetState(dom);
      const now = performance.now();
      if (state !== DomainState.Running) downSince ??= now;
      else if (downSince !== null) upAt = now;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  };
  const polling = poll();
  return {
    async stop() {
      stopped = true;
      await polling;
      return downSince !== null && upAt !== null ? upAt - downSince : null;
    },
  };
}

/** managedSave and restore with nothing between: the floor of any cold snapshot's downtime. */
export async function saveAndRestore(client: Libvirt, domainName: string): Promise<number> {
  const watch = watchDowntime(client, domainName);
  const dom = await client.domainLookupByName(domainName);
  await client.domainManagedSave(dom, 0);
  await client.domainCreateWithFlags(dom, 0);
  const ms = await watch.stop();
  if (ms === null) throw new Error(`${domainName}: the watch did not see the save and the restore`);
  return ms;
}
