// Public surface of the shared vocabulary. Imports nothing of the project, so every room may use it.
export * from './backup-retention';
export * from './backup-schedule';
export * from './control-characters';
export * from './error-message';
export * from './error-types';
export * from './instance-states';
export * from './inventory';
export * from './snapshot-activities';
export * from './uploaded-image';
export * from './snapshot-chain';
export * from './snapshot-workflow';
export * from './temporal-names';
export * from './volume-backed';
export * from './volume-backed-image';
export * from './volume-snapshot-activities';
export * from './requests-in-flight';
