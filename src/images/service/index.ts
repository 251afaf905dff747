// Public surface of the image service: the Glance-shaped HTTP service, for the stack, server-main and tests.
export * from './image-auth';
export * from './image-server';
export * from './image-server-config';
export { createImageHttpApp, type ImageHttpAppOptions } from './image-http-app';
export { ImageService, type ImageServiceOptions, type ImageListPage, type RecoveryReport } from './image-service';
export { ResumableUploads } from './resumable-uploads';
export type { ResumableRecovery } from './resumable-recovery';
