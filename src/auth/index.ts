// Public surface of project-scoped token auth, shared by the compute API, the image service and the workers.
export * from './auth-config';
export * from './authenticator';
export * from './identity';
export * from './token-file';
