import { pickRootDisk, StoreConfigSchema, vmStateForPowerState } from '../../../src/store';
import {
  POWER_STATE_CRASHED,
  POWER_STATE_NOSTATE,
  POWER_STATE_PAUSED,
  POWER_STATE_RUNNING,
  POWER_STATE_SHUTDOWN,
  POWER_STATE_SUSPENDED,
} from '../../../src/contract';

describe('power state constants', () => {
  it('use Nova numbering', () => {
    expect([POWER_STATE_NOSTATE, POWER_STATE_RUNNING, POWER_STATE_PAUSED, POWER_STATE_SHUTDOWN, POWER_STATE_CRASHED, POWER_STATE_SUSPENDED]).toEqual([
      0, 1, 3, 4, 6, 7,
    ]);
  });

  it('map to vm_state, leaving NOSTATE undecided', () => {
    expect(vmStateForPowerState(POWER_STATE_RUNNING)).toBe('active');
    expect(vmStateForPowerState(POWER_STATE_PAUSED)).toBe('paused');
    expect(vmStateForPowerState(POWER_STATE_SHUTDOWN)).toBe('stopped');
    expect(vmStateForPowerState(POWER_STATE_SUSPENDED)).toBe('suspended');
    expect(vmStateForPowerState(POWER_STATE_CRASHED)).toBe('error');
    expect(vmStateForPowerState(POWER_STATE_NOSTATE)).toBeUndefined();
  });
});

describe('pickRootDisk', () => {
  it('prefers a conventional root target over list order', () => {
    expect(
      pickRootDisk([
        { path: 'data', format: 'raw', target: 'vdb' },
        { path: 'root', format: 'qcow2', target: 'vda' },
      ])?.path,
    ).toBe('root');
  });

  it('falls back to the first disk, and to nothing for a diskless domain', () => {
    expect(pickRootDisk([{ path: 'a', format: 'raw' }, { path: 'b', format: 'raw' }])?.path).toBe('a');
    expect(pickRootDisk([])).toBeUndefined();
  });
});

describe('StoreConfigSchema', () => {
  it('accepts both dialects and defaults the pool size', () => {
    expect(StoreConfigSchema.parse({ kind: 'sqlite', path: 'x.db' })).toEqual({ kind: 'sqlite', path: 'x.db' });
    expect(StoreConfigSchema.parse({ kind: 'postgres', connectionString: 'postgresql://h/db' })).toMatchObject({ maxConnections: 10 });
  });

  it('rejects an in-memory SQLite, unknown kinds and missing fields', () => {
    expect(StoreConfigSchema.safeParse({ kind: 'sqlite', path: ':memory:' }).success).toBe(false);
    expect(StoreConfigSchema.safeParse({ kind: 'mysql', path: 'x' }).success).toBe(false);
    expect(StoreConfigSchema.safeParse({ kind: 'postgres' }).success).toBe(false);
  });
});
