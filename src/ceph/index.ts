// Public surface of the project's Ceph client (the rbd and ceph CLIs, JSON output, typed errors).
export * from './errors';
export * from './names';
export { connectionArgs, CephConnectionSchema, runCeph, type CallOptions, type CephConnection, type CephTool } from './transport';
export { callCeph } from './rpc';
export { RbdClient, type RbdExtent, type RbdImageInfo, type RbdSnapshot } from './client';
export { coalesceExtents, MAX_DIFF_EXTENTS, RbdDiffTooLarge } from './diff';
export { CLONE_FORMAT, RbdClones } from './clones';
