// One real Cinder (and its RabbitMQ) per test file that needs it, on that file's Ceph: started in
// beforeAll after the cluster, its start time and memory logged once, stopped in afterAll first.
// With the file's Keystone (`keystone`), Cinder validates Keystone's tokens (auth_strategy=keystone,
// its own service user `cinder` with the service role) and is registered in Keystone's catalog as
// service type volumev3 (`…/v3/%(project_id)s`, public, RegionOne), as a deployment has it.
import type { CephCluster } from '../../src/testing/ceph/ceph-cluster';
import { startCinder, type RunningCinder } from './openstack/cinder';
import type { RunningKeystone } from './openstack/keystone';

export function useCinder(ceph: () => CephCluster, options: { keystone?: () => RunningKeystone } = {}): () => RunningCinder {
  let cinder: RunningCinder | undefined;
  beforeAll(async () => {
    const keystone = options.keystone?.();
    const user = keystone === undefined ? undefined : await keystone.createUser('cinder', 'service', ['admin', 'service']);
    cinder = await startCinder(ceph(), keystone === undefined || user === undefined ? {} : { keystone: { url: keystone.url, username: user.username, password: user.password, project: user.project } });
    if (keystone !== undefined) await keystone.registerEndpoint('volumev3', 'cinderv3', `${cinder.baseUrl}/%(project_id)s`);
    const rss = await cinder.rss();
    const mib = (n: number): string => `${Math.round(n / 2 ** 20)} MiB`;
    const s = cinder.startMs;
    process.stderr.write(
      `[cinder] ready in ${s.total} ms (RabbitMQ ${s.rabbitmq} ms, Cinder services ${s.cinder} ms${keystone === undefined ? '' : ', Keystone auth'}); RSS ${Object.entries(rss).map(([d, n]) => `${d} ${mib(n)}`).join(', ')}, total ${mib(Object.values(rss).reduce((a, b) => a + b, 0))}\n`,
    );
  }, 240_000);
  afterAll(async () => {
    await cinder?.stop();
  }, 30_000);
  return () => {
    if (cinder === undefined) throw new Error('Cinder is not up (beforeAll failed)');
    return cinder;
  };
}
