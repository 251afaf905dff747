import { snapshotQuotaExceeded, volumeBackedImageProperties } from '../../../src/contract';

const root = { device: 'vda', snapshotId: '3f0e6c1a-2b4d-4e5f-8a9b-0c1d2e3f4a5b', volumeSizeGiB: 10, root: true };
const data = { device: 'vdb', snapshotId: '7a8b9c0d-1e2f-4a3b-9c4d-5e6f7a8b9c0d', volumeSizeGiB: 2, root: false };

describe("Nova's volume-backed image properties", () => {
  it('writes bdm v2 entries from the snapshots, the root first with boot index 0, as Glance v2 strings', () => {
    const props = volumeBackedImageProperties([data, root]);
    expect(props.bdm_v2).toBe('True');
    expect(props.root_device_name).toBe('/dev/vda');
    const mapping = JSON.parse(props.block_device_mapping) as Record<string, unknown>[];
    expect(mapping).toHaveLength(2);
    expect(mapping[0]).toMatchObject({ source_type: 'snapshot', destination_type: 'volume', snapshot_id: root.snapshotId, volume_size: 10, boot_index: 0, device_name: '/dev/vda', device_type: 'disk', delete_on_termination: false });
    expect(mapping[1]).toMatchObject({ snapshot_id: data.snapshotId, volume_size: 2, boot_index: null, device_name: '/dev/vdb' });
    // get_image_mapping drops the db-only fields and connection_info
    for (const entry of mapping) for (const key of ['id', 'instance_uuid', 'attachment_id', 'connection_info']) expect(entry).not.toHaveProperty(key);
  });

  it('refuses a mapping without a root volume', () => {
    expect(() => volumeBackedImageProperties([data])).toThrow(/root volume/);
  });

  it("checks the snapshot quota as Nova does: every volume's snapshot must fit, -1 is unlimited", () => {
    expect(snapshotQuotaExceeded({ limit: 10, inUse: 8 }, 2)).toBe(false);
    expect(snapshotQuotaExceeded({ limit: 10, inUse: 9 }, 2)).toBe(true);
    expect(snapshotQuotaExceeded({ limit: -1, inUse: 1000 }, 4)).toBe(false);
    expect(snapshotQuotaExceeded({ limit: 0, inUse: 0 }, 1)).toBe(true);
  });
});
