// Jest helper: a throw-away Nova-style instance per test file (unique name, own temp dir), torn
// down in afterAll even when the tests fail.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Libvirt, type ConnectOptions } from '../../src/libvirt';
import { createInstance, removeInstance, type Instance, type InstanceSpec } from '../../src/host/instance-layout';

export const DEFAULT_TEST_URI = process.env.LIBVIRT_TEST_URI ?? 'qemu:///system';

export function uniqueDomainName(prefix = 'snaptest'): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

export interface InstanceFixture {
  client: Libvirt;
  instance: Instance;
  /** The mkdtemp directory holding the disks; anything a test puts here is deleted too. */
  dir: string;
  cleanup(): Promise<void>;
}

export interface FixtureOptions extends Partial<Omit<InstanceSpec, 'name' | 'dir'>> {
  /** Reuse a connection instead of opening one (it is then left open by cleanup). */
  client?: Libvirt;
  uri?: string;
  connectOptions?: ConnectOptions;
  start?: boolean;
  startFlags?: number;
  prefix?: string;
}

export async function createInstanceFixture(opts: FixtureOptions = {}): Promise<InstanceFixture> {
  const ownClient = !opts.client;
  const client = opts.client ?? (await Libvirt.connect(opts.uri ?? DEFAULT_TEST_URI, opts.connectOptions));
  const dir = await mkdtemp(path.join(os.tmpdir(), 'snaptest-'));
  const name = uniqueDomainName(opts.prefix);
  let instance: Instance;
  try {
    instance = await createInstance(client, { name, dir, memoryMiB: opts.memoryMiB, diskSizeBytes: opts.diskSizeBytes, domainType: opts.domainType }, { start: opts.start, startFlags: opts.startFlags });
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    if (ownClient) await client.close();
    throw e;
  }
  let cleaned = false;
  return {
    client,
    instance,
    dir,
    async cleanup() {
      if (cleaned) return;
      cleaned = true;
      try {
        await removeInstance(client, instance);
      } finally {
        await rm(dir, { recursive: true, force: true });
        if (ownClient) await client.close();
      }
    },
  };
}

/** Registers beforeAll/afterAll; call the returned getter inside tests. */
export function useInstanceFixture(opts: FixtureOptions = {}): () => InstanceFixture {
  let fixture: InstanceFixture | null = null;
  beforeAll(async () => {
    fixture = await createInstanceFixture(opts);
  });
  afterAll(async () => {
    await fixture?.cleanup();
  });
  return () => {
    if (!fixture) throw new Error('instance fixture not created (did beforeAll fail?)');
    return fixture;
  };
}
