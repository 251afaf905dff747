// Public surface of the project's libvirt client.
export * from './errors';
export * from './protocol';
export { Libvirt, ConnectOptionsSchema, type ConnectOptions, type CallOptions, type DomainInfo, type BlockJobInfo, type BlockCopyParameters } from './client';
export { waitForBlockJob, type WaitForBlockJobOptions, type BlockJobOutcome } from './blockjob';
export type { DomainEvent, LifecycleEvent, BlockJobEvent, DomainEventCallback } from './events';
export type { Domain, TypedParam } from './types';
export { parseUri, resolveTarget, type ParsedUri } from './uri';
