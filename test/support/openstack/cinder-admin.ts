// What a test does to a real Cinder that the snapshot path never does (Nova's and the operator's
// part): make volumes and wait for them, attach one to an instance as Nova's attachment flow does
// (create with a connector, then complete), set a project's quota, wait for a snapshot to be gone.
// Over the project's connection, through the client's transport.
import { z } from 'zod';
import { CinderClient, CinderError, callCinder, sendCinder, type CinderConnection } from '../../../src/cinder';

const VolumeIdSchema = z.object({ volume: z.object({ id: z.string().uuid() }) });
const AttachmentIdSchema = z.object({ attachment: z.object({ id: z.string().uuid() }) });

// os-brick's connector of a libvirt/QEMU host that reaches RBD through librbd (no local attach)
const RBD_CONNECTOR = { platform: 'x86_64', os_type: 'linux', host: 'snap-host', ip: '127.0.0.1', multipath: false, do_local_attach: false };

export class CinderAdmin {
  readonly client: CinderClient;
  constructor(readonly conn: CinderConnection) {
    this.client = new CinderClient(conn);
  }

  /** A new volume of `sizeGiB`, once `available`. */
  async createVolume(name: string, sizeGiB: number, fromSnapshotId?: string): Promise<string> {
    const body = { volume: { name, size: sizeGiB, ...(fromSnapshotId === undefined ? {} : { snapshot_id: fromSnapshotId }) } };
    const { volume } = await callCinder(this.conn, { method: 'POST', path: 'volumes', body, operation: 'POST volumes' }, VolumeIdSchema);
    await this.waitVolume(volume.id, 'available');
    return volume.id;
  }

  waitVolume(volumeId: string, status: string, timeoutMs = 60_000): Promise<void> {
    return waitStatus(`volume ${volumeId}`, () => this.client.showVolume(volumeId), status, timeoutMs);
  }

  /** Attaches the volume to `instanceUuid` as Nova does (attachment with a connector, then os-complete): the volume turns in-use. */
  async attach(volumeId: string, instanceUuid: string): Promise<string> {
    const body = { attachment: { volume_uuid: volumeId, instance_uuid: instanceUuid, connector: RBD_CONNECTOR, mode: 'rw' } };
    const { attachment } = await callCinder(this.conn, { method: 'POST', path: 'attachments', body, operation: 'POST attachments' }, AttachmentIdSchema);
    await sendCinder(this.conn, { method: 'POST', path: `attachments/${attachment.id}/action`, body: { 'os-complete': null }, operation: 'POST attachment os-complete' });
    await this.waitVolume(volumeId, 'in-use');
    return attachment.id;
  }

  /** A project's snapshot quota, this one's by default (an admin call; under Keystone the admin's token is scoped to its own project, so name the target). */
  async setSnapshotQuota(limit: number, projectId = this.conn.projectId): Promise<void> {
    await sendCinder(this.conn, { method: 'PUT', path: `os-quota-sets/${projectId}`, body: { quota_set: { snapshots: limit } }, operation: 'PUT quota' });
  }

  waitSnapshot(snapshotId: string, status: string, timeoutMs = 60_000): Promise<void> {
    return waitStatus(`snapshot ${snapshotId}`, () => this.client.showSnapshot(snapshotId), status, timeoutMs);
  }

  /** Waits until Cinder no longer knows the snapshot (its delete is asynchronous). */
  async waitSnapshotGone(snapshotId: string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const snapshot = await this.client.showSnapshot(snapshotId);
        if (snapshot.status.startsWith('error') || Date.now() > deadline) throw new Error(`snapshot ${snapshotId} is still ${snapshot.status}`);
      } catch (err) {
        if (err instanceof CinderError && err.notFound) return;
        throw err;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** Polls `read` until its status is `status`; an error status or the deadline fails. */
async function waitStatus(what: string, read: () => Promise<{ status: string }>, status: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const current = (await read()).status;
    if (current === status) return;
    if (current.startsWith('error') || Date.now() > deadline) throw new Error(`${what} is ${current}, not ${status}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
