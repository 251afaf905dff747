// Logging and metrics shared by the API and both workers.
export * from './logger';
export * from './metrics';
export * from './metrics-http';
export * from './backup-metrics';
