// Domain checkpoints (virDomainCheckpoint*): libvirt's record of a point in time on a domain's disks,
// kept by QEMU as a persistent dirty bitmap per disk. Reached as `client.checkpoints`.
import { LibvirtProtocolError, LibvirtUsageError } from './errors';
import {
  VIR_DOMAIN_CHECKPOINT_CREATE_QUIESCE,
  VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE,
  VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE_VALIDATE,
  VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN,
  VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN_ONLY,
} from './backup-protocol';
import { Procedure, REMOTE_DOMAIN_CHECKPOINT_LIST_MAX } from './protocol';
import type { CallOptions, RpcConnection } from './rpc';
import { invoke } from './session';
import { DOMAIN_MIN_BYTES, readDomain, readString, writeDomain, writeString, type Domain } from './types';
import type { XdrReader, XdrWriter } from './xdr';

/** remote_nonnull_domain_checkpoint: a checkpoint is named within its domain. */
export interface DomainCheckpoint {
  readonly name: string;
  readonly domain: Domain;
}

/** Empty name (4) + the smallest domain. */
const CHECKPOINT_MIN_BYTES = 4 + DOMAIN_MIN_BYTES;

export function writeCheckpoint(w: XdrWriter, cp: DomainCheckpoint): void {
  writeString(w, cp.name);
  writeDomain(w, cp.domain);
}

export function readCheckpoint(r: XdrReader): DomainCheckpoint {
  const name = readString(r);
  const domain = readDomain(r);
  return { name, domain };
}

function readCheckpointList(r: XdrReader): DomainCheckpoint[] {
  const list = r.array(REMOTE_DOMAIN_CHECKPOINT_LIST_MAX, CHECKPOINT_MIN_BYTES, readCheckpoint);
  const count = r.int32();
  if (count !== list.length) throw new LibvirtProtocolError(`checkpoint list holds ${list.length} entries but says ${count}`);
  return list;
}

/**
 * libvirt's client library refuses these combinations before the call leaves the process, and the
 * daemon does not check them again; so must we.
 */
function checkCreateFlags(flags: number): void {
  if (flags & VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE_VALIDATE && !(flags & VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE)) {
    throw new LibvirtUsageError('VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE_VALIDATE requires VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE');
  }
  if (flags & VIR_DOMAIN_CHECKPOINT_CREATE_QUIESCE && flags & VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE) {
    throw new LibvirtUsageError('VIR_DOMAIN_CHECKPOINT_CREATE_QUIESCE and VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE exclude each other');
  }
}

function checkDeleteFlags(flags: number): void {
  if (flags & VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN && flags & VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN_ONLY) {
    throw new LibvirtUsageError('VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN and VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN_ONLY exclude each other');
  }
}

export class DomainCheckpoints {
  constructor(private readonly rpc: RpcConnection) {}

  /**
   * virDomainCheckpointCreateXML. With VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE, `xml` is what
   * getXMLDesc returned before a METADATA_ONLY delete, and no new bitmap is made.
   * A checkpoint taken together with a backup goes through `client.backup.begin` instead.
   */
  async createXML(dom: Domain, xml: string, flags = 0, opts?: CallOptions): Promise<DomainCheckpoint> {
    checkCreateFlags(flags);
    const args = (w: XdrWriter): void => {
      writeDomain(w, dom);
      writeString(w, xml);
      w.uint32(flags);
    };
    return invoke(this.rpc, Procedure.DomainCheckpointCreateXML, args, readCheckpoint, opts);
  }

  /** virDomainCheckpointGetXMLDesc; flags VIR_DOMAIN_CHECKPOINT_XML_*. */
  getXMLDesc(cp: DomainCheckpoint, flags = 0, opts?: CallOptions): Promise<string> {
    return invoke(this.rpc, Procedure.DomainCheckpointGetXMLDesc, (w) => writeCheckpointAndFlags(w, cp, flags), readString, opts);
  }

  /** virDomainCheckpointLookupByName: VIR_ERR_NO_DOMAIN_CHECKPOINT when the domain has none of that name. */
  lookupByName(dom: Domain, name: string, flags = 0, opts?: CallOptions): Promise<DomainCheckpoint> {
    const args = (w: XdrWriter): void => {
      writeDomain(w, dom);
      writeString(w, name);
      w.uint32(flags);
    };
    return invoke(this.rpc, Procedure.DomainCheckpointLookupByName, args, readCheckpoint, opts);
  }

  /** virDomainListAllCheckpoints; flags VIR_DOMAIN_CHECKPOINT_LIST_* (TOPOLOGICAL puts parents first). */
  listAll(dom: Domain, flags = 0, opts?: CallOptions): Promise<DomainCheckpoint[]> {
    const args = (w: XdrWriter): void => {
      writeDomain(w, dom);
      w.int32(1); // need_results: we want the list, not only its length
      w.uint32(flags);
    };
    return invoke(this.rpc, Procedure.DomainListAllCheckpoints, args, readCheckpointList, opts);
  }

  /** virDomainCheckpointListAllChildren; VIR_DOMAIN_CHECKPOINT_LIST_DESCENDANTS for the whole subtree. */
  listAllChildren(cp: DomainCheckpoint, flags = 0, opts?: CallOptions): Promise<DomainCheckpoint[]> {
    const args = (w: XdrWriter): void => {
      writeCheckpoint(w, cp);
      w.int32(1);
      w.uint32(flags);
    };
    return invoke(this.rpc, Procedure.DomainCheckpointListAllChildren, args, readCheckpointList, opts);
  }

  /** virDomainCheckpointGetParent: VIR_ERR_NO_DOMAIN_CHECKPOINT for a root checkpoint. */
  getParent(cp: DomainCheckpoint, flags = 0, opts?: CallOptions): Promise<DomainCheckpoint> {
    return invoke(this.rpc, Procedure.DomainCheckpointGetParent, (w) => writeCheckpointAndFlags(w, cp, flags), readCheckpoint, opts);
  }

  /**
   * virDomainCheckpointDelete. Without VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY the bitmaps go
   * too (merged into the parent's), which needs the domain running.
   */
  async delete(cp: DomainCheckpoint, flags = 0, opts?: CallOptions): Promise<void> {
    checkDeleteFlags(flags);
    await invoke(this.rpc, Procedure.DomainCheckpointDelete, (w) => writeCheckpointAndFlags(w, cp, flags), () => undefined, opts);
  }
}

function writeCheckpointAndFlags(w: XdrWriter, cp: DomainCheckpoint, flags: number): void {
  writeCheckpoint(w, cp);
  w.uint32(flags);
}
