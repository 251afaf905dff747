// Nova's _live_snapshot with libvirt's transient-job block copy instead of undefining the domain:
// mirror the root disk into a qcow2 delta over the same backing file, end the mirror once it is in
// sync (abort without pivot: the guest keeps its disk), then flatten the delta. The guest never stops.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  LibvirtError,
  VIR_DOMAIN_BLOCK_COPY_REUSE_EXT,
  VIR_DOMAIN_BLOCK_COPY_SHALLOW,
  VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB,
  waitForBlockJob,
  type Domain,
  type Libvirt,
} from '../libvirt';
import type { DomainDescription } from '../contract';
import { describedChain } from './disk-chain';
import { createQcow2 } from './qemu-img';
import { convertImage, type ImageFormat } from './qemu-img-convert';
import { withQuiescedGuest, type QuiesceOutcome } from './quiesce';
import { xmlEscape } from './xml-escape';

export type LiveSnapshotSource = Pick<DomainDescription, 'diskTarget' | 'diskPath' | 'sourceFormat' | 'backingChain' | 'virtualSize'>;

export interface LiveSnapshotOptions {
  workDir: string;
  outputPath: string;
  outputFormat: ImageFormat;
  /** how long the mirror may take to reach sync */
  mirrorTimeoutMs: number;
  /** bound on the guest agent's freeze and thaw */
  quiesceTimeoutMs: number;
  log?: (message: string, fields: Record<string, unknown>) => void;
  signal?: AbortSignal;
  onProgress?: (phase: 'mirror' | 'convert', fraction: number) => void;
}

export class LiveSnapshotFailed extends Error {
  override readonly name = 'LiveSnapshotFailed';
}

/** Ends any block job on the disk; "no active job" is the normal answer (Nova's idempotent abort). */
export async function abortBlockJobQuietly(client: Libvirt, dom: Domain, disk: string): Promise<void> {
  await client.domainBlockJobAbort(dom, disk, 0).catch((err: unknown) => {
    if (!(err instanceof LibvirtError)) throw err;
  });
}

/** Returns whether the guest's filesystems were frozen while the mirror was cut (else crash-consistent). */
export async function liveSnapshot(client: Libvirt, dom: Domain, source: LiveSnapshotSource, options: LiveSnapshotOptions): Promise<QuiesceOutcome> {
  const deltaPath = join(options.workDir, 'snapshot.delta');
  const backingChain = describedChain(source).backing;
  const backing = backingChain[0];
  await abortBlockJobQuietly(client, dom, source.diskTarget);
  // The delta sits on the same backing file (a shallow copy) and has the disk's virtual size, as
  // libvirt reports it; the chain under it is libvirt's, each layer's format stated.
  await createQcow2(deltaPath, { sizeBytes: source.virtualSize, backing: backing?.path, backingFormat: backing?.format, signal: options.signal });
  const shallow = backing ? VIR_DOMAIN_BLOCK_COPY_SHALLOW : 0;
  const destXml = `<disk type='file'><driver type='qcow2'/><source file='${xmlEscape(deltaPath)}'/></disk>`;
  let jobActive = false;
  try {
    await client.domainBlockCopy(dom, source.diskTarget, destXml, {}, shallow | VIR_DOMAIN_BLOCK_COPY_REUSE_EXT | VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB);
    jobActive = true;
    const progress = setInterval(() => {
      void client
        .domainGetBlockJobInfo(dom, source.diskTarget)
        .then((info) => info && info.end > 0 && options.onProgress?.('mirror', info.cur / info.end))
        .catch(() => undefined);
    }, 1000);
    let outcome;
    try {
      outcome = await waitForBlockJob(client, dom, source.diskTarget, { timeoutMs: options.mirrorTimeoutMs });
    } finally {
      clearInterval(progress);
    }
    if (outcome.state !== 'ready') throw new LiveSnapshotFailed(`block copy of ${source.diskTarget} ended ${outcome.state} before it was in sync`);
    options.signal?.throwIfAborted();
    // Frozen only for the instant the mirror is cut.
    const { quiesce } = await withQuiescedGuest(client, dom, { timeoutMs: options.quiesceTimeoutMs, log: options.log }, async () => {
      await client.domainBlockJobAbort(dom, source.diskTarget, 0);
      jobActive = false;
    });
    await convertImage([{ path: deltaPath, format: 'qcow2' }, ...backingChain], options.outputPath, {
      outputFormat: options.outputFormat,
      signal: options.signal,
      onProgress: (f) => options.onProgress?.('convert', f),
    });
    return quiesce;
  } finally {
    if (jobActive) await abortBlockJobQuietly(client, dom, source.diskTarget);
    await rm(deltaPath, { force: true });
  }
}
