// Public surface of the project's Cinder client (the v3 API for one project, typed errors, zod).
export * from './errors';
export { CINDER_MICROVERSION, projectUrl, sendCinder, type CinderConnection, type CinderRequest, type CinderResponse } from './transport';
export { callCinder } from './rpc';
export { CinderClient, type CreateSnapshotRequest, type SnapshotFilter, type SnapshotQuota } from './client';
export type { CinderAbsoluteLimits, CinderAttachment, CinderSnapshot, CinderVolume } from './schemas';
export { confirmAttachedVolumes, VolumeNotAttached, type ClaimedVolume, type ConfirmedVolume } from './attached-volumes';
export { createRunSnapshots, deleteRunSnapshots, findRunSnapshots, runSnapshotName, SNAPSHOT_RUN_KEY, SnapshotsNotAvailable, waitRunSnapshots, type RunSnapshot, type RunSnapshotsCinder, type RunVolume, type SnapshotCallsResult } from './run-snapshots';
export { cinderFor, cinderForProject, VolumeSnapshotTimeoutSchema, VolumeUrlSchema, type CinderForProject, type VolumeAccess } from './cinder-endpoint';
export { catalogVolumeRoot, volumeRootOf, VOLUME_SERVICE_TYPE, workerVolumeAccess, type WorkerVolumeAccess } from './keystone-volume-access';
