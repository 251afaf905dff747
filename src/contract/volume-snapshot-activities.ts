// The activity contracts of Nova's snapshot_volume_backed branch (the workflow imports them for
// their types only): the control side confirms the volumes and the quota, waits for the snapshots
// and writes the image; the host side cuts every volume at one point under one guest freeze.
import type { SnapshottedVolume } from './volume-backed-image';
import type { UploadedImage } from './uploaded-image';

/** A volume of the instance that Cinder confirmed attached to it. */
/** The Keystone trust the compute API made for the run (the caller's roles on the instance's project); absent: the workers' own token. */
export interface RunTrust {
  trustId?: string;
}

export interface SnapshotVolume {
  volumeId: string;
  /** guest device, e.g. vda */
  device: string;
  root: boolean;
  /** GiB, Cinder's */
  sizeGiB: number;
}

export interface VolumeBackedPlan {
  volumes: SnapshotVolume[];
  /** the image asks for a quiesced snapshot (`os_require_quiesce`) */
  requireQuiesce: boolean;
  /**
   * How long the snapshots may take to become available (the control worker's
   * SNAP_VOLUME_SNAPSHOT_TIMEOUT_SECONDS); absent from plans recorded before the setting existed.
   */
  deadlineMs?: number;
}

export interface VolumeCut {
  snapshots: (SnapshotVolume & { snapshotId: string })[];
  /** from the first create call sent to the last one answered */
  callsMs: number;
  quiesced: boolean;
  freezeWindowMs: number | null;
  quiesceError?: string;
}

/** The ApplicationFailure type of Nova's OverQuota(overs='snapshots'). */
export const SNAPSHOT_QUOTA_EXCEEDED = 'SnapshotQuotaExceeded';

/** How long a run waits for its Cinder snapshots to become `available` unless configured (Nova waits with no deadline). */
export const DEFAULT_VOLUME_SNAPSHOT_TIMEOUT_MS = 10 * 60_000;

export interface VolumeControlActivities {
  /**
   * The host's claim confirmed against Cinder's attachments, then Nova's best-effort quota check
   * (SnapshotQuotaExceeded when the snapshots would not fit), and the image's os_require_quiesce.
   */
  planVolumeSnapshots(input: { instanceUuid: string; imageId: string } & RunTrust): Promise<VolumeBackedPlan>;
  /** Heartbeating wait for every snapshot to be `available`, up to the deadline. */
  awaitVolumeSnapshots(input: { instanceUuid: string; snapshotIds: string[]; deadlineMs: number } & RunTrust): Promise<void>;
  /** Compensation: every Cinder snapshot the run made (found by its tag) is deleted. */
  deleteVolumeSnapshots(input: { instanceUuid: string; runId: string } & RunTrust): Promise<{ deleted: string[] }>;
  /** The run's trust deleted (its last step, and a compensation); best effort: a trust that stays expires on its own. */
  releaseTrust(input: { trustId: string }): Promise<{ released: boolean }>;
  /** Nova's image for a volume-backed instance: bdm v2 properties, size 0, then active. */
  completeVolumeBackedImage(input: { imageId: string; volumes: SnapshottedVolume[] }): Promise<UploadedImage>;
}

export interface VolumeHostActivities {
  /** Freeze (when running), every volume's Cinder snapshot asked for side by side, thaw. */
  /** Compensation: the guest is thawed (a worker killed inside the freeze left it frozen); a thawed guest stays so. */
  thawGuest(input: { domainName: string }): Promise<void>;
  snapshotVolumes(input: { domainName: string; instanceUuid: string; projectId: string; runId: string; imageName: string; volumes: SnapshotVolume[]; running: boolean; requireQuiesce: boolean } & RunTrust): Promise<VolumeCut>;
}
