// The vocabulary of incremental snapshots: which earlier snapshot a new one may build on, what the
// host found when it checked, and what a snapshot ended up being (full or incremental, and why).

export type SnapshotKind = 'full' | 'incremental';

/** What the store recorded of a snapshot whose checkpoint a later one may read changes from. */
export interface ChainParent {
  imageId: string;
  /** the libvirt checkpoint taken with that snapshot's backup job */
  checkpoint: string;
  /** libvirt's description of it, to redefine it when libvirt forgot it */
  checkpointXml: string | null;
  diskIdentity: string;
  virtualSize: number;
}

/** The control side's answer before a live snapshot: build on `parent`, or full for `reason`. */
export interface ChainPlan {
  /** the image backend composes images (else every snapshot is full and no checkpoint is taken) */
  composes: boolean;
  parent: ChainParent | null;
  /** why there is no parent; null when there is one */
  reason: string | null;
}

/** What a snapshot turned out to be, as the result, snapshot.end, the store and the image say. */
export interface SnapshotChainFacts {
  kind: SnapshotKind;
  /** a full snapshot: why it is not incremental */
  fullReason?: string;
  /** an incremental: the image it was composed on */
  parentImageId?: string;
  /** the checkpoint taken with this snapshot, when one was */
  checkpoint?: string;
  diskIdentity?: string;
  /** bytes of guest data sent (the changed extents for an incremental) */
  changedBytes?: number;
}

/** The facts a chain record needs beyond the snapshot's own. */
export interface ChainRecordInput extends SnapshotChainFacts {
  instanceUuid: string;
  imageId: string;
  host: string;
  virtualSize: number;
  checkpointXml: string | null;
}
