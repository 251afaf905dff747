export { snapshotInstance } from './snapshot-instance';
export { reportInventory } from './report-inventory';
export { scheduledBackup } from './scheduled-backup';
