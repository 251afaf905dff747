// Block jobs as Nova's live snapshot drives them, against the real libvirtd + QEMU.
import path from 'node:path';
import {
  BlockJobType,
  LibvirtError,
  VIR_DOMAIN_BLOCK_COPY_REUSE_EXT,
  VIR_DOMAIN_BLOCK_COPY_SHALLOW,
  VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB,
  VIR_DOMAIN_BLOCK_REBASE_COPY,
  VIR_DOMAIN_BLOCK_REBASE_REUSE_EXT,
  VIR_DOMAIN_BLOCK_REBASE_SHALLOW,
  VIR_ERR_INVALID_ARG,
  VIR_ERR_OPERATION_INVALID,
  waitForBlockJob,
} from '../../../src/libvirt';
import { BASE_PATTERN, OVERLAY_PATTERN } from '../../../src/testing/instance-layout';
import { createQcow2, hasPattern, imageInfo, imagesIdentical } from '../../../src/host/qemu-img';
import { useInstanceFixture } from '../../support/instance-fixture';

function destXml(file: string): string {
  return `<disk type='file'><driver type='qcow2'/><source file='${file}'/></disk>`;
}

describe('libvirt client: block jobs', () => {
  const fixture = useInstanceFixture({ prefix: 'snaptest-bj' });

  it('blockJobAbort with no running job fails with invalid-argument "does not have an active block job"', async () => {
    const { client, instance } = fixture();
    const err = await client.domainBlockJobAbort(instance.domain, 'vda').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtError);
    expect((err as LibvirtError).code).toBe(VIR_ERR_INVALID_ARG);
    expect((err as LibvirtError).message).toMatch(/invalid argument.*does not have an active block job/);
    expect(await client.domainGetBlockJobInfo(instance.domain, 'vda')).toBeNull();
  });

  it('refuses a block copy on a persistent domain without TRANSIENT_JOB ("domain is not transient")', async () => {
    const { client, instance, dir } = fixture();
    const delta = path.join(dir, 'refused-delta.qcow2');
    await createQcow2(delta, { backing: instance.basePath });
    const err = await client
      .domainBlockCopy(instance.domain, 'vda', destXml(delta), {}, VIR_DOMAIN_BLOCK_COPY_SHALLOW | VIR_DOMAIN_BLOCK_COPY_REUSE_EXT)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibvirtError);
    expect((err as LibvirtError).code).toBe(VIR_ERR_OPERATION_INVALID);
    expect((err as LibvirtError).message).toMatch(/domain is not transient/);
    // blockRebase has no TRANSIENT_JOB flag, so Nova's older COPY call hits the same wall.
    const err2 = await client
      .domainBlockRebase(instance.domain, 'vda', delta, 0n, VIR_DOMAIN_BLOCK_REBASE_COPY | VIR_DOMAIN_BLOCK_REBASE_REUSE_EXT | VIR_DOMAIN_BLOCK_REBASE_SHALLOW)
      .catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(LibvirtError);
    expect((err2 as LibvirtError).message).toMatch(/domain is not transient/);
    expect(await client.domainGetBlockJobInfo(instance.domain, 'vda')).toBeNull();
  });

  it('shallow-copies the overlay into a pre-created delta with SHALLOW|REUSE_EXT|TRANSIENT_JOB', async () => {
    const { client, instance, dir } = fixture();
    const delta = path.join(dir, 'snapshot-delta.qcow2');
    // Nova: the delta's backing file is the overlay's backing file (the base image).
    const overlayBacking = (await imageInfo(instance.overlayPath, 'qcow2', { forceShare: true })).backingFilename;
    expect(overlayBacking).toBe(instance.basePath);
    await createQcow2(delta, { backing: overlayBacking ?? '' });
    const started = Date.now();
    await client.domainBlockCopy(
      instance.domain,
      'vda',
      destXml(delta),
      {},
      VIR_DOMAIN_BLOCK_COPY_SHALLOW | VIR_DOMAIN_BLOCK_COPY_REUSE_EXT | VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB,
    );
    const info = await client.domainGetBlockJobInfo(instance.domain, 'vda');
    expect(info).not.toBeNull();
    expect(info?.type).toBe(BlockJobType.Copy);
    const outcome = await waitForBlockJob(client, instance.domain, 'vda', { timeoutMs: 30_000, pollIntervalMs: 20 });
    expect(outcome.state).toBe('ready');
    const elapsed = Date.now() - started;
    expect(elapsed).toBeLessThan(1_000);
    const synced = await client.domainGetBlockJobInfo(instance.domain, 'vda');
    expect(synced?.end).toBeGreaterThan(0);
    expect(synced?.cur).toBe(synced?.end);
    // Abort without PIVOT: the guest keeps its overlay, the delta keeps the copy.
    await client.domainBlockJobAbort(instance.domain, 'vda');
    expect(await client.domainGetBlockJobInfo(instance.domain, 'vda')).toBeNull();
    expect(await imagesIdentical(instance.overlayPath, delta, { forceShare: true })).toBe(true);
    expect(await hasPattern(delta, OVERLAY_PATTERN)).toBe(true);
    expect(await hasPattern(delta, BASE_PATTERN)).toBe(true);
    expect((await imageInfo(delta, 'qcow2')).backingFilename).toBe(instance.basePath);
    // The guest still runs on its own overlay.
    expect(await client.domainGetXMLDesc(instance.domain)).toContain(`<source file='${instance.overlayPath}' index=`);
  });

  it('blockRebase pull (base=null) flattens the overlay and the job completes', async () => {
    const { client, instance } = fixture();
    await client.domainBlockRebase(instance.domain, 'vda', null, 0n, 0);
    const outcome = await waitForBlockJob(client, instance.domain, 'vda', { timeoutMs: 30_000, pollIntervalMs: 20 });
    expect(outcome.state).toBe('completed');
    expect(await client.domainGetBlockJobInfo(instance.domain, 'vda')).toBeNull();
    // QEMU caches qcow2 metadata; stopping it flushes the image so qemu-io sees the pulled data.
    await client.domainDestroy(instance.domain);
    const info = await imageInfo(instance.overlayPath, 'qcow2');
    expect(info.backingFilename).toBeNull();
    expect(await hasPattern(instance.overlayPath, BASE_PATTERN)).toBe(true);
    expect(await hasPattern(instance.overlayPath, OVERLAY_PATTERN)).toBe(true);
  });
});
