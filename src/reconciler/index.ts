export * from './reconcile-config';
export * from './reconcile-loop';
export * from './open-snapshots';
export * from './schedule-sweeper';
export * from './snapshot-reconciler';
export * from './workdir-sweeper';
