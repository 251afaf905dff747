#!/usr/bin/env node
// Makes a fresh clone runnable: npm dependencies, the pinned Temporal CLI and, on a test machine,
// libvirtd + QEMU, the test guest and the test tools from PyPI (cached virtualenvs). Idempotent; each step is skipped when already satisfied.
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureCephHost } from './lib/ceph-host.mjs';
import { ensureLibvirtHost } from './lib/libvirt-host.mjs';
import { ensurePostgresBinaries } from './lib/postgres-host.mjs';
import { ensureRabbitmqHost } from './lib/rabbitmq-host.mjs';
import { ensurePythonVenv } from './lib/python-venv.mjs';
import { ensureTemporalCli } from './lib/temporal-cli.mjs';
import { ensureTestGuest } from './lib/test-guest.mjs';
import { log, run } from './lib/run.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function ensureNodeModules() {
  const stamp = join(root, 'node_modules', '.package-lock.json');
  const lock = join(root, 'package-lock.json');
  if (existsSync(stamp) && statSync(stamp).mtimeMs >= statSync(lock).mtimeMs) return;
  log('installing npm dependencies');
  run('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root });
}

const steps = process.argv.slice(2);
ensureNodeModules();
const cli = ensureTemporalCli(root);
log(`Temporal CLI: ${cli}`);
const needsLibvirt = process.env.SNAP_SKIP_LIBVIRT !== '1' && (steps.includes('--test') || steps.includes('--start'));
if (needsLibvirt) ensureLibvirtHost();
// The snapshot tests and the demo instance boot a real Linux guest (built once, then cached).
if (steps.includes('--test') || steps.includes('--start')) ensureTestGuest(root, { probeKvm: needsLibvirt });
if (steps.includes('--test')) ensurePostgresBinaries();
// The RBD tests bring up a single-node Ceph of their own; the packages come from Debian.
if (needsLibvirt && steps.includes('--test')) ensureCephHost();
// Volume-backed instances snapshot through a real Cinder (PyPI, below) on that Ceph, over RabbitMQ from Debian.
if (needsLibvirt && steps.includes('--test')) ensureRabbitmqHost();
// OpenStack's own tools drive the integration suite: Tempest's response schemas check the server
// views, a real Keystone issues the tokens, a real Glance stores images, python-openstackclient
// makes the calls.
if (steps.includes('--test')) {
  for (const name of ['tempest', 'keystone', 'openstackclient']) ensurePythonVenv(root, name, join(root, 'openstack', `${name}.txt`));
  // Glance's rbd store (the direct snapshot's tests) imports Debian's rados/rbd bindings, linked into its venv.
  ensurePythonVenv(root, 'glance', join(root, 'openstack', 'glance.txt'), needsLibvirt ? { debianModules: ['rados', 'rbd'] } : {});
}
// Cinder's RBD driver imports Debian's rados/rbd bindings (no usable wheels on PyPI), linked into its venv.
if (needsLibvirt && steps.includes('--test')) ensurePythonVenv(root, 'cinder', join(root, 'openstack', 'cinder.txt'), { debianModules: ['rados', 'rbd'] });
