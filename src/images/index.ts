// Public surface of the image service and client.
export * from './glance-image-view';
export * from './image-auth';
export * from './image-client';
export * from './image-errors';
export * from './image-record';
export * from './image-server';
export * from './image-server-config';
export * from './snapshot-image-record';
export { createImageHttpApp, type ImageHttpAppOptions } from './image-http-app';
export { ImageService, type ImageServiceOptions, type ImageListPage, type RecoveryReport } from './image-service';
export { ResumableUploads, type ResumableRecovery } from './resumable-uploads';
export * from './resumable-wire';
export * from './logical-layout';
