// Public surface of project-scoped token auth, shared by the compute API, the image service and the workers.
export * from './auth-config';
export * from './authenticator';
export * from './identity';
export * from './token-file';
export * from './keystone-authenticator';
export * from './keystone-config';
export { KeystoneProtocolError, KeystoneUnavailable, type KeystoneEndpoint, type ServiceCredentials } from './keystone-client';
export * from './keystone-catalog';
export * from './keystone-trusts';
export * from './identity-source';
