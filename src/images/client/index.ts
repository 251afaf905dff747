// Public surface of the image client: what the host, the control worker, the API and snapctl import.
// It loads no HTTP server: the service's rooms (service/, store/) are never reached from here.
export * from './glance-image-view';
export * from './image-client';
export * from './image-errors';
export * from './image-record';
export * from './snapshot-image-record';
export * from './resumable-wire';
export * from './logical-layout';
export * from './chunk-wire';
export { hasChunkUploads, type ChunkUploads } from './chunk-client';
export * from './store-verify-wire';
export * from './store-repair-wire';
