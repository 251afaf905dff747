// Snapshot activities for API tests: the REAL control activities on the instance store and image
// service the API uses; host steps fake libvirt (no guest) but upload real bytes, so a finished
// snapshot is an active image whose content the test can check. Upload failures and holds are
// injectable per instance.
import { createHash } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import type { ControlActivities, DomainDescription, HostActivities } from '../../src/contract';
import type { Logger } from 'pino';
import { createControlActivities } from '../../src/activities/control-activities';
import { createSnapshotImageRecord, GlanceHttpClient } from '../../src/images/client';
import type { Instance, InstanceStore } from '../../src/store';
import type { WorkerVolumeAccess } from '../../src/cinder';
import type { SnapshotMetrics } from '../../src/observability';

/** The bytes the fake host "extracts" for an instance: deterministic, so tests can compare. */
export function diskBytesFor(instanceUuid: string, size = 96 * 1024): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(instanceUuid).digest();
  for (let offset = 0; offset < size; offset += block.length) {
    block.copy(out, offset);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

/** Test instances are named `api-<uuid>` so the fake host can map a domain back to its instance. */
export function domainNameFor(instanceUuid: string): string {
  return `api-${instanceUuid}`;
}

export function instanceUuidOfDomain(domainName: string): string {
  return domainName.replace(/^api-/, '');
}

export interface StubCloudOptions {
  store: InstanceStore;
  imageUrl: string;
  /** The workers' token for the image service (the service identity, as the real workers get). */
  serviceToken: string;
  workDir: string;
  log: Logger;
  /** Cinder for the real volume control activities (and the run's trusts), when the test runs one */
  volumes?: WorkerVolumeAccess;
  /** the control worker's metrics, when the test reads them */
  metrics?: SnapshotMetrics;
}

export class ApiStubCloud {
  /** Instances whose next uploads fail (non-retryable), and how many more times. */
  private readonly uploadFailures = new Map<string, number>();
  /** Instances whose upload waits until released. */
  private readonly holds = new Map<string, { release: () => void; released: Promise<void>; entered: () => void; reached: Promise<void> }>();
  readonly notifications: string[] = [];
  private readonly images: GlanceHttpClient;

  constructor(private readonly options: StubCloudOptions) {
    this.images = new GlanceHttpClient(options.imageUrl, options.serviceToken);
  }

  failUploads(instanceUuid: string, times = 1): void {
    this.uploadFailures.set(instanceUuid, times);
  }

  /** Makes the upload of `instanceUuid` wait; returns a promise for "upload reached" and a release function. */
  holdUpload(instanceUuid: string): { reached: Promise<void>; release: () => void } {
    let release = (): void => undefined;
    let entered = (): void => undefined;
    const released = new Promise<void>((r) => (release = r));
    const reached = new Promise<void>((r) => (entered = r));
    this.holds.set(instanceUuid, { release, released, entered, reached });
    return { reached, release };
  }

  private async instance(uuid: string): Promise<Instance> {
    const found = await this.options.store.get(uuid);
    if (found === undefined) throw ApplicationFailure.nonRetryable(`Instance ${uuid} could not be found.`, 'InstanceNotFound');
    return found;
  }

  /** The real control activities (store, image records, compensations), acting with the workers' service token. */
  controlActivities(): ControlActivities {
    return createControlActivities({
      store: this.options.store,
      images: this.images,
      createImageRecord: async (instance, name, metadata, backupType, imageId, backupScheduleId) => {
        const image = await createSnapshotImageRecord(this.images, instance, name, metadata, { owner: instance.projectId ?? undefined, backupType, id: imageId, backupScheduleId });
        return { imageId: image.id, status: image.status };
      },
      cinder: this.options.volumes?.cinder,
      releaseTrust: this.options.volumes?.releaseTrust,
      log: this.options.log,
      metrics: this.options.metrics,
    });
  }

  hostActivities(): HostActivities {
    const byDomain = async (domainName: string, instanceUuid?: string): Promise<Instance> => {
      if (instanceUuid !== undefined) return this.instance(instanceUuid);
      throw ApplicationFailure.nonRetryable(`no instance for domain ${domainName}`, 'InstanceNotRunning');
    };
    const workDir = (key: string): string => join(this.options.workDir, key);
    return {
      getDomainPowerState: async ({ domainName, instanceUuid }) => (await byDomain(domainName, instanceUuid)).powerState,
      describeDomain: async ({ domainName, instanceUuid }) => {
        const inst = await byDomain(domainName, instanceUuid);
        const description: DomainDescription = {
          powerState: inst.powerState,
          diskPath: `/fake/${domainName}/disk`,
          diskTarget: 'vda',
          sourceFormat: 'raw',
          imageFormat: 'raw',
          backingChain: [],
          virtualSize: diskBytesFor(inst.uuid).length,
          virtType: 'kvm',
          liveCapable: true,
        };
        return description;
      },
      probeLiveSnapshot: async () => true,
      prepareColdSnapshot: async () => ({ detachedDevices: 0 }),
      extractSnapshot: async ({ domainName, workDirKey, description }) => {
        const inst = await this.instanceByDomain(domainName);
        await mkdir(workDir(workDirKey), { recursive: true });
        const path = join(workDir(workDirKey), 'snapshot.raw');
        await writeFile(path, diskBytesFor(inst.uuid, description.virtualSize));
        return { path, size: description.virtualSize, format: 'raw', quiesced: false, freezeWindowMs: null };
      },
      restoreGuest: async () => ({ recreated: true, reattached: 0 }),
      uploadSnapshot: async ({ imageId, path }) => {
        const image = await this.images.get(imageId);
        const instanceUuid = image.properties.instance_uuid ?? '';
        const hold = this.holds.get(instanceUuid);
        if (hold !== undefined) {
          hold.entered();
          await hold.released;
          this.holds.delete(instanceUuid);
        }
        const failures = this.uploadFailures.get(instanceUuid) ?? 0;
        if (failures > 0) {
          this.uploadFailures.set(instanceUuid, failures - 1);
          throw ApplicationFailure.nonRetryable(`injected upload failure for image ${imageId}`, 'InjectedFailure');
        }
        // As the real uploadSnapshot: formats first (Glance refuses data without them), then the bytes.
        await this.images.setFormats(imageId, { disk_format: 'raw', container_format: 'bare' });
        await this.images.upload(imageId, path);
        const uploaded = await this.images.get(imageId);
        return { imageId, status: uploaded.status, size: uploaded.size ?? 0, checksum: uploaded.checksum ?? '' };
      },
      removeSnapshotWorkDir: async ({ workDirKey }) => {
        await rm(workDir(workDirKey), { recursive: true, force: true });
      },
      // describeDomain reports no backupCapable: these runs take the file path above.
      openSnapshotExport: async () => notOnePass(),
      streamSnapshot: async () => notOnePass(),
      closeSnapshotExport: async () => undefined,
      retainCheckpoints: async () => ({ checkpointXml: null, deleted: [] }),
      closeExportAndRetain: async () => ({ checkpointXml: null, deleted: [] }),
      directSnapshot: async () => ({ done: false, reason: 'the stub host has no RBD disks' }),
      // the API tests' instances boot from images
      thawGuest: async () => undefined,
      snapshotVolumes: async () => {
        throw ApplicationFailure.nonRetryable('the API stub has no volumes', 'InvalidSnapshotInput');
      },
      discardDirectSnapshot: async () => ({ removed: false }),
    };
  }

  private async instanceByDomain(domainName: string): Promise<Instance> {
    return this.instance(instanceUuidOfDomain(domainName));
  }
}

function notOnePass(): never {
  throw ApplicationFailure.nonRetryable('the API stubs have no one-pass data path', 'InvalidInput');
}
