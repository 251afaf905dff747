// What the host worker's activity factories are built from (injected, so tests can swap any of it).
import type { HostConfig } from '../host/host-config';
import type { LibvirtSession } from '../host/libvirt-session';
import type { SnapshotWorkDirs } from '../host/snapshot-workdir';
import type { ImageClient } from '../images/client';
import type { SnapshotMetrics } from '../observability/metrics';
import type { CinderForProject } from '../cinder';

export interface TransferReporter {
  /** forwards upload progress to the workflow's progress query (throttled by the implementation) */
  report(workflowId: string, runId: string, bytesDone: number, bytesTotal: number): void;
}

export interface HostActivityDeps {
  config: HostConfig;
  session: LibvirtSession;
  workDirs: SnapshotWorkDirs;
  images: ImageClient;
  transfer?: TransferReporter;
  metrics?: SnapshotMetrics;
  /** Cinder in an instance's project (SNAP_VOLUME_URL); undefined: volume-backed snapshots are refused */
  cinder?: CinderForProject;
}
