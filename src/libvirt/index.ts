// Public surface of the project's libvirt client.
export * from './errors';
export * from './protocol';
export * from './backup-protocol';
export { Libvirt } from './client';
export type { DomainBackups } from './backup';
export type { DomainCheckpoints, DomainCheckpoint } from './checkpoints';
export { isBackupJobRunning, isJobActive, type DomainJobs, type DomainJobInfo, type DomainJobStats } from './jobs';
export { ConnectOptionsSchema, type ConnectOptions, type DomainInfo, type BlockInfo, type BlockJobInfo, type BlockCopyParameters } from './api-types';
export type { CallOptions } from './rpc';
export { waitForBlockJob, type WaitForBlockJobOptions, type BlockJobOutcome } from './blockjob';
export type { DomainEvent, LifecycleEvent, BlockJobEvent, DomainEventCallback } from './events';
export type { Domain, TypedParam } from './types';
export { uuidFromBytes } from './types';
export { parseUri, resolveTarget, type ParsedUri } from './uri';
export { boundedGuestText, GUEST_TEXT_MAX_CHARS } from './agent-call';
