// Domain events over the callback-style registration (REMOTE_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_*):
// the daemon tags every event message with our callback id, so several listeners can share one
// connection without seeing each other's events.
import { LibvirtProtocolError } from './errors';
import { BlockJobStatus, BlockJobType, DomainEventId, Procedure } from './protocol';
import { readDomain, readString, type Domain } from './types';
import type { XdrReader } from './xdr';

export interface LifecycleEvent {
  kind: 'lifecycle';
  callbackId: number;
  domain: Domain;
  /** virDomainEventType (DomainLifecycleEvent) */
  event: number;
  detail: number;
}

export interface BlockJobEvent {
  kind: 'block-job';
  callbackId: number;
  domain: Domain;
  /** The disk: a path for BLOCK_JOB, the target name (e.g. "vda") for BLOCK_JOB_2. */
  disk: string;
  type: BlockJobType;
  status: BlockJobStatus;
}

export type DomainEvent = LifecycleEvent | BlockJobEvent;
export type DomainEventCallback = (event: DomainEvent) => void;

/** Event ids this client can decode; registering others would deliver nothing. */
export const SUPPORTED_EVENT_IDS: ReadonlySet<number> = new Set([DomainEventId.Lifecycle, DomainEventId.BlockJob, DomainEventId.BlockJob2]);

export function decodeDomainEvent(procedure: number, r: XdrReader): DomainEvent | null {
  switch (procedure) {
    case Procedure.DomainEventCallbackLifecycle: {
      const callbackId = r.int32();
      const domain = readDomain(r);
      const event = r.int32();
      const detail = r.int32();
      r.end();
      return { kind: 'lifecycle', callbackId, domain, event, detail };
    }
    case Procedure.DomainEventCallbackBlockJob:
    case Procedure.DomainEventBlockJob2: {
      const callbackId = r.int32();
      const domain = readDomain(r);
      const disk = readString(r);
      const type = r.int32();
      const status = r.int32();
      r.end();
      if (!(status in BlockJobStatus)) throw new LibvirtProtocolError(`unknown block job status ${status}`);
      return { kind: 'block-job', callbackId, domain, disk, type, status };
    }
    default:
      return null;
  }
}

/** Routes decoded events to the callback registered under their id. */
export class EventRouter {
  private readonly callbacks = new Map<number, DomainEventCallback>();
  private readonly errors: Array<(err: Error) => void> = [];

  add(callbackId: number, cb: DomainEventCallback): void {
    this.callbacks.set(callbackId, cb);
  }

  remove(callbackId: number): boolean {
    return this.callbacks.delete(callbackId);
  }

  has(callbackId: number): boolean {
    return this.callbacks.has(callbackId);
  }

  onDecodeError(cb: (err: Error) => void): void {
    this.errors.push(cb);
  }

  deliver(procedure: number, r: XdrReader): void {
    let ev: DomainEvent | null;
    try {
      ev = decodeDomainEvent(procedure, r);
    } catch (e) {
      // A bad event must not take down the connection the calls are multiplexed on.
      for (const cb of this.errors) cb(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    if (!ev) return;
    const cb = this.callbacks.get(ev.callbackId);
    if (cb) cb(ev);
  }
}
