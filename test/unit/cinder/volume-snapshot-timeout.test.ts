// SNAP_VOLUME_SNAPSHOT_TIMEOUT_SECONDS: the run's wait for its Cinder snapshots, as the control
// worker reads it (whole seconds, 1 s to a day, 10 min when unset); anything else is refused.
import { VolumeSnapshotTimeoutSchema } from '../../../src/cinder';

describe('SNAP_VOLUME_SNAPSHOT_TIMEOUT_SECONDS', () => {
  it("defaults to 10 minutes and takes whole seconds from the environment's text", () => {
    expect(VolumeSnapshotTimeoutSchema.parse(undefined)).toBe(600);
    expect(VolumeSnapshotTimeoutSchema.parse('40')).toBe(40);
    expect(VolumeSnapshotTimeoutSchema.parse('86400')).toBe(86_400);
  });

  it.each(['0', '-5', '1.5', '86401', 'ten', ''])('refuses %j', (text) => {
    expect(VolumeSnapshotTimeoutSchema.safeParse(text).success).toBe(false);
  });
});
