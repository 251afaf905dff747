// HTTP server plumbing shared by the compute API and the image service.
export * from './fastify-app';
