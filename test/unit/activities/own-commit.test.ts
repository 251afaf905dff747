// How a stream tells its own landed commit from an active image someone else filled: only by the
// mark our image service records for the snapshot service's commit, never by image properties,
// which the image's owner may write (and on a real Glance, may write at any time). The attack: the
// owner fills the image and writes the stream's properties; the stream's retry must not take it.
import { MockActivityEnvironment } from '@temporalio/testing';
import { Semaphore } from '../../../src/activities/activity-support';
import type { HostActivityDeps } from '../../../src/activities/host-activity-deps';
import { createOnePassActivities, isOwnCommit } from '../../../src/activities/one-pass-activities';
import type { DomainDescription } from '../../../src/contract';
import { ImageGone, type Image, type ImageClient } from '../../../src/images/client';

/** What a completed snapshot's properties say, as the stream sends them with its commit. */
const streamProperties = {
  snapshot_data_path: 'backup-job',
  snapshot_export_id: 'export-1',
  snapshot_quiesced: 'true',
  snapshot_kind: 'full',
  snapshot_logical_digest: 'sha256-1m-blocks:00',
};

function image(overrides: Partial<Image>): Image {
  return {
    id: '5f0e0ed5-4a55-4c39-9a5b-2f2b1a0a8f01',
    name: 'snap',
    status: 'active',
    container_format: 'bare',
    disk_format: 'qcow2',
    visibility: 'private',
    owner: 'p1',
    size: 3,
    checksum: 'x',
    os_hash_algo: 'sha512',
    os_hash_value: 'y',
    created_at: '2030-01-01T00:00:00Z',
    updated_at: '2030-01-01T00:00:00Z',
    properties: streamProperties,
    ...overrides,
  };
}

it('takes an image whose commit the service marked with this upload', () => {
  expect(isOwnCommit(image({ snapshot_commit: 'export-1' }), true)).toBe(true);
  expect(isOwnCommit(image({ snapshot_commit: 'export-1:incremental', properties: { ...streamProperties, snapshot_kind: 'incremental', snapshot_parent_image: 'p' } }), true)).toBe(true);
});

it('refuses forged properties without the mark, a mark of another upload, and anything from a real Glance', () => {
  // The attack: the owner filled the image and wrote the stream's properties itself.
  expect(isOwnCommit(image({}), true)).toBe(false);
  expect(isOwnCommit(image({ snapshot_commit: 'export-2' }), true)).toBe(false);
  expect(isOwnCommit(image({ snapshot_commit: 'export-1', properties: { ...streamProperties, snapshot_kind: 'incremental' } }), true)).toBe(false);
  // A real Glance (no composing store) keeps no mark: a property of that name is the owner's.
  expect(isOwnCommit(image({ snapshot_commit: 'export-1' }), false)).toBe(false);
  expect(isOwnCommit(image({ snapshot_commit: 'export-1', status: 'queued' }), true)).toBe(false);
});

describe('streamSnapshot on an image that is already active', () => {
  /** The retry of a stream, as after a lost completion: it finds `found` and must not touch libvirt. */
  const retry = (found: Image) => {
    const images = { get: async () => found, composes: async () => true } as unknown as ImageClient;
    const deps = { config: { streamBandwidthBytesPerSecond: 0 }, images } as unknown as HostActivityDeps;
    const activities = createOnePassActivities(deps, { extracts: new Semaphore(1), uploads: new Semaphore(1) });
    const input = { domainName: 'vm', workDirKey: 'run-1', mode: 'live' as const, description: { imageFormat: 'qcow2' } as DomainDescription, imageId: found.id };
    return new MockActivityEnvironment().run(activities.streamSnapshot, input);
  };

  it('refuses an image its owner filled and labelled as a finished stream: the snapshot goes into a new image', async () => {
    await expect(retry(image({}))).rejects.toBeInstanceOf(ImageGone);
  });

  it('takes its own landed commit as done', async () => {
    await expect(retry(image({ snapshot_commit: 'export-1' }))).resolves.toMatchObject({ status: 'active', exportId: 'export-1', dataPath: 'backup-job', logicalDigest: '00', kind: 'full' });
  });
});
