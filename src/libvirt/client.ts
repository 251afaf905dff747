// The public client: one method per libvirt API call the snapshot path needs, each a thin,
// typed wrapper around one RPC procedure. Behaviour (errors, flags) is libvirt's, unaltered.
import { LibvirtUsageError } from './errors';
import { EventRouter, SUPPORTED_EVENT_IDS, type DomainEventCallback } from './events';
import {
  AuthType,
  type DomainState,
  REMOTE_AUTH_TYPE_LIST_MAX,
  Procedure,
  REMOTE_DOMAIN_BLOCK_COPY_PARAMETERS_MAX,
  REMOTE_DOMAIN_FSFREEZE_MOUNTPOINTS_MAX,
  REMOTE_DOMAIN_LIST_MAX,
  VIR_CONNECT_RO,
  VIR_DRV_FEATURE_PROGRAM_KEEPALIVE,
} from './protocol';
import { ConnectOptionsSchema, blockCopyTypedParams, type BlockCopyParameters, type BlockJobInfo, type ConnectOptions, type DomainInfo } from './api-types';
import { RpcConnection, type CallOptions } from './rpc';
import { describeTarget, openTransport } from './transport';
import { DOMAIN_MIN_BYTES, readDomain, readString, uuidToBytes, writeDomain, writeOptString, writeString, writeTypedParam, type Domain } from './types';
import { parseUri, resolveTarget } from './uri';
import { XdrReader, XdrWriter } from './xdr';

function writeNothing(): void {}

export class Libvirt {
  private readonly events = new EventRouter();

  private constructor(
    private readonly rpc: RpcConnection,
    readonly uri: string,
  ) {
    rpc.onEvent((proc, payload) => this.events.deliver(proc, new XdrReader(payload)));
  }

  static async connect(uri: string, options: ConnectOptions = {}): Promise<Libvirt> {
    const parsed_ = ConnectOptionsSchema.safeParse(options);
    if (!parsed_.success) throw new LibvirtUsageError(`invalid connect options: ${parsed_.error.message}`);
    const opts = parsed_.data;
    const parsed = parseUri(uri);
    const target = resolveTarget(parsed, { socketPath: opts.socketPath, readonly: opts.readonly });
    const socket = await openTransport(target, opts.connectTimeoutMs);
    const rpc = new RpcConnection(socket, opts, describeTarget(target));
    const client = new Libvirt(rpc, uri);
    try {
      await client.authenticate();
      await client.simple(Procedure.ConnectOpen, (w) => {
        writeOptString(w, parsed.daemonUri);
        w.uint32(opts.readonly ? VIR_CONNECT_RO : 0);
      });
      if (opts.keepaliveIntervalMs > 0 && (await client.connectSupportsFeature(VIR_DRV_FEATURE_PROGRAM_KEEPALIVE))) rpc.startKeepalive();
    } catch (e) {
      rpc.close('connect failed');
      throw e;
    }
    return client;
  }

  /**
   * The daemon refuses every call until the client has asked for the auth list; for root on a
   * polkit-protected unix socket, that request alone (plus AUTH_POLKIT) grants access.
   */
  private async authenticate(): Promise<void> {
    const types = await this.invoke(Procedure.AuthList, undefined, (r) => r.array(REMOTE_AUTH_TYPE_LIST_MAX, 4, (x) => x.int32()));
    if (types.length === 0 || types.includes(AuthType.None)) return;
    if (types.includes(AuthType.Polkit)) {
      await this.invoke(Procedure.AuthPolkit, undefined, (r) => r.int32());
      return;
    }
    throw new LibvirtUsageError(`the daemon requires authentication this client does not implement (auth types ${types.join(', ')}; SASL is unsupported)`);
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

  private async invoke<T>(proc: Procedure, write: ((w: XdrWriter) => void) | undefined, read: (r: XdrReader) => T, opts?: CallOptions): Promise<T> {
    const r = await this.rpc.call(proc, write, opts);
    const value = read(r);
    r.end();
    return value;
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
