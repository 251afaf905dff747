// A domain's job (virDomainGetJobInfo / GetJobStats / AbortJob): the one long-running operation
// libvirt tracks per domain, a backup among them. Reached as `client.jobs`. A backup job outlives
// the connection that started it, so these calls are how a later process finds and ends it.
import { LibvirtProtocolError } from './errors';
import {
  DomainJobOperation,
  DomainJobType,
  VIR_DOMAIN_JOB_DATA_PROCESSED,
  VIR_DOMAIN_JOB_DATA_REMAINING,
  VIR_DOMAIN_JOB_DATA_TOTAL,
  VIR_DOMAIN_JOB_DISK_TEMP_TOTAL,
  VIR_DOMAIN_JOB_DISK_TEMP_USED,
  VIR_DOMAIN_JOB_ERRMSG,
  VIR_DOMAIN_JOB_OPERATION,
  VIR_DOMAIN_JOB_SUCCESS,
  VIR_DOMAIN_JOB_TIME_ELAPSED,
} from './backup-protocol';
import { Procedure, REMOTE_DOMAIN_JOB_STATS_MAX, TypedParamType } from './protocol';
import type { CallOptions, RpcConnection } from './rpc';
import { invoke } from './session';
import { readTypedParam, writeDomain, type Domain, type TypedParam } from './types';
import type { XdrReader, XdrWriter } from './xdr';

/** virDomainJobInfo: counters in bytes and milliseconds; zero where the job type has none. */
export interface DomainJobInfo {
  type: DomainJobType;
  timeElapsedMs: number;
  timeRemainingMs: number;
  dataTotal: number;
  dataProcessed: number;
  dataRemaining: number;
  memTotal: number;
  memProcessed: number;
  memRemaining: number;
  fileTotal: number;
  fileProcessed: number;
  fileRemaining: number;
}

/** virDomainGetJobStats, with the fields a backup reports decoded; null where libvirt sent none. */
export interface DomainJobStats {
  type: DomainJobType;
  operation: DomainJobOperation | null;
  timeElapsedMs: number | null;
  /** for a backup: bytes of the disks in the job, and of those copied so far (push mode) */
  dataTotal: number | null;
  dataProcessed: number | null;
  dataRemaining: number | null;
  /** for a pull backup: bytes the scratch files hold (copy-before-write), and their capacity */
  diskTempUsed: number | null;
  diskTempTotal: number | null;
  /** completed jobs (VIR_DOMAIN_JOB_STATS_COMPLETED): whether it succeeded, and libvirt's reason if not */
  success: boolean | null;
  errorMessage: string | null;
  /** everything libvirt sent, the decoded fields included */
  params: readonly TypedParam[];
}

/** field name (4) + type (4) + the smallest value (4). */
const TYPED_PARAM_MIN_BYTES = 12;

function findParam(params: readonly TypedParam[], field: string): TypedParam | undefined {
  return params.find((p) => p.field === field);
}

function numberParam(params: readonly TypedParam[], field: string): number | null {
  const p = findParam(params, field);
  if (p === undefined) return null;
  switch (p.type) {
    case TypedParamType.Int:
    case TypedParamType.UInt:
      return p.value;
    case TypedParamType.LLong:
    case TypedParamType.ULLong:
      if (p.value > BigInt(Number.MAX_SAFE_INTEGER) || p.value < BigInt(Number.MIN_SAFE_INTEGER)) {
        throw new LibvirtProtocolError(`job stat ${field} = ${p.value} exceeds the safe integer range`);
      }
      return Number(p.value);
    default:
      throw new LibvirtProtocolError(`job stat ${field} has non-numeric type ${p.type}`);
  }
}

function booleanParam(params: readonly TypedParam[], field: string): boolean | null {
  const p = findParam(params, field);
  if (p === undefined) return null;
  if (p.type !== TypedParamType.Boolean) throw new LibvirtProtocolError(`job stat ${field} has non-boolean type ${p.type}`);
  return p.value;
}

function stringParam(params: readonly TypedParam[], field: string): string | null {
  const p = findParam(params, field);
  if (p === undefined) return null;
  if (p.type !== TypedParamType.String) throw new LibvirtProtocolError(`job stat ${field} has non-string type ${p.type}`);
  return p.value;
}

export function readJobStats(r: XdrReader): DomainJobStats {
  const type = r.int32();
  const params = r.array(REMOTE_DOMAIN_JOB_STATS_MAX, TYPED_PARAM_MIN_BYTES, readTypedParam);
  return {
    type,
    operation: numberParam(params, VIR_DOMAIN_JOB_OPERATION),
    timeElapsedMs: numberParam(params, VIR_DOMAIN_JOB_TIME_ELAPSED),
    dataTotal: numberParam(params, VIR_DOMAIN_JOB_DATA_TOTAL),
    dataProcessed: numberParam(params, VIR_DOMAIN_JOB_DATA_PROCESSED),
    dataRemaining: numberParam(params, VIR_DOMAIN_JOB_DATA_REMAINING),
    diskTempUsed: numberParam(params, VIR_DOMAIN_JOB_DISK_TEMP_USED),
    diskTempTotal: numberParam(params, VIR_DOMAIN_JOB_DISK_TEMP_TOTAL),
    success: booleanParam(params, VIR_DOMAIN_JOB_SUCCESS),
    errorMessage: stringParam(params, VIR_DOMAIN_JOB_ERRMSG),
    params,
  };
}

function readJobInfo(r: XdrReader): DomainJobInfo {
  return {
    type: r.int32(),
    timeElapsedMs: r.uhyperNumber(),
    timeRemainingMs: r.uhyperNumber(),
    dataTotal: r.uhyperNumber(),
    dataProcessed: r.uhyperNumber(),
    dataRemaining: r.uhyperNumber(),
    memTotal: r.uhyperNumber(),
    memProcessed: r.uhyperNumber(),
    memRemaining: r.uhyperNumber(),
    fileTotal: r.uhyperNumber(),
    fileProcessed: r.uhyperNumber(),
    fileRemaining: r.uhyperNumber(),
  };
}

/** A job that is still running (bounded or not), as opposed to none or a finished one. */
export function isJobActive(stats: Pick<DomainJobStats, 'type'>): boolean {
  return stats.type === DomainJobType.Bounded || stats.type === DomainJobType.Unbounded;
}

/** Whether these stats (of the current job) show a backup job running on the domain. */
export function isBackupJobRunning(stats: Pick<DomainJobStats, 'type' | 'operation'>): boolean {
  return isJobActive(stats) && stats.operation === DomainJobOperation.Backup;
}

export class DomainJobs {
  constructor(private readonly rpc: RpcConnection) {}

  /** virDomainGetJobInfo: the running job's counters; type DomainJobType.None when there is none. It cannot say which operation runs: see getStats. */
  getInfo(dom: Domain, opts?: CallOptions): Promise<DomainJobInfo> {
    return invoke(this.rpc, Procedure.DomainGetJobInfo, (w) => writeDomain(w, dom), readJobInfo, opts);
  }

  /** virDomainGetJobStats; flags VIR_DOMAIN_JOB_STATS_* (COMPLETED for the job that last ended). */
  getStats(dom: Domain, flags = 0, opts?: CallOptions): Promise<DomainJobStats> {
    return invoke(this.rpc, Procedure.DomainGetJobStats, (w) => writeDomainAndFlags(w, dom, flags), readJobStats, opts);
  }

  /**
   * virDomainAbortJob; VIR_ERR_OPERATION_INVALID when no job runs. On libvirt 9.0 a pull backup's
   * job is gone from getStats when this returns, but its NBD socket and the scratch files libvirt
   * made are removed a moment later (under 250 ms here): wait for them before reusing the paths.
   */
  abort(dom: Domain, opts?: CallOptions): Promise<void> {
    return invoke(this.rpc, Procedure.DomainAbortJob, (w) => writeDomain(w, dom), () => undefined, opts);
  }

  /** virDomainAbortJobFlags (libvirt >= 8.5); flags VIR_DOMAIN_ABORT_JOB_*. */
  abortFlags(dom: Domain, flags: number, opts?: CallOptions): Promise<void> {
    return invoke(this.rpc, Procedure.DomainAbortJobFlags, (w) => writeDomainAndFlags(w, dom, flags), () => undefined, opts);
  }
}

function writeDomainAndFlags(w: XdrWriter, dom: Domain, flags: number): void {
  writeDomain(w, dom);
  w.uint32(flags);
}
