// RabbitMQ for the Cinder tests on a test machine: Debian's broker, run by each test file straight
// from its binary under a temp dir (test/support/openstack/rabbitmq.ts). Nothing is configured or
// started here. Idempotent: skipped when the broker's start script and epmd are present.
import { existsSync } from 'node:fs';
import { aptInstall, onPath } from './run.mjs';

export const RABBITMQ_SERVER = '/usr/lib/rabbitmq/bin/rabbitmq-server';

export function ensureRabbitmqHost() {
  if (existsSync(RABBITMQ_SERVER) && onPath('epmd')) return;
  aptInstall(['rabbitmq-server'], 'RabbitMQ for the Cinder tests is missing', { noRecommends: true });
}
