// RabbitMQ for a test file's Cinder: Debian's broker run straight from its binary, every dir, the
// Erlang cookie and the port mapper (epmd, ours and in the foreground, so none is left running) under
// one temp dir, bound to loopback on free ports. Ready when the AMQP port accepts a connection.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorMessage } from '../../../src/contract';
import { freePort, portAnswers } from '../free-port';
import { startServiceProcess, type ServiceProcess } from './service-process';

// Debian's rabbitmq-server package; scripts/lib/rabbitmq-host.mjs installs it.
const RABBITMQ_SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server';

export interface RunningRabbitmq {
  /** oslo.messaging's transport_url */
  transportUrl: string;
  /** epmd's, AMQP's and the distribution's: none answers after stop() */
  ports: number[];
  startMs: number;
  rss(): Promise<number>;
  /** Stops the broker (epmd stays), as a fault test's restart does; its clients lose their connections. */
  stopBroker(): Promise<void>;
  /** Starts the broker again on the same ports and dir, once its AMQP port accepts connections (a running one is left be). */
  startBroker(): Promise<void>;
  stop(): Promise<void>;
}

/** `parentDir`: where its temp dir goes (a fixture's own), default the system's temp dir. */
export async function startRabbitmq(options: { readyTimeoutMs?: number; parentDir?: string } = {}): Promise<RunningRabbitmq> {
  const started = Date.now();
  const dir = await mkdtemp(join(options.parentDir ?? tmpdir(), 'snap-rabbitmq-'));
  const services: ServiceProcess[] = [];
  const stop = async (): Promise<void> => {
    // the broker first: it deregisters from epmd on its way out
    for (const service of [...services].reverse()) await service.stop();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const [epmdPort, amqpPort, distPort] = [await freePort(), await freePort(), await freePort()];
    await writeFile(
      join(dir, 'rabbitmq.conf'),
      [
        `listeners.tcp.default = 127.0.0.1:${amqpPort}`,
        'distribution.listener.interface = 127.0.0.1',
        `distribution.listener.port_range.min = ${distPort}`,
        `distribution.listener.port_range.max = ${distPort}`,
        'loopback_users.guest = true',
        '',
      ].join('\n'),
    );
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HOME: dir,
      RABBITMQ_CONF_ENV_FILE: join(dir, 'rabbitmq-env.conf'),
      RABBITMQ_CONFIG_FILE: join(dir, 'rabbitmq.conf'),
      RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
      RABBITMQ_LOG_BASE: join(dir, 'log'),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
      RABBITMQ_PID_FILE: join(dir, 'rabbitmq.pid'),
      RABBITMQ_NODENAME: 'rabbit@localhost',
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(amqpPort),
      RABBITMQ_DIST_PORT: String(distPort),
      // the broker would start a daemonised epmd that outlives it; ours runs in the foreground
      RABBITMQ_SERVER_ERL_ARGS: '-start_epmd false',
      ERL_EPMD_PORT: String(epmdPort),
      ERL_EPMD_ADDRESS: '127.0.0.1',
    };
    await writeFile(env.RABBITMQ_CONF_ENV_FILE ?? '', '');
    services.push(startServiceProcess('epmd', 'epmd', ['-port', String(epmdPort), '-address', '127.0.0.1'], env, join(dir, 'epmd.log')));
    await waitForPort(epmdPort, services, 10_000);
    const startBroker = async (): Promise<void> => {
      if (services.at(-1)?.name === 'rabbitmq') return;
      services.push(startServiceProcess('rabbitmq', RABBITMQ_SERVER, [], env, join(dir, 'rabbitmq.log')));
      await waitForPort(amqpPort, services, options.readyTimeoutMs ?? 60_000);
    };
    await startBroker();
    return {
      transportUrl: `rabbit://guest:guest@127.0.0.1:${amqpPort}/`,
      ports: [epmdPort, amqpPort, distPort],
      startMs: Date.now() - started,
      rss: async () => (await Promise.all(services.map((s) => s.rss()))).reduce((a, b) => a + b, 0),
      async stopBroker() {
        const broker = services.at(-1);
        if (broker?.name !== 'rabbitmq') throw new Error('the broker is not running');
        services.pop();
        await broker.stop();
      },
      startBroker,
      stop,
    };
  } catch (err) {
    const tails = await Promise.all(services.map(async (s) => `--- ${s.name}\n${await s.logTail()}`));
    await stop();
    throw new Error(`RabbitMQ did not come up: ${errorMessage(err)}\n${tails.join('\n')}`, { cause: err });
  }
}

/** Waits until `port` on loopback accepts a connection, failing early when a service has exited. */
export async function waitForPort(port: number, services: readonly ServiceProcess[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dead = services.find((s) => s.exited());
    if (dead !== undefined) throw new Error(`${dead.name} exited (${dead.child.exitCode ?? dead.child.signalCode})`);
    if (await portAnswers(port)) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
