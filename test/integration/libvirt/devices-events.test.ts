// Hot-plug, guest-agent calls and domain events against the real libvirtd + QEMU.
import path from 'node:path';
import {
  BlockJobStatus,
  BlockJobType,
  DomainEventId,
  DomainLifecycleEvent,
  DomainState,
  LibvirtError,
  VIR_DOMAIN_AFFECT_LIVE,
  VIR_DOMAIN_BLOCK_COPY_REUSE_EXT,
  VIR_DOMAIN_BLOCK_COPY_SHALLOW,
  VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB,
  VIR_ERR_ARGUMENT_UNSUPPORTED,
  type DomainEvent,
} from '../../../src/libvirt';
import { buildDiskXml } from '../../../src/testing/instance-layout';
import { createQcow2 } from '../../../src/host/qemu-img';
import { useInstanceFixture } from '../../support/instance-fixture';

// Generous deadlines: libvirtd emits a lifecycle event from QEMU's own STOP/RESUME event, after the API
// call has returned, and on a loaded 2-core machine that has taken more than 5 s (CI, 2026-12-07).
const EVENT_DEADLINE_MS = 30_000;

function waitFor<T>(what: string, ms: number, probe: () => T | undefined, seen: () => string = () => ''): Promise<T> {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + ms;
    const tick = (): void => {
      const v = probe();
      if (v !== undefined) resolve(v);
      else if (Date.now() > deadline) reject(new Error(`timed out after ${ms} ms waiting for ${what}; seen: ${seen() || 'nothing'}`));
      else setTimeout(tick, 10);
    };
    tick();
  });
}

const describeEvents = (events: DomainEvent[]) => (): string =>
  events.map((e) => (e.kind === 'lifecycle' ? `lifecycle ${e.event}/${e.detail}` : `block-job ${e.disk} ${e.type}/${e.status}`)).join(', ');

describe('libvirt client: device hot-plug', () => {
  const fixture = useInstanceFixture({ prefix: 'snaptest-dev' });

  it('attaches and detaches a virtio disk on the live domain', async () => {
    const { client, instance, dir } = fixture();
    const extra = path.join(dir, 'extra.qcow2');
    await createQcow2(extra, { sizeBytes: 8 * 1024 * 1024 });
    const xml = buildDiskXml(extra, 'vdb');
    await client.domainAttachDeviceFlags(instance.domain, xml, VIR_DOMAIN_AFFECT_LIVE);
    const attached = await client.domainGetXMLDesc(instance.domain);
    expect(attached).toContain(`<source file='${extra}'`);
    expect(attached).toMatch(/<target dev='vdb' bus='virtio'\/>/);
    await client.domainDetachDeviceFlags(instance.domain, xml, VIR_DOMAIN_AFFECT_LIVE);
    const detached = await client.domainGetXMLDesc(instance.domain);
    expect(detached).not.toContain(extra);
    expect(detached).toContain(instance.overlayPath);
  });

  it('FS freeze/thaw without a guest agent is refused as argument-unsupported', async () => {
    const { client, instance } = fixture();
    for (const call of [() => client.domainFSFreeze(instance.domain), () => client.domainFSThaw(instance.domain)]) {
      const err = await call().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LibvirtError);
      expect((err as LibvirtError).code).toBe(VIR_ERR_ARGUMENT_UNSUPPORTED);
      expect((err as LibvirtError).message).toMatch(/guest agent is not configured/);
    }
    // The mount-point list reaches the daemon intact: thaw rejects it before looking for an agent.
    const err = await client.domainFSThaw(instance.domain, ['/', '/var']).catch((e: unknown) => e);
    expect((err as LibvirtError).code).toBe(VIR_ERR_ARGUMENT_UNSUPPORTED);
    expect((err as LibvirtError).message).toMatch(/specifying mountpoints is not supported/);
  });
});

describe('libvirt client: domain events', () => {
  const fixture = useInstanceFixture({ prefix: 'snaptest-ev' });

  it('delivers lifecycle events for suspend and resume to the registered callback only', async () => {
    const { client, instance } = fixture();
    const mine: DomainEvent[] = [];
    const other: DomainEvent[] = [];
    const id = await client.connectDomainEventCallbackRegisterAny(DomainEventId.Lifecycle, instance.domain, (e) => mine.push(e));
    const idAll = await client.connectDomainEventCallbackRegisterAny(DomainEventId.BlockJob2, null, (e) => other.push(e));
    try {
      await client.domainSuspend(instance.domain);
      expect((await client.domainGetState(instance.domain)).state).toBe(DomainState.Paused);
      const suspended = await waitFor('suspend event', EVENT_DEADLINE_MS, () => mine.find((e) => e.kind === 'lifecycle' && e.event === DomainLifecycleEvent.Suspended), describeEvents(mine));
      expect(suspended.callbackId).toBe(id);
      expect(suspended.domain.name).toBe(instance.name);
      await client.domainResume(instance.domain);
      await waitFor('resume event', EVENT_DEADLINE_MS, () => mine.find((e) => e.kind === 'lifecycle' && e.event === DomainLifecycleEvent.Resumed), describeEvents(mine));
      expect(other).toHaveLength(0);
    } finally {
      await client.connectDomainEventCallbackDeregisterAny(id);
      await client.connectDomainEventCallbackDeregisterAny(idAll);
    }
    // A witness registered now sees the next pair; once it has the resume, the deregistered callback
    // would have had it too, so the check does not depend on how fast events travel.
    const before = mine.length;
    const witness: DomainEvent[] = [];
    const witnessId = await client.connectDomainEventCallbackRegisterAny(DomainEventId.Lifecycle, instance.domain, (e) => witness.push(e));
    try {
      await client.domainSuspend(instance.domain);
      await client.domainResume(instance.domain);
      await waitFor('witness resume event', EVENT_DEADLINE_MS, () => witness.find((e) => e.kind === 'lifecycle' && e.event === DomainLifecycleEvent.Resumed), describeEvents(witness));
    } finally {
      await client.connectDomainEventCallbackDeregisterAny(witnessId);
    }
    expect(mine.length).toBe(before);
  });

  it('delivers BLOCK_JOB_2 ready and canceled events for a block copy', async () => {
    const { client, instance, dir } = fixture();
    const delta = path.join(dir, 'event-delta.qcow2');
    await createQcow2(delta, { backing: instance.basePath });
    const events: DomainEvent[] = [];
    const id = await client.connectDomainEventCallbackRegisterAny(DomainEventId.BlockJob2, instance.domain, (e) => events.push(e));
    try {
      await client.domainBlockCopy(
        instance.domain,
        'vda',
        `<disk type='file'><driver type='qcow2'/><source file='${delta}'/></disk>`,
        { bandwidth: 1024n * 1024n * 1024n },
        VIR_DOMAIN_BLOCK_COPY_SHALLOW | VIR_DOMAIN_BLOCK_COPY_REUSE_EXT | VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB,
      );
      const ready = await waitFor('ready event', EVENT_DEADLINE_MS, () => events.find((e) => e.kind === 'block-job' && e.status === BlockJobStatus.Ready), describeEvents(events));
      expect(ready).toMatchObject({ kind: 'block-job', disk: 'vda', type: BlockJobType.Copy, callbackId: id });
      await client.domainBlockJobAbort(instance.domain, 'vda');
      await waitFor('canceled event', EVENT_DEADLINE_MS, () => events.find((e) => e.kind === 'block-job' && e.status === BlockJobStatus.Canceled), describeEvents(events));
    } finally {
      await client.connectDomainEventCallbackDeregisterAny(id);
    }
  });
});
