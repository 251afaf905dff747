export { snapshotInstance } from './snapshot-instance';
