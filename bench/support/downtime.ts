// A cold snapshot's guest downtime as the guest sees it: the domain's state polled from outside,
// down from the first look that finds it not running (saved, shut off, paused) to the first that
// finds it running again. managedSave + restore alone is timed from its calls (saveAndRestore).
import { DomainState, type Libvirt } from '../../src/libvirt';

export interface DowntimeWatch {
  /** Ends the watch: the downtime in ms, or null when the guest never went down and came back. */
  stop(): Promise<number | null>;
}

/** Resolves once the domain's state has been read once: start what is timed after that. */
export async function watchDowntime(client: Libvirt, domainName: string, intervalMs = 10): Promise<DowntimeWatch> {
  let downSince: number | null = null;
  let upAt: number | null = null;
  let stopped = false;
  const dom = await client.domainLookupByName(domainName);
  if ((await client.domainGetState(dom)).state !== DomainState.Running) throw new Error(`${domainName} is not running: no downtime to watch`);
  const poll = async (): Promise<void> => {
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

/** managedSave and restore with nothing between, timed from the save's call to the restore's answer. */
export async function saveAndRestore(client: Libvirt, domainName: string): Promise<number> {
  const dom = await client.domainLookupByName(domainName);
  const started = performance.now();
  await client.domainManagedSave(dom, 0);
  await client.domainCreateWithFlags(dom, 0);
  return performance.now() - started;
}
