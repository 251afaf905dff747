// libvirt's backup API against the real libvirtd + QEMU, on a real Linux guest whose workload
// appends to its ext4 disk: a pull backup served over NBD on a unix socket (its copy is a clean
// ext4 holding every record fsynced before the job began), the job seen, refused twice and
// aborted, and the checkpoint taken with it listed, dropped to metadata, redefined and deleted.
// The tests run in order on one guest: the later ones use the checkpoint the backup made.
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { buildCheckpointXml, buildPullBackupXml, parseBackupXml, parseCheckpointXml } from '../../../src/host/backup-xml';
import { createQcow2 } from '../../../src/host/qemu-img';
import { parseToolJson, runToolOutput } from '../../../src/process/tool-process';
import {
  DomainJobOperation,
  DomainJobType,
  LibvirtError,
  VIR_DOMAIN_BACKUP_BEGIN_REUSE_EXTERNAL,
  VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE,
  VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE_VALIDATE,
  VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN,
  VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY,
  VIR_DOMAIN_CHECKPOINT_LIST_ROOTS,
  VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN,
  VIR_DOMAIN_JOB_STATS_COMPLETED,
  VIR_ERR_NO_DOMAIN_BACKUP,
  VIR_ERR_NO_DOMAIN_CHECKPOINT,
  VIR_ERR_OPERATION_INVALID,
  VIR_ERR_OPERATION_TIMEOUT,
  isBackupJobRunning,
  isLibvirtError,
  type DomainCheckpoint,
} from '../../../src/libvirt';
import { withGuestImage } from '../../../src/testing/guest/guest-image-reader';
import { readConsole } from '../../../src/testing/guest/guest-console';
import { lastFsynced, verifyAppendLog } from '../../../src/testing/guest/workload-verifiers';
import { createRealGuest } from '../../support/guest/real-guest-run';
import type { InstanceFixture } from '../../support/instance-fixture';

const CHECKPOINT = 'bk1';

function nbdUri(socket: string, exportName = 'vda'): string {
  return `nbd+unix:///${exportName}?socket=${socket}`;
}

const ImageInfoJson = z.object({ 'virtual-size': z.number(), format: z.string(), 'backing-filename': z.string().optional() }).passthrough();

async function qemuImgInfo(target: string, forceShare = false): Promise<z.output<typeof ImageInfoJson>> {
  const out = await runToolOutput('qemu-img', ['info', '--output=json', ...(forceShare ? ['-U'] : []), target]);
  return parseToolJson('qemu-img', ImageInfoJson, out.stdout);
}

/** QEMU removes the socket, and libvirt the scratch file it made, just after the abort returns. */
async function waitUntilGone(file: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (existsSync(file)) {
    if (Date.now() > deadline) throw new Error(`${file} still exists ${timeoutMs} ms after the job ended`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function codeOf(p: Promise<unknown>): Promise<number | string> {
  const e = await p.then(
    () => 'resolved',
    (err: unknown) => err,
  );
  return e instanceof LibvirtError ? e.code : String(e);
}

describe('libvirt client: pull backup and checkpoints on a writing Linux guest', () => {
  let fixture: InstanceFixture | null = null;
  const fx = (): InstanceFixture => {
    if (!fixture) throw new Error('guest not created (did beforeAll fail?)');
    return fixture;
  };

  beforeAll(async () => {
    fixture = await createRealGuest({ prefix: 'snaptest-bk', linux: { workload: 'log', rateKiB: 512 } });
  });

  afterAll(async () => {
    if (!fixture) return;
    const { client, instance } = fixture;
    // A backup job blocks other jobs on the domain, and checkpoint metadata blocks its undefine.
    await client.jobs.abort(instance.domain).catch((e: unknown) => {
      if (!isLibvirtError(e, VIR_ERR_OPERATION_INVALID)) throw e;
    });
    for (const cp of await client.checkpoints.listAll(instance.domain, VIR_DOMAIN_CHECKPOINT_LIST_ROOTS).catch(() => [])) {
      await client.checkpoints.delete(cp, VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN | VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY).catch(() => undefined);
    }
    await fixture.cleanup();
  });

  it('without a job: stats say none; abort, backup XML and a checkpoint lookup give typed errors', async () => {
    const { client, instance } = fx();
    expect((await client.jobs.getStats(instance.domain)).type).toBe(DomainJobType.None);
    expect((await client.jobs.getInfo(instance.domain)).type).toBe(DomainJobType.None);
    const abort = await client.jobs.abort(instance.domain).catch((e: unknown) => e);
    expect(abort).toBeInstanceOf(LibvirtError);
    expect(abort).toMatchObject({ code: VIR_ERR_OPERATION_INVALID, message: expect.stringMatching(/no job is active on the domain/) });
    expect(await codeOf(client.backup.getXMLDesc(instance.domain))).toBe(VIR_ERR_NO_DOMAIN_BACKUP);
    expect(await client.checkpoints.listAll(instance.domain)).toEqual([]);
    const lookup = await client.checkpoints.lookupByName(instance.domain, 'no-such-checkpoint').catch((e: unknown) => e);
    expect(lookup).toBeInstanceOf(LibvirtError);
    expect(lookup).toMatchObject({ code: VIR_ERR_NO_DOMAIN_CHECKPOINT, message: expect.stringMatching(/no domain checkpoint with matching name 'no-such-checkpoint'/) });
  });

  it('a pull backup with a checkpoint: NBD export of a clean ext4 at the point in time, job seen, a second one refused, abort ends it all', async () => {
    const { client, instance, dir } = fx();
    const dom = instance.domain;
    const socket = path.join(dir, 'nbd.sock');
    const scratch = path.join(dir, 'vda.scratch');
    const fsyncedBefore = lastFsynced(await readConsole(instance.consolePath), 'log');
    expect(fsyncedBefore).toBeGreaterThan(0);

    // No scratch file made beforehand: without REUSE_EXTERNAL libvirt creates it.
    await client.backup.begin(
      dom,
      buildPullBackupXml({ socketPath: socket, disks: [{ target: 'vda', scratchFile: scratch }] }),
      buildCheckpointXml({ name: CHECKPOINT, disks: [{ target: 'vda' }] }),
    );

    const stats = await client.jobs.getStats(dom);
    expect(isBackupJobRunning(stats)).toBe(true);
    expect(stats).toMatchObject({ type: DomainJobType.Unbounded, operation: DomainJobOperation.Backup, diskTempTotal: instance.diskSizeBytes });
    expect((await client.jobs.getInfo(dom)).type).toBe(DomainJobType.Unbounded);

    const job = parseBackupXml(await client.backup.getXMLDesc(dom));
    expect(job).toMatchObject({ mode: 'pull', incrementalFrom: null, socketPath: socket });
    expect(job.disks).toEqual([{ target: 'vda', backup: true, exportName: 'vda', exportBitmap: null, scratch, index: expect.any(Number) }]);

    expect((await stat(socket)).isSocket()).toBe(true);
    const scratchInfo = await qemuImgInfo(scratch, true);
    expect(scratchInfo).toMatchObject({ format: 'qcow2', 'virtual-size': instance.diskSizeBytes, 'backing-filename': instance.overlayPath });

    // The export: the disk as it was when the job began, while the guest goes on writing.
    expect(await qemuImgInfo(nbdUri(socket))).toMatchObject({ format: 'raw', 'virtual-size': instance.diskSizeBytes });
    const copy = path.join(dir, 'export.raw');
    await runToolOutput('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'raw', nbdUri(socket), copy]);
    await withGuestImage(
      copy,
      dir,
      async (img) => {
        const fsck = await img.fsck();
        expect({ clean: fsck.clean, output: fsck.output }).toMatchObject({ clean: true });
        expect(verifyAppendLog(await img.readFile('log'), { minRecords: fsyncedBefore }).records).toBeGreaterThanOrEqual(fsyncedBefore);
      },
      { format: 'raw' },
    );

    // One backup job per domain: a second waits for libvirt's job lock, then gives up.
    const second = await client.backup
      .begin(dom, buildPullBackupXml({ socketPath: path.join(dir, 'nbd2.sock'), disks: [{ target: 'vda', scratchFile: path.join(dir, 'vda2.scratch') }] }))
      .catch((e: unknown) => e);
    expect(second).toBeInstanceOf(LibvirtError);
    expect(second).toMatchObject({ code: VIR_ERR_OPERATION_TIMEOUT, message: expect.stringMatching(/cannot acquire state change lock/) });
    expect(isBackupJobRunning(await client.jobs.getStats(dom))).toBe(true);
    expect(existsSync(path.join(dir, 'nbd2.sock'))).toBe(false);

    // The checkpoint was taken with the backup.
    expect((await client.checkpoints.listAll(dom)).map((c) => c.name)).toEqual([CHECKPOINT]);

    await client.jobs.abort(dom);
    expect((await client.jobs.getStats(dom)).type).toBe(DomainJobType.None);
    expect(await client.jobs.getStats(dom, VIR_DOMAIN_JOB_STATS_COMPLETED)).toMatchObject({ type: DomainJobType.Completed, operation: DomainJobOperation.Backup });
    expect(await codeOf(client.backup.getXMLDesc(dom))).toBe(VIR_ERR_NO_DOMAIN_BACKUP);
    await waitUntilGone(socket);
    await waitUntilGone(scratch);
  });

  it('the checkpoint taken with the backup: listed, its XML, dropped to metadata and redefined from that XML, then deleted for good', async () => {
    const { client, instance } = fx();
    const dom = instance.domain;
    const cp = await client.checkpoints.lookupByName(dom, CHECKPOINT);
    expect(cp).toEqual({ name: CHECKPOINT, domain: { name: dom.name, uuid: dom.uuid, id: dom.id } });
    expect(await client.checkpoints.listAll(dom)).toEqual([cp]);

    const described = parseCheckpointXml(await client.checkpoints.getXMLDesc(cp, VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN));
    expect(described).toMatchObject({ name: CHECKPOINT, parent: null, disks: [{ target: 'vda', tracked: true, bitmap: CHECKPOINT }] });
    expect(described.creationTime).toBeGreaterThan(0);
    expect(await codeOf(client.checkpoints.getParent(cp))).toBe(VIR_ERR_NO_DOMAIN_CHECKPOINT);

    // What a host keeps to repair a libvirtd that lost its metadata: the full XML, <domain> included.
    const saved = await client.checkpoints.getXMLDesc(cp);
    expect(saved).toContain('<domain');
    await client.checkpoints.delete(cp, VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY);
    expect(await client.checkpoints.listAll(dom)).toEqual([]);
    expect(await codeOf(client.checkpoints.lookupByName(dom, CHECKPOINT))).toBe(VIR_ERR_NO_DOMAIN_CHECKPOINT);

    // VALIDATE: libvirt checks that QEMU still has the bitmap the metadata names.
    const redefined = await client.checkpoints.createXML(dom, saved, VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE | VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE_VALIDATE);
    expect(redefined).toEqual(cp);
    expect(parseCheckpointXml(await client.checkpoints.getXMLDesc(redefined, VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN))).toEqual(described);

    // A child, so the chain calls have something to show.
    const child: DomainCheckpoint = await client.checkpoints.createXML(dom, buildCheckpointXml({ name: 'bk2', disks: [{ target: 'vda' }] }));
    expect(await client.checkpoints.getParent(child)).toEqual(cp);
    expect(await client.checkpoints.listAllChildren(cp)).toEqual([child]);

    // For good: the bitmap is merged into nothing (a root) and the child becomes the root.
    await client.checkpoints.delete(cp);
    expect(await client.checkpoints.listAll(dom)).toEqual([child]);
    expect(parseCheckpointXml(await client.checkpoints.getXMLDesc(child, VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN)).parent).toBeNull();
  });

  it('an incremental pull backup into a scratch file we made (REUSE_EXTERNAL): the dirty bitmap is exported, and the scratch stays', async () => {
    const { client, instance, dir } = fx();
    const dom = instance.domain;
    const socket = path.join(dir, 'inc.sock');
    const scratch = path.join(dir, 'inc.scratch');
    await createQcow2(scratch, { sizeBytes: instance.diskSizeBytes });
    await client.backup.begin(
      dom,
      buildPullBackupXml({ socketPath: socket, incrementalFrom: 'bk2', disks: [{ target: 'vda', scratchFile: scratch, exportBitmap: 'since-bk2' }] }),
      null,
      VIR_DOMAIN_BACKUP_BEGIN_REUSE_EXTERNAL,
    );
    const job = parseBackupXml(await client.backup.getXMLDesc(dom));
    expect(job).toMatchObject({ mode: 'pull', incrementalFrom: 'bk2', disks: [{ target: 'vda', exportName: 'vda', exportBitmap: 'since-bk2', scratch }] });
    // qemu-img fails when the export does not advertise the meta context it asks for.
    const map = await runToolOutput('qemu-img', [
      'map',
      '--output=json',
      '--image-opts',
      `driver=nbd,export=vda,server.type=unix,server.path=${socket},x-dirty-bitmap=qemu:dirty-bitmap:since-bk2`,
    ]);
    expect(JSON.parse(map.stdout)).toEqual(expect.arrayContaining([expect.objectContaining({ start: 0 })]));

    await client.jobs.abort(dom);
    await waitUntilGone(socket);
    expect(existsSync(scratch)).toBe(true);
  });
});
