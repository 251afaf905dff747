// The second libvirt daemon of the two-host tests: a guest defined and started on it runs, and is
// invisible to the system daemon (each host has its own instances).
import { Libvirt } from '../../../src/libvirt';
import { createInstanceFixture, DEFAULT_TEST_URI, type InstanceFixture } from '../../support/instance-fixture';
import { startSecondLibvirtd, type SecondLibvirtd } from '../../support/second-libvirtd';

let daemon: SecondLibvirtd | undefined;
let fixture: InstanceFixture | undefined;
afterAll(async () => {
  await fixture?.cleanup().catch(() => undefined);
  await daemon?.stop();
});

it('runs a guest that the system daemon does not see', async () => {
  daemon = await startSecondLibvirtd();
  fixture = await createInstanceFixture({ uri: daemon.uri, connectOptions: { socketPath: daemon.socketPath }, prefix: 'host2' });
  const names2 = (await fixture.client.connectListAllDomains(0)).map((d) => d.name);
  expect(names2).toContain(fixture.instance.name);
  const system = await Libvirt.connect(DEFAULT_TEST_URI);
  try {
    const names1 = (await system.connectListAllDomains(0)).map((d) => d.name);
    expect(names1).not.toContain(fixture.instance.name);
  } finally {
    await system.close();
  }
});
