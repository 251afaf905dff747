// Public surface of the project's NBD client.
export * from './errors';
export {
  BASE_ALLOCATION,
  dirtyBitmapContext,
  NBD_STATE_DIRTY,
  NBD_STATE_HOLE,
  NBD_STATE_ZERO,
  NBD_EPERM,
  NBD_EIO,
  NBD_ENOMEM,
  NBD_EINVAL,
  NBD_ENOSPC,
  NBD_EOVERFLOW,
  NBD_ENOTSUP,
  NBD_ESHUTDOWN,
  NBD_REP_ERR_UNSUP,
  NBD_REP_ERR_POLICY,
  NBD_REP_ERR_INVALID,
  NBD_REP_ERR_PLATFORM,
  NBD_REP_ERR_TLS_REQD,
  NBD_REP_ERR_UNKNOWN,
  NBD_REP_ERR_SHUTDOWN,
  NBD_REP_ERR_BLOCK_SIZE_REQD,
  NBD_REP_ERR_TOO_BIG,
  NbdCommand,
  NbdOption,
} from './protocol';
export { NbdClient, type BlockStatusOptions } from './client';
export { NbdConnectOptionsSchema, type NbdConnectOptions } from './options';
export type { BlockSize } from './handshake';
export type { Extent } from './replies';
export { allocationMap, allocationKind, dirtyRanges, walkExtents, type AllocationExtent, type AllocationKind, type Range, type WalkOptions } from './extents';
