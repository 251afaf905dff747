// Public surface of the compute API.
export { startApi, type StartApiOptions, type RunningApi } from './api-server';
export { apiConfigFromEnv, ApiEnvSchema, type ApiConfig } from './api-config';
export { swaggerOptions } from './openapi';
export * from './api-schemas';
export { faultBody, faultName, ApiError } from './api-errors';
