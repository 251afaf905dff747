// Public flag and enum values of libvirt's backup, checkpoint and domain-job APIs
// (include/libvirt/libvirt-domain.h, libvirt-domain-checkpoint.h). ABI like protocol.ts: never
// renumber. Kept apart from protocol.ts so that file holds the wire contract proper.

/** virDomainBackupBeginFlags: the scratch (pull) or target (push) files exist already, made by the caller with the right format and size; libvirt neither creates nor deletes them. */
export const VIR_DOMAIN_BACKUP_BEGIN_REUSE_EXTERNAL = 1;

/** virDomainCheckpointCreateFlags: REDEFINE restores libvirt's metadata for a checkpoint whose bitmaps already exist (after a METADATA_ONLY delete or a lost libvirtd state). */
export const VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE = 1;
export const VIR_DOMAIN_CHECKPOINT_CREATE_QUIESCE = 2;
/** With REDEFINE: refuse unless the disks really carry the checkpoint's bitmaps (libvirt >= 6.10). */
export const VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE_VALIDATE = 4;

/** virDomainCheckpointXMLFlags */
export const VIR_DOMAIN_CHECKPOINT_XML_SECURE = 1;
/** Leave out the copy of the domain XML libvirt stores with each checkpoint. */
export const VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN = 2;
/** Add each disk's size='…': the bytes changed since the checkpoint (needs a running domain). */
export const VIR_DOMAIN_CHECKPOINT_XML_SIZE = 4;

/** virDomainCheckpointListFlags (ROOTS and DESCENDANTS share a bit: roots for the domain, descendants for a checkpoint). */
export const VIR_DOMAIN_CHECKPOINT_LIST_ROOTS = 1;
export const VIR_DOMAIN_CHECKPOINT_LIST_DESCENDANTS = 1;
export const VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL = 2;
export const VIR_DOMAIN_CHECKPOINT_LIST_LEAVES = 4;
export const VIR_DOMAIN_CHECKPOINT_LIST_NO_LEAVES = 8;

/** virDomainCheckpointDeleteFlags (CHILDREN and CHILDREN_ONLY exclude each other) */
export const VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN = 1;
/** Drop libvirt's record and keep the bitmaps in the image, so a REDEFINE can bring it back. */
export const VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY = 2;
export const VIR_DOMAIN_CHECKPOINT_DELETE_CHILDREN_ONLY = 4;

/** virDomainJobType */
export enum DomainJobType {
  None = 0,
  Bounded = 1,
  Unbounded = 2,
  Completed = 3,
  Failed = 4,
  Cancelled = 5,
}

/** virDomainJobOperation: what a job is doing ("operation" in the job stats). */
export enum DomainJobOperation {
  Unknown = 0,
  Start = 1,
  Save = 2,
  Restore = 3,
  MigrationIn = 4,
  MigrationOut = 5,
  Snapshot = 6,
  SnapshotRevert = 7,
  Dump = 8,
  Backup = 9,
  SnapshotDelete = 10,
}

/** virDomainGetJobStatsFlags: COMPLETED reads the stats of the job that last completed instead of the running one. */
export const VIR_DOMAIN_JOB_STATS_COMPLETED = 1;
/** With COMPLETED: leave the completed job's stats in place for a later call to read too. */
export const VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED = 2;

/** virDomainAbortJobFlagsValues */
export const VIR_DOMAIN_ABORT_JOB_POSTCOPY = 1;

/** Typed-parameter names of virDomainGetJobStats this client decodes (VIR_DOMAIN_JOB_*). */
export const VIR_DOMAIN_JOB_OPERATION = 'operation';
export const VIR_DOMAIN_JOB_TIME_ELAPSED = 'time_elapsed';
export const VIR_DOMAIN_JOB_DATA_TOTAL = 'data_total';
export const VIR_DOMAIN_JOB_DATA_PROCESSED = 'data_processed';
export const VIR_DOMAIN_JOB_DATA_REMAINING = 'data_remaining';
export const VIR_DOMAIN_JOB_DISK_TEMP_USED = 'disk_temp_used';
export const VIR_DOMAIN_JOB_DISK_TEMP_TOTAL = 'disk_temp_total';
export const VIR_DOMAIN_JOB_SUCCESS = 'success';
export const VIR_DOMAIN_JOB_ERRMSG = 'errmsg';
