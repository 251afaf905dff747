// An in-memory cloud for workflow-branch tests: stub activities move this state the way the real
// ones move libvirt, the store and the image service, so that tests assert outcomes (guest state,
// image status, task_state, leftover work dirs), not just call lists.
import { ApplicationFailure } from '@temporalio/activity';
import {
  POWER_STATE_PAUSED,
  POWER_STATE_RUNNING,
  POWER_STATE_SHUTDOWN,
  type ControlActivities,
  type DomainDescription,
  type HostActivities,
  type PowerState,
  type Retention,
  type SnapshotVolume,
  type TaskState,
} from '../../../src/contract';
import { FakeCinder } from './fake-cinder';
import { fakeVolumeControlActivities, fakeVolumeHostActivities } from './fake-volumes';

export type GuestState = 'running' | 'paused' | 'shutoff' | 'saved' | 'gone';
export type ActivityName = keyof ControlActivities | keyof HostActivities;

export interface FakeInstanceOptions {
  uuid: string;
  guest: Exclude<GuestState, 'saved' | 'gone'>;
  taskState?: TaskState;
  liveCapable?: boolean;
  /** the one-pass data path (libvirt's backup API); off: the block-copy path */
  onePass?: boolean;
  probeLive?: boolean;
  virtType?: string;
  devices?: number;
  /** the host the store reports (default: the stub host the test workers poll for) */
  host?: string;
  /** an RBD disk with Glance's RBD pool named: the host's direct snapshot is taken, or refused (then streamed) */
  direct?: 'done' | 'refused';
  /** the host restarts a saved guest with a backup job before the stream (SNAP_COLD_RESUME_BEFORE_STREAM) */
  coldRestart?: boolean;
  /** an activity that waits (heartbeating) until the test calls release() */
  holdAt?: ActivityName;
  /** the instance's Cinder volumes (a root one makes it volume-backed) */
  volumes?: SnapshotVolume[];
  /** Cinder's snapshot quota (default unlimited) */
  snapshotQuota?: { limit: number; inUse: number };
  /** the status a new Cinder snapshot takes (default available) */
  volumeSnapshotStatus?: string;
  /** activity name (optionally `name#n` for its n-th call) → how it fails */
  failures?: Partial<Record<string, 'fatal' | 'transient' | 'vanish' | 'image-deleted'>>;
}

export class FakeInstance {
  taskState: TaskState;
  guest: GuestState;
  devicesAttached: number;
  imageStatus: 'queued' | 'saving' | 'active' | 'killed' | 'deleted' | null = null;
  imageId: string | null = null;
  readonly workDirs = new Set<string>();
  /** the one-pass export is open (a backup job or qemu-nbd would be running) */
  exportOpen = false;
  /** how the open export serves (a cold guest restarted with a job serves through the job) */
  exportKind: 'backup-job' | 'qemu-nbd' | null = null;
  /** restarted paused from its save by the run's export and not resumed since */
  restartedPaused = false;
  /** the guest's state when each stream attempt began */
  readonly guestAtStream: GuestState[] = [];
  /** a direct snapshot's copy and source snapshot are in the cluster (Glance's once the image is active) */
  directCopy = false;
  readonly calls: string[] = [];
  readonly notifications: string[] = [];
  /** the backup_type of the image the workflow made itself (createSnapshotImage), null for a snapshot */
  imageBackupType: string | null = null;
  /** rotateBackups calls: the image it was asked to keep newest, and the rotation */
  readonly rotations: { imageId: string; rotation: number }[] = [];
  /** pruneBackups calls: the image it was asked to keep, and the retention */
  readonly prunes: { imageId: string; retention: Retention }[] = [];
  /** the backup_schedule_id the workflow's own image was made with (createSnapshotImage) */
  imageScheduleId: string | null = null;
  /** the backup_type each notification carried (null: none) */
  readonly notifiedBackupTypes: (string | null)[] = [];
  /** the guest agent froze the filesystems and nothing thawed them yet */
  frozen = false;
  readonly cinder = new FakeCinder();
  /** the trust each Cinder-using step was handed (undefined: the workers' own token) */
  readonly trustsUsed: (string | undefined)[] = [];
  imageProperties: Record<string, string> = {};
  /** the checkpoint description recordChain was given (undefined: never called) */
  recordedCheckpointXml: string | null | undefined;
  private readonly counts = new Map<string, number>();
  private released = false;
  /** resolves when the held activity is entered */
  readonly held: Promise<void>;
  private markHeld: () => void = () => undefined;

  constructor(readonly options: FakeInstanceOptions) {
    this.taskState = options.taskState === undefined ? 'image_snapshot_pending' : options.taskState;
    this.guest = options.guest;
    this.devicesAttached = options.devices ?? 2;
    this.held = new Promise((resolve) => (this.markHeld = resolve));
    this.cinder.initial = options.volumeSnapshotStatus ?? 'available';
  }

  release(): void {
    this.released = true;
  }

  async holdIfAsked(name: ActivityName): Promise<void> {
    if (this.options.holdAt !== name) return;
    this.markHeld();
    while (!this.released) await new Promise((r) => setTimeout(r, 50));
  }

  get domainName(): string {
    return `dom-${this.options.uuid}`;
  }

  /** Records the call and throws what the test injected for it. */
  enter(name: ActivityName): void {
    const n = (this.counts.get(name) ?? 0) + 1;
    this.counts.set(name, n);
    this.calls.push(name);
    const failure = this.options.failures?.[`${name}#${n}`] ?? this.options.failures?.[name];
    if (failure === 'fatal') throw ApplicationFailure.nonRetryable(`injected failure in ${name}`, 'InjectedFailure');
    if (failure === 'transient' && n === 1) throw ApplicationFailure.retryable(`injected transient failure in ${name}`, 'InjectedTransient');
    if (failure === 'image-deleted') {
      // What a reset run meets after its compensations: the image it started with was deleted.
      this.imageStatus = 'deleted';
      throw ApplicationFailure.nonRetryable(`image ${String(this.imageId)} was deleted`, 'ImageNotFound');
    }
    if (failure === 'vanish') {
      this.guest = 'gone';
      this.taskState = 'deleting';
      throw ApplicationFailure.nonRetryable(`Instance ${this.options.uuid} could not be found.`, 'InstanceNotFound');
    }
  }

  powerState(): PowerState {
    if (this.guest === 'running') return POWER_STATE_RUNNING;
    if (this.guest === 'paused') return POWER_STATE_PAUSED;
    return POWER_STATE_SHUTDOWN;
  }
}

export class FakeCloud {
  /** trusts releaseTrust deleted, in order */
  readonly releasedTrusts: string[] = [];
  private readonly byUuid = new Map<string, FakeInstance>();
  private readonly byDomain = new Map<string, FakeInstance>();
  private readonly byImage = new Map<string, FakeInstance>();
  private imageSerial = 0;

  add(options: FakeInstanceOptions): FakeInstance {
    const instance = new FakeInstance(options);
    this.byUuid.set(options.uuid, instance);
    this.byDomain.set(instance.domainName, instance);
    return instance;
  }

  /** What the compute API does before starting the workflow: a queued image record. */
  createImageFor(instance: FakeInstance): string {
    const id = `00000000-0000-4000-8000-${String(++this.imageSerial).padStart(12, '0')}`;
    instance.imageId = id;
    instance.imageStatus = 'queued';
    this.byImage.set(id, instance);
    return id;
  }

  uuid(uuid: string): FakeInstance {
    const found = this.byUuid.get(uuid);
    if (!found) throw ApplicationFailure.nonRetryable(`no fake instance ${uuid}`, 'InstanceNotFound');
    return found;
  }

  domain(name: string): FakeInstance {
    const found = this.byDomain.get(name);
    if (!found) throw ApplicationFailure.nonRetryable(`no fake domain ${name}`, 'InstanceNotRunning');
    return found;
  }

  image(id: string): FakeInstance {
    const found = this.byImage.get(id);
    if (!found) throw ApplicationFailure.nonRetryable(`no fake image ${id}`, 'ImageNotFound');
    return found;
  }

  controlActivities(): ControlActivities {
    return {
      createSnapshotImage: async ({ instanceUuid, backupType, backupScheduleId }) => {
        const inst = this.uuid(instanceUuid);
        inst.enter('createSnapshotImage');
        inst.imageBackupType = backupType ?? null;
        inst.imageScheduleId = backupScheduleId ?? null;
        const imageId = this.createImageFor(inst);
        return { imageId, status: 'queued' };
      },
      setTaskState: async ({ instanceUuid, taskState, expected }) => {
        const inst = this.uuid(instanceUuid);
        inst.enter('setTaskState');
        if (inst.guest === 'gone' || inst.taskState === 'deleting') throw ApplicationFailure.nonRetryable('being deleted', 'UnexpectedDeletingTaskState');
        if (!expected.includes(inst.taskState)) throw ApplicationFailure.nonRetryable(`task_state is ${String(inst.taskState)}`, 'UnexpectedTaskState');
        inst.taskState = taskState;
        return { uuid: instanceUuid, domainName: inst.domainName, host: inst.options.host ?? 'stubhost', projectId: 'p1', powerState: inst.powerState(), imageRef: null, volumes: (inst.options.volumes ?? []).map(({ volumeId, device, root }) => ({ volumeId, device, root })) };
      },
      savePowerState: async ({ instanceUuid }) => this.uuid(instanceUuid).enter('savePowerState'),
      notifySnapshot: async ({ instanceUuid, event, backupType }) => {
        const inst = this.uuid(instanceUuid);
        inst.enter('notifySnapshot');
        inst.notifications.push(event);
        inst.notifiedBackupTypes.push(backupType ?? null);
      },
      deleteImageUnlessActive: async ({ imageId }) => {
        const inst = this.image(imageId);
        inst.calls.push('deleteImageUnlessActive');
        if (inst.imageStatus === 'active') return { deleted: false, status: 'active' };
        inst.imageStatus = 'deleted';
        return { deleted: true, status: 'deleted' };
      },
      resetTaskState: async ({ instanceUuid }) => {
        const inst = this.uuid(instanceUuid);
        inst.calls.push('resetTaskState');
        if (inst.taskState !== null && inst.taskState.startsWith('image_')) inst.taskState = null;
      },
      rotateBackups: async ({ instanceUuid, imageId, rotation }) => {
        const inst = this.uuid(instanceUuid);
        inst.enter('rotateBackups');
        inst.rotations.push({ imageId, rotation });
        return { kept: rotation > 0 ? [imageId] : [], deleted: rotation > 0 ? [] : [imageId], failed: [] };
      },
      pruneBackups: async ({ instanceUuid, imageId, retention }) => {
        const inst = this.uuid(instanceUuid);
        inst.enter('pruneBackups');
        inst.prunes.push({ imageId, retention });
        return { kept: [imageId], deleted: [], failed: [] };
      },
      recordInventory: async ({ domains }) => ({ instances: domains.length }),
      planChain: async () => ({ composes: true, parent: null, reason: 'the first snapshot of this instance' }),
      recordChain: async ({ instanceUuid, checkpointXml }) => {
        this.uuid(instanceUuid).recordedCheckpointXml = checkpointXml;
      },
      ...fakeVolumeControlActivities(this),
    };
  }

  hostActivities(): HostActivities {
    return {
      getDomainPowerState: async ({ domainName }) => {
        const inst = this.domain(domainName);
        inst.enter('getDomainPowerState');
        return inst.powerState();
      },
      describeDomain: async ({ domainName }) => {
        const inst = this.domain(domainName);
        inst.enter('describeDomain');
        const description: DomainDescription = {
          powerState: inst.powerState(),
          diskPath: `/fake/${domainName}/disk`,
          diskTarget: 'vda',
          sourceFormat: 'qcow2',
          imageFormat: 'qcow2',
          backingChain: [{ path: '/fake/base', format: 'qcow2' }],
          virtualSize: 1 << 20,
          virtType: inst.options.virtType ?? 'kvm',
          liveCapable: inst.options.liveCapable ?? true,
          ...(inst.options.onePass === true ? { backupCapable: true } : {}),
          ...(inst.options.direct !== undefined ? { directSnapshot: true } : {}),
          ...(inst.options.coldRestart === true ? { coldRestart: true } : {}),
        };
        return description;
      },
      probeLiveSnapshot: async ({ domainName }) => {
        const inst = this.domain(domainName);
        inst.enter('probeLiveSnapshot');
        return inst.options.probeLive ?? true;
      },
      prepareColdSnapshot: async ({ domainName }) => {
        const inst = this.domain(domainName);
        inst.enter('prepareColdSnapshot');
        const detached = inst.devicesAttached;
        inst.devicesAttached = 0;
        inst.guest = 'saved';
        return { detachedDevices: detached };
      },
      extractSnapshot: async ({ domainName, workDirKey, description }) => {
        const inst = this.domain(domainName);
        inst.workDirs.add(workDirKey);
        inst.enter('extractSnapshot');
        return { path: `/fake/snapshots/${workDirKey}/out`, size: description.virtualSize, format: description.imageFormat, quiesced: false, freezeWindowMs: null };
      },
      restoreGuest: async ({ domainName, priorPowerState, resumePaused }) => {
        const inst = this.domain(domainName);
        inst.enter('restoreGuest');
        const reattached = (inst.options.devices ?? 2) - inst.devicesAttached;
        if (inst.guest === 'saved') inst.guest = priorPowerState === POWER_STATE_PAUSED ? 'paused' : 'running';
        if (resumePaused === true && inst.guest === 'paused' && priorPowerState !== POWER_STATE_PAUSED) {
          inst.guest = 'running';
          inst.restartedPaused = false;
        }
        inst.devicesAttached = inst.options.devices ?? 2;
        return { recreated: true, reattached };
      },
      uploadSnapshot: async ({ imageId }) => {
        const inst = this.image(imageId);
        inst.imageStatus = 'saving';
        try {
          inst.enter('uploadSnapshot');
          await inst.holdIfAsked('uploadSnapshot');
        } catch (err) {
          inst.imageStatus = 'killed';
          throw err;
        }
        inst.imageStatus = 'active';
        return { imageId, status: 'active', size: 1 << 20, checksum: 'fake-md5' };
      },
      removeSnapshotWorkDir: async ({ workDirKey }) => {
        for (const inst of this.byUuid.values()) inst.workDirs.delete(workDirKey);
      },
      openSnapshotExport: async ({ domainName, workDirKey, mode, restartSavedGuest }) => {
        const inst = this.domain(domainName);
        inst.workDirs.add(workDirKey);
        // Restarted paused from the save before the job begins: a failure after this leaves it paused.
        const restarts = restartSavedGuest === true && inst.options.coldRestart === true && (inst.guest === 'saved' || (inst.guest === 'paused' && inst.restartedPaused));
        if (restarts) {
          inst.guest = 'paused';
          inst.restartedPaused = true;
        }
        inst.enter('openSnapshotExport');
        inst.exportOpen = true;
        inst.exportKind = mode === 'live' || restarts ? 'backup-job' : 'qemu-nbd';
        if (restarts) {
          inst.guest = 'running';
          inst.restartedPaused = false;
          return { exportId: `export-${workDirKey}`, dataPath: 'backup-job', socketPath: `/fake/snapshots/${workDirKey}/export.sock`, exportName: 'vda', virtualSize: 1 << 20, imageSize: 1 << 20, quiesced: false, freezeWindowMs: null, guestResumed: true };
        }
        return { exportId: `export-${workDirKey}`, dataPath: mode === 'live' ? 'backup-job' : 'qemu-nbd', socketPath: `/fake/snapshots/${workDirKey}/export.sock`, exportName: 'vda', virtualSize: 1 << 20, imageSize: 1 << 20, quiesced: mode === 'live', freezeWindowMs: mode === 'live' ? 3 : null };
      },
      streamSnapshot: async ({ domainName, imageId, mode }) => {
        const inst = this.domain(domainName);
        const image = this.image(imageId);
        if (image.imageId !== imageId || image.imageStatus === 'deleted') throw ApplicationFailure.nonRetryable(`image ${imageId} is gone`, 'ImageNotFound');
        inst.imageStatus = 'saving';
        inst.guestAtStream.push(inst.guest);
        try {
          inst.enter('streamSnapshot');
          await inst.holdIfAsked('streamSnapshot');
        } catch (err) {
          inst.imageStatus = 'killed';
          throw err;
        }
        inst.imageStatus = 'active';
        const dataPath = inst.exportKind ?? (mode === 'live' ? 'backup-job' : 'qemu-nbd');
        const chain = mode === 'live' ? { kind: 'full' as const, fullReason: 'the first snapshot of this instance', checkpoint: 'snap-fake', changedBytes: 1 << 20 } : {};
        return { imageId, status: 'active', size: 1 << 20, checksum: 'fake-md5', dataPath, exportId: 'export', resumedFrom: 0, bytesSent: 1 << 20, logicalDigest: 'fake-digest', quiesced: mode === 'live', freezeWindowMs: mode === 'live' ? 3 : null, ...chain };
      },
      directSnapshot: async ({ domainName, imageId, mode }) => {
        const inst = this.domain(domainName);
        // The attempt makes its copy before anything can kill it.
        inst.directCopy = inst.options.direct === 'done';
        inst.enter('directSnapshot');
        if (inst.options.direct !== 'done') return { done: false, reason: 'Glance refused the location' };
        this.image(imageId).imageStatus = 'active';
        return { done: true, image: { imageId, status: 'active', size: 1 << 20, checksum: '' }, location: `rbd://fsid/images/${imageId}/snap`, quiesced: mode === 'live', freezeWindowMs: mode === 'live' ? 2 : null };
      },
      discardDirectSnapshot: async ({ imageId }) => {
        const inst = this.image(imageId);
        inst.enter('discardDirectSnapshot');
        if (inst.imageStatus === 'active') return { removed: false };
        inst.directCopy = false;
        return { removed: true };
      },
      closeSnapshotExport: async ({ domainName, workDirKey }) => {
        for (const each of this.byUuid.values()) each.workDirs.delete(workDirKey);
        const inst = this.byDomain.get(domainName);
        if (!inst) return;
        inst.calls.push('closeSnapshotExport');
        inst.exportOpen = false;
        inst.exportKind = null;
      },
      retainCheckpoints: async ({ domainName }) => {
        this.byDomain.get(domainName)?.calls.push('retainCheckpoints');
        return { checkpointXml: null, deleted: [] };
      },
      closeExportAndRetain: async ({ domainName, workDirKey, keep }) => {
        for (const each of this.byUuid.values()) each.workDirs.delete(workDirKey);
        const inst = this.byDomain.get(domainName);
        if (!inst) return { checkpointXml: null, deleted: [], error: `domain ${domainName} is gone` };
        inst.calls.push('closeExportAndRetain');
        inst.exportOpen = false;
        inst.exportKind = null;
        return { checkpointXml: `<domaincheckpoint><name>${keep}</name></domaincheckpoint>`, deleted: [] };
      },
      ...fakeVolumeHostActivities(this),
    };
  }
}
