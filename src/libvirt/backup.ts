// Domain backup jobs (virDomainBackupBegin / virDomainBackupGetXMLDesc): a point-in-time copy of
// the disks, pushed by QEMU to files or, in pull mode, served over NBD for us to read. Reached as
// `client.backup`; the job it starts is ended and watched through `client.jobs`.
import { Procedure } from './protocol';
import type { CallOptions, RpcConnection } from './rpc';
import { invoke } from './session';
import { readString, writeDomain, writeOptString, writeString, type Domain } from './types';
import type { XdrWriter } from './xdr';

export class DomainBackups {
  constructor(private readonly rpc: RpcConnection) {}

  /**
   * virDomainBackupBegin: starts the domain's one backup job (a <domainbackup> document) and
   * returns once QEMU holds the point in time; the copy itself goes on in the job. With
   * `checkpointXml` a checkpoint is created at the same instant. Flags VIR_DOMAIN_BACKUP_BEGIN_*.
   */
  begin(dom: Domain, backupXml: string, checkpointXml: string | null = null, flags = 0, opts?: CallOptions): Promise<void> {
    const args = (w: XdrWriter): void => {
      writeDomain(w, dom);
      writeString(w, backupXml);
      writeOptString(w, checkpointXml);
      w.uint32(flags);
    };
    return invoke(this.rpc, Procedure.DomainBackupBegin, args, () => undefined, opts);
  }

  /**
   * virDomainBackupGetXMLDesc: the running job as libvirt filled it in (NBD server, export names,
   * scratch files). VIR_ERR_NO_DOMAIN_BACKUP when the domain has no backup job.
   */
  getXMLDesc(dom: Domain, flags = 0, opts?: CallOptions): Promise<string> {
    const args = (w: XdrWriter): void => {
      writeDomain(w, dom);
      w.uint32(flags);
    };
    return invoke(this.rpc, Procedure.DomainBackupGetXMLDesc, args, readString, opts);
  }
}
