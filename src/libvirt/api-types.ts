// Option schema and result shapes of the public client API.
import { z } from 'zod';
import {
  TypedParamType,
  VIR_DOMAIN_BLOCK_COPY_BANDWIDTH,
  VIR_DOMAIN_BLOCK_COPY_BUF_SIZE,
  VIR_DOMAIN_BLOCK_COPY_GRANULARITY,
  type BlockJobType,
  type DomainState,
} from './protocol';
import type { TypedParam } from './types';

export const ConnectOptionsSchema = z
  .object({
    /** Overrides the socket libvirt's rules would pick (unix transports only). */
    socketPath: z.string().min(1).optional(),
    /** Open read-only (VIR_CONNECT_RO), using the -ro socket for system URIs. */
    readonly: z.boolean().default(false),
    /** Deadline for establishing the socket. */
    connectTimeoutMs: z.number().int().positive().default(10_000),
    /** Default per-call deadline; individual calls can override it. */
    callTimeoutMs: z.number().int().positive().default(60_000),
    /** Ping after this much silence; 0 disables keepalive. libvirt's default is 5 s. */
    keepaliveIntervalMs: z.number().int().nonnegative().default(5_000),
    /** Silent intervals before the connection is declared lost. libvirt's default is 5. */
    keepaliveCount: z.number().int().positive().default(5),
  })
  .strict();

export type ConnectOptions = z.input<typeof ConnectOptionsSchema>;

export interface DomainInfo {
  state: DomainState;
  /** KiB */
  maxMem: number;
  /** KiB */
  memory: number;
  nrVirtCpu: number;
  /** Nanoseconds of CPU time; bigint because it outgrows 2^53 on long-lived guests. */
  cpuTime: bigint;
}

export interface BlockJobInfo {
  type: BlockJobType;
  bandwidth: number;
  cur: number;
  end: number;
}

/** virDomainGetBlockInfo: sizes in bytes, as libvirt reads the disk in its recorded format. */
export interface BlockInfo {
  /** the guest-visible size */
  capacity: number;
  /** host bytes in use */
  allocation: number;
  /** host bytes of the file or device */
  physical: number;
}

export interface BlockCopyParameters {
  /** Bytes per second (libvirt's "bandwidth" typed parameter). */
  bandwidth?: bigint;
  granularity?: number;
  bufSize?: bigint;
}

export function blockCopyTypedParams(params: BlockCopyParameters): TypedParam[] {
  const typed: TypedParam[] = [];
  if (params.bandwidth !== undefined) typed.push({ field: VIR_DOMAIN_BLOCK_COPY_BANDWIDTH, type: TypedParamType.ULLong, value: params.bandwidth });
  if (params.granularity !== undefined) typed.push({ field: VIR_DOMAIN_BLOCK_COPY_GRANULARITY, type: TypedParamType.UInt, value: params.granularity });
  if (params.bufSize !== undefined) typed.push({ field: VIR_DOMAIN_BLOCK_COPY_BUF_SIZE, type: TypedParamType.ULLong, value: params.bufSize });
  return typed;
}
