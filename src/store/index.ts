// Public surface of the instance store.
export * from './instance-model';
export * from './inventory-mapping';
export * from './instance-store';
export * from './store-config';
export * from './store-connection';
export * from './store-errors';
export * from './store-migrations';
export type { StoreDatabase, InstancesTable } from './store-schema';
export * from './store-env';
export * from './instance-action-store';
export * from './snapshot-chain-store';
