// HTTP server plumbing shared by the compute API and the image service (both on Fastify).
export * from './fastify-app';
export * from './media-types';
