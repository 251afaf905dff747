// What the extract steps share (the one pass, the direct snapshot, the snapshot workflow): the
// run's context going in and what an extract hands back.
import type {
  BackupSpec,
  DomainDescription,
  ExtractedSnapshot,
  PowerState,
  SnapshotChainFacts,
  SnapshotDataPath,
  SnapshotInstanceInfo,
  SnapshotMode,
  UploadedImage,
} from '../contract';
import type { ControlProxies, HostActivityProxies } from './activity-proxies';
import type { Progress } from './progress';
import type { Saga } from './saga';

export interface ExtractContext {
  instance: SnapshotInstanceInfo;
  imageId: string;
  description: DomainDescription;
  mode: SnapshotMode;
  powerState: PowerState;
  host: HostActivityProxies;
  control: ControlProxies;
  progress: Progress;
  saga: Saga;
  /** for a replacement image, should the run's image have been deleted */
  name: string;
  metadata: Record<string, string>;
  /** a backup (Nova's backup_instance): its replacement image is a backup too */
  backup?: BackupSpec;
  /** the task_state the run claimed: image_snapshot, or image_backup for a backup (Nova's expected_task_state) */
  claimedState: 'image_snapshot' | 'image_backup';
}

export type QuiesceFacts = Pick<ExtractedSnapshot, 'quiesced' | 'freezeWindowMs' | 'quiesceError'>;

export interface ExtractOutcome {
  uploaded: UploadedImage;
  quiesce: QuiesceFacts;
  dataPath: SnapshotDataPath;
  resumedFrom?: number;
  logicalDigest?: string;
  replacedImageId?: string;
  /** full or incremental and why (runs from before incremental snapshots have none) */
  chain?: SnapshotChainFacts;
}
