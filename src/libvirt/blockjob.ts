// Waiting for a block job to reach a terminal or ready state. Events are the fast path; polling
// virDomainGetBlockJobInfo runs alongside as the fallback, because an event can be missed (the
// job finished before registration, or the driver, like test:///, sends none).
import { isLibvirtError, LibvirtTimeoutError, VIR_ERR_NO_SUPPORT } from './errors';
import type { BlockJobEvent } from './events';
import type { Libvirt } from './client';
import { BlockJobStatus, DomainEventId } from './protocol';
import type { Domain } from './types';

export interface WaitForBlockJobOptions {
  /** Overall deadline in ms. */
  timeoutMs?: number;
  /** Polling period of the fallback in ms. */
  pollIntervalMs?: number;
  /** Disable the event fast path (polling only). */
  useEvents?: boolean;
}

export type BlockJobOutcome =
  /** Copy/active-commit jobs: the mirror is in sync (cur == end); the caller must abort or pivot. */
  | { state: 'ready'; via: 'event' | 'poll' }
  /** Pull/commit jobs finished; also reported when the job vanished between polls. */
  | { state: 'completed'; via: 'event' | 'poll' }
  | { state: 'failed' | 'canceled'; via: 'event' };

export async function waitForBlockJob(client: Libvirt, dom: Domain, disk: string, options: WaitForBlockJobOptions = {}): Promise<BlockJobOutcome> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const pollIntervalMs = options.pollIntervalMs ?? 100;
  let settle!: (o: BlockJobOutcome) => void;
  let fail!: (e: Error) => void;
  const done = new Promise<BlockJobOutcome>((resolve, reject) => {
    settle = resolve;
    fail = reject;
  });
  let finished = false;
  const finish = (o: BlockJobOutcome | Error): void => {
    if (finished) return;
    finished = true;
    if (o instanceof Error) fail(o);
    else settle(o);
  };

  let callbackId: number | null = null;
  if (options.useEvents !== false) {
    try {
      callbackId = await client.connectDomainEventCallbackRegisterAny(DomainEventId.BlockJob2, dom, (ev) => {
        const e = ev as BlockJobEvent;
        if (e.kind !== 'block-job' || e.disk !== disk) return;
        if (e.status === BlockJobStatus.Ready) finish({ state: 'ready', via: 'event' });
        else if (e.status === BlockJobStatus.Completed) finish({ state: 'completed', via: 'event' });
        else if (e.status === BlockJobStatus.Failed) finish({ state: 'failed', via: 'event' });
        else finish({ state: 'canceled', via: 'event' });
      });
    } catch (e) {
      if (!isLibvirtError(e, VIR_ERR_NO_SUPPORT)) throw e;
    }
  }

  const deadline = setTimeout(() => finish(new LibvirtTimeoutError(`waitForBlockJob(${dom.name}, ${disk})`, timeoutMs)), timeoutMs);
  const poll = async (): Promise<void> => {
    while (!finished) {
      try {
        const info = await client.domainGetBlockJobInfo(dom, disk);
        if (info === null) finish({ state: 'completed', via: 'poll' });
        else if (info.end > 0 && info.cur === info.end) finish({ state: 'ready', via: 'poll' });
      } catch (e) {
        finish(e instanceof Error ? e : new Error(String(e)));
      }
      if (!finished) await new Promise((r) => setTimeout(r, pollIntervalMs));
    }
  };
  void poll();
  try {
    return await done;
  } finally {
    clearTimeout(deadline);
    if (callbackId !== null && !client.closed) await client.connectDomainEventCallbackDeregisterAny(callbackId).catch(() => undefined);
  }
}
