// The public client: one method per libvirt API call the snapshot path needs, each a thin,
// typed wrapper around one RPC procedure. Behaviour (errors, flags) is libvirt's, unaltered.
import { LibvirtUsageError } from './errors';
import { EventRouter, SUPPORTED_EVENT_IDS, type DomainEventCallback } from './events';
import {
  type DomainState,
  Procedure,
  QEMU_RPC,
  QemuProcedure,
  REMOTE_DOMAIN_BLOCK_COPY_PARAMETERS_MAX,
  REMOTE_DOMAIN_FSFREEZE_MOUNTPOINTS_MAX,
  REMOTE_DOMAIN_LIST_MAX,
  type RpcProgram,
} from './protocol';
import { agentCallOptions, checkAgentTimeout } from './agent-call';
import { DomainBackups } from './backup';
import { DomainCheckpoints } from './checkpoints';
import { DomainJobs } from './jobs';
import { blockCopyTypedParams, type BlockCopyParameters, type BlockInfo, type BlockJobInfo, type ConnectOptions, type DomainInfo } from './api-types';
import type { RpcConnection, CallOptions } from './rpc';
import { invoke, openSession } from './session';
import { DOMAIN_MIN_BYTES, readDomain, readOptString, readString, uuidToBytes, writeDomain, writeOptString, writeString, writeTypedParam, type Domain } from './types';
import { XdrReader, type XdrWriter } from './xdr';

function writeNothing(): void {}

export class Libvirt {
  private readonly events = new EventRouter();
  /** Backup jobs (virDomainBackupBegin, virDomainBackupGetXMLDesc), in backup.ts. */
  readonly backup: DomainBackups;
  /** Checkpoints (virDomainCheckpoint*, virDomainListAllCheckpoints), in checkpoints.ts. */
  readonly checkpoints: DomainCheckpoints;
  /** The domain's job (virDomainGetJobInfo/Stats, virDomainAbortJob), in jobs.ts: how a backup is watched and ended. */
  readonly jobs: DomainJobs;

  private constructor(
    private readonly rpc: RpcConnection,
    readonly uri: string,
  ) {
    rpc.onEvent((proc, payload) => this.events.deliver(proc, new XdrReader(payload)));
    this.backup = new DomainBackups(rpc);
    this.checkpoints = new DomainCheckpoints(rpc);
    this.jobs = new DomainJobs(rpc);
  }

  static async connect(uri: string, options: ConnectOptions = {}): Promise<Libvirt> {
    return new Libvirt(await openSession(uri, options), uri);
  }

  /** True once the connection is gone (closed, lost, or poisoned by a bad frame). */
  get closed(): boolean {
    return this.rpc.closed;
  }

  onClose(cb: (err: Error) => void): void {
    this.rpc.onClose(cb);
  }

  async close(): Promise<void> {
    if (this.rpc.closed) return;
    try {
      await this.simple(Procedure.ConnectClose, undefined, { timeoutMs: 5_000 });
    } catch {
      // Closing is best effort: the socket goes either way.
    }
    this.rpc.close();
  }

  private invoke<T>(proc: number, write: ((w: XdrWriter) => void) | undefined, read: (r: XdrReader) => T, opts?: CallOptions, program?: RpcProgram): Promise<T> {
    return invoke(this.rpc, proc, write, read, opts, program);
  }

  private simple(proc: Procedure, write?: (w: XdrWriter) => void, opts?: CallOptions): Promise<void> {
    return this.invoke(proc, write ?? writeNothing, () => undefined, opts);
  }

  private domCall(proc: Procedure, dom: Domain, flags: number | null, opts?: CallOptions): Promise<void> {
    return this.simple(
      proc,
      (w) => {
        writeDomain(w, dom);
        if (flags !== null) w.uint32(flags);
      },
      opts,
    );
  }

  // ---- connection ----

  connectSupportsFeature(feature: number, opts?: CallOptions): Promise<boolean> {
    return this.invoke(Procedure.ConnectSupportsFeature, (w) => w.int32(feature), (r) => r.int32() !== 0, opts);
  }

  /** libvirt version as major*1e6 + minor*1e3 + micro (e.g. 9000000 for 9.0.0). */
  connectGetLibVersion(opts?: CallOptions): Promise<number> {
    return this.invoke(Procedure.ConnectGetLibVersion, undefined, (r) => r.uhyperNumber(), opts);
  }

  /** Hypervisor version, same encoding (e.g. 7002022 for QEMU 7.2.22). */
  connectGetVersion(opts?: CallOptions): Promise<number> {
    return this.invoke(Procedure.ConnectGetVersion, undefined, (r) => r.uhyperNumber(), opts);
  }

  connectGetHostname(opts?: CallOptions): Promise<string> {
    return this.invoke(Procedure.ConnectGetHostname, undefined, readString, opts);
  }

  connectGetType(opts?: CallOptions): Promise<string> {
    return this.invoke(Procedure.ConnectGetType, undefined, readString, opts);
  }

  connectListAllDomains(flags = 0, opts?: CallOptions): Promise<Domain[]> {
    return this.invoke(
      Procedure.ConnectListAllDomains,
      (w) => w.int32(1).uint32(flags),
      (r) => {
        const domains = r.array(REMOTE_DOMAIN_LIST_MAX, DOMAIN_MIN_BYTES, readDomain);
        r.uint32();
        return domains;
      },
      opts,
    );
  }

  // ---- lookup, definition, state ----

  domainLookupByName(name: string, opts?: CallOptions): Promise<Domain> {
    return this.invoke(Procedure.DomainLookupByName, (w) => writeString(w, name), readDomain, opts);
  }

  domainLookupByUUID(uuid: string, opts?: CallOptions): Promise<Domain> {
    const bytes = uuidToBytes(uuid);
    return this.invoke(Procedure.DomainLookupByUUID, (w) => w.fixedOpaque(bytes, 16), readDomain, opts);
  }

  domainGetInfo(dom: Domain, opts?: CallOptions): Promise<DomainInfo> {
    return this.invoke(
      Procedure.DomainGetInfo,
      (w) => writeDomain(w, dom),
      (r) => ({ state: r.uint32(), maxMem: r.uhyperNumber(), memory: r.uhyperNumber(), nrVirtCpu: r.uint32(), cpuTime: r.uhyper() }),
      opts,
    );
  }

  domainGetState(dom: Domain, flags = 0, opts?: CallOptions): Promise<{ state: DomainState; reason: number }> {
    return this.invoke(
      Procedure.DomainGetState,
      (w) => {
        writeDomain(w, dom);
        w.uint32(flags);
      },
      (r) => ({ state: r.int32(), reason: r.int32() }),
      opts,
    );
  }

  domainGetXMLDesc(dom: Domain, flags = 0, opts?: CallOptions): Promise<string> {
    return this.invoke(
      Procedure.DomainGetXMLDesc,
      (w) => {
        writeDomain(w, dom);
        w.uint32(flags);
      },
      readString,
      opts,
    );
  }

  domainDefineXML(xml: string, opts?: CallOptions): Promise<Domain> {
    return this.invoke(Procedure.DomainDefineXML, (w) => writeString(w, xml), readDomain, opts);
  }

  domainUndefineFlags(dom: Domain, flags = 0, opts?: CallOptions): Promise<void> {
    return this.domCall(Procedure.DomainUndefineFlags, dom, flags, opts);
  }

  /** Starts a defined domain; returns the handle with its new runtime id. */
  domainCreateWithFlags(dom: Domain, flags = 0, opts?: CallOptions): Promise<Domain> {
    return this.invoke(
      Procedure.DomainCreateWithFlags,
      (w) => {
        writeDomain(w, dom);
        w.uint32(flags);
      },
      readDomain,
      opts,
    );
  }

  domainDestroy(dom: Domain, opts?: CallOptions): Promise<void> {
    return this.domCall(Procedure.DomainDestroy, dom, null, opts);
  }

  domainSuspend(dom: Domain, opts?: CallOptions): Promise<void> {
    return this.domCall(Procedure.DomainSuspend, dom, null, opts);
  }

  domainResume(dom: Domain, opts?: CallOptions): Promise<void> {
    return this.domCall(Procedure.DomainResume, dom, null, opts);
  }

  domainManagedSave(dom: Domain, flags = 0, opts?: CallOptions): Promise<void> {
    return this.domCall(Procedure.DomainManagedSave, dom, flags, opts);
  }

  domainHasManagedSaveImage(dom: Domain, flags = 0, opts?: CallOptions): Promise<boolean> {
    return this.invoke(
      Procedure.DomainHasManagedSaveImage,
      (w) => {
        writeDomain(w, dom);
        w.uint32(flags);
      },
      (r) => r.int32() !== 0,
      opts,
    );
  }

  /**
   * Sizes of `disk` (a target such as "vda", or its source path). libvirt asks QEMU for a running
   * domain and opens the image in the format its XML records for a stopped one: never a probe.
   */
  domainGetBlockInfo(dom: Domain, disk: string, flags = 0, opts?: CallOptions): Promise<BlockInfo> {
    return this.invoke(
      Procedure.DomainGetBlockInfo,
      (w) => {
        writeDomain(w, dom);
        writeString(w, disk);
        w.uint32(flags);
      },
      (r) => ({ allocation: r.uhyperNumber(), capacity: r.uhyperNumber(), physical: r.uhyperNumber() }),
      opts,
    );
  }

  // ---- block jobs ----

  domainBlockJobAbort(dom: Domain, disk: string, flags = 0, opts?: CallOptions): Promise<void> {
    return this.simple(
      Procedure.DomainBlockJobAbort,
      (w) => {
        writeDomain(w, dom);
        writeString(w, disk);
        w.uint32(flags);
      },
      opts,
    );
  }

  /** The active job on `disk`, or null when there is none (libvirt's return value 0). */
  domainGetBlockJobInfo(dom: Domain, disk: string, flags = 0, opts?: CallOptions): Promise<BlockJobInfo | null> {
    return this.invoke(
      Procedure.DomainGetBlockJobInfo,
      (w) => {
        writeDomain(w, dom);
        writeString(w, disk);
        w.uint32(flags);
      },
      (r) => {
        const found = r.int32();
        const info = { type: r.int32(), bandwidth: r.uhyperNumber(), cur: r.uhyperNumber(), end: r.uhyperNumber() };
        return found === 0 ? null : info;
      },
      opts,
    );
  }

  domainBlockCopy(dom: Domain, disk: string, destXml: string, params: BlockCopyParameters = {}, flags = 0, opts?: CallOptions): Promise<void> {
    const typed = blockCopyTypedParams(params);
    return this.simple(
      Procedure.DomainBlockCopy,
      (w) => {
        writeDomain(w, dom);
        writeString(w, disk);
        writeString(w, destXml);
        w.array(typed, REMOTE_DOMAIN_BLOCK_COPY_PARAMETERS_MAX, writeTypedParam);
        w.uint32(flags);
      },
      opts,
    );
  }

  /** `base` null with VIR_DOMAIN_BLOCK_REBASE_COPY: copy into a new file (Nova's older live-snapshot call). */
  domainBlockRebase(dom: Domain, disk: string, base: string | null, bandwidth: bigint = 0n, flags = 0, opts?: CallOptions): Promise<void> {
    return this.simple(
      Procedure.DomainBlockRebase,
      (w) => {
        writeDomain(w, dom);
        writeString(w, disk);
        writeOptString(w, base);
        w.uhyper(bandwidth);
        w.uint32(flags);
      },
      opts,
    );
  }

  // ---- devices, guest filesystems ----

  domainAttachDeviceFlags(dom: Domain, xml: string, flags = 0, opts?: CallOptions): Promise<void> {
    return this.deviceCall(Procedure.DomainAttachDeviceFlags, dom, xml, flags, opts);
  }

  domainDetachDeviceFlags(dom: Domain, xml: string, flags = 0, opts?: CallOptions): Promise<void> {
    return this.deviceCall(Procedure.DomainDetachDeviceFlags, dom, xml, flags, opts);
  }

  private deviceCall(proc: Procedure, dom: Domain, xml: string, flags: number, opts?: CallOptions): Promise<void> {
    return this.simple(
      proc,
      (w) => {
        writeDomain(w, dom);
        writeString(w, xml);
        w.uint32(flags);
      },
      opts,
    );
  }

  /** Freezes guest filesystems through the guest agent; returns how many were frozen. */
  domainFSFreeze(dom: Domain, mountpoints: readonly string[] = [], flags = 0, opts?: CallOptions): Promise<number> {
    return this.fsCall(Procedure.DomainFSFreeze, dom, mountpoints, flags, opts);
  }

  domainFSThaw(dom: Domain, mountpoints: readonly string[] = [], flags = 0, opts?: CallOptions): Promise<number> {
    return this.fsCall(Procedure.DomainFSThaw, dom, mountpoints, flags, opts);
  }

  private fsCall(proc: Procedure, dom: Domain, mountpoints: readonly string[], flags: number, opts?: CallOptions): Promise<number> {
    return this.invoke(
      proc,
      (w) => {
        writeDomain(w, dom);
        w.array(mountpoints, REMOTE_DOMAIN_FSFREEZE_MOUNTPOINTS_MAX, writeString);
        w.uint32(flags);
      },
      (r) => r.int32(),
      opts,
    );
  }

  // ---- guest agent ----

  /**
   * Passes one guest-agent JSON command through libvirt (libvirt-qemu's virDomainQemuAgentCommand)
   * and returns the agent's JSON reply as text; null when there is none (VIR_DOMAIN_QEMU_AGENT_COMMAND_NOWAIT).
   * `timeoutSeconds` is the agent's deadline inside libvirt (VIR_DOMAIN_QEMU_AGENT_COMMAND_*, or seconds).
   * Without opts.timeoutMs the RPC deadline is derived from it, so the reply is not given up on first.
   * Both agent calls are async so that a rejected timeout arrives as a rejection, like a daemon error.
   */
  async domainQemuAgentCommand(dom: Domain, command: string, timeoutSeconds: number, flags = 0, opts?: CallOptions): Promise<string | null> {
    checkAgentTimeout(timeoutSeconds);
    const args = (w: XdrWriter): void => {
      writeDomain(w, dom);
      writeString(w, command);
      w.int32(timeoutSeconds);
      w.uint32(flags);
    };
    return this.invoke(QemuProcedure.DomainAgentCommand, args, readOptString, opts?.timeoutMs !== undefined ? opts : agentCallOptions(timeoutSeconds), QEMU_RPC);
  }

  /** Bounds every agent call libvirt makes for this domain (fsfreeze, fsthaw, ...): VIR_DOMAIN_AGENT_RESPONSE_TIMEOUT_* or seconds. */
  async domainAgentSetResponseTimeout(dom: Domain, timeoutSeconds: number, flags = 0, opts?: CallOptions): Promise<void> {
    checkAgentTimeout(timeoutSeconds);
    const args = (w: XdrWriter): void => {
      writeDomain(w, dom);
      w.int32(timeoutSeconds);
      w.uint32(flags);
    };
    return this.invoke(Procedure.DomainAgentSetResponseTimeout, args, (r) => void r.int32(), opts);
  }

  // ---- events ----

  /**
   * Registers `cb` for `eventId` (DomainEventId.Lifecycle, BlockJob or BlockJob2) on one domain,
   * or on all when `dom` is null. Returns the callback id for deregistration.
   */
  async connectDomainEventCallbackRegisterAny(eventId: number, dom: Domain | null, cb: DomainEventCallback, opts?: CallOptions): Promise<number> {
    if (!SUPPORTED_EVENT_IDS.has(eventId)) throw new LibvirtUsageError(`event id ${eventId} is not decoded by this client`);
    const id = await this.invoke(
      Procedure.ConnectDomainEventCallbackRegisterAny,
      (w) => {
        w.int32(eventId);
        w.optional(dom, writeDomain);
      },
      (r) => r.int32(),
      opts,
    );
    this.events.add(id, cb);
    return id;
  }

  async connectDomainEventCallbackDeregisterAny(callbackId: number, opts?: CallOptions): Promise<void> {
    this.events.remove(callbackId);
    await this.simple(Procedure.ConnectDomainEventCallbackDeregisterAny, (w) => w.int32(callbackId), opts);
  }

  /** Undecodable event messages are reported here instead of failing the connection. */
  onEventError(cb: (err: Error) => void): void {
    this.events.onDecodeError(cb);
  }
}
