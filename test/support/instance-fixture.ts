// Jest helper: a throw-away Nova-style instance per test file (unique name, own temp dir), torn
// down in afterAll even when the tests fail.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Libvirt, LibvirtConnectionError, type ConnectOptions } from '../../src/libvirt';
import { linuxGuestSpec, waitForGuestReady, type LinuxGuestOptions } from './linux-guest';
import type { InstanceSpec } from '../../src/testing/instance-layout';
import { createInstance, removeInstance, type Instance } from '../../src/testing/instance-lifecycle';

export const DEFAULT_TEST_URI = process.env.LIBVIRT_TEST_URI ?? 'qemu:///system';

/** Where the fixtures lay their instances out (each in a mkdtemp directory of its own): the host worker's SNAP_INSTANCES_PATH in tests. */
export const TEST_INSTANCES_PATH = os.tmpdir();

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

export interface FixtureOptions extends Partial<Omit<InstanceSpec, 'name' | 'dir' | 'linux'>> {
  /** A real Linux guest (workload, agent, rate); started ones are waited for until init reports ready. */
  linux?: LinuxGuestOptions;
  /** Linux guests: suspend once booted (a paused guest with a running kernel, not one paused before boot). */
  pauseWhenReady?: boolean;
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
  const dir = await mkdtemp(path.join(TEST_INSTANCES_PATH, 'snaptest-'));
  const name = uniqueDomainName(opts.prefix);
  let created: Instance | null = null;
  try {
    const guest = opts.linux ? await linuxGuestSpec(client, opts.linux) : null;
    const spec: InstanceSpec = { name, dir, memoryMiB: opts.memoryMiB, diskSizeBytes: opts.diskSizeBytes, domainType: opts.domainType ?? guest?.domainType, linux: guest?.linux, diskFormat: opts.diskFormat, rbd: opts.rbd, block: opts.block, dataVolumes: opts.dataVolumes, uuid: opts.uuid, projectId: opts.projectId };
    created = await createInstance(client, spec, { start: opts.start, startFlags: opts.startFlags });
    if (guest && opts.start !== false && !opts.startFlags) {
      await waitForGuestReady(created.consolePath);
      if (opts.pauseWhenReady) await client.domainSuspend(created.domain);
    }
  } catch (e) {
    if (created) await removeInstance(client, created).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    if (ownClient) await client.close();
    throw e;
  }
  const instance = created;
  let cleaned = false;
  return {
    client,
    instance,
    dir,
    async cleanup() {
      if (cleaned) return;
      cleaned = true;
      try {
        await removeInstance(client, instance).catch(async (err: unknown) => {
          // The connection died with a libvirtd restart the test made: a fresh one removes the guest.
          if (!(err instanceof LibvirtConnectionError)) throw err;
          const fresh = await Libvirt.connect(client.uri);
          try {
            await removeInstance(fresh, instance);
          } finally {
            await fresh.close();
          }
        });
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
