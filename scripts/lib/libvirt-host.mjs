// Brings up libvirtd + QEMU on a test machine. A host whose libvirtd already answers is a real
// hypervisor host: nothing on it is installed, configured or started.
import { existsSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { aptInstall, log, onPath, probe, run } from './run.mjs';

const PACKAGES = ['libvirt-daemon-system', 'libvirt-daemon-driver-qemu', 'libvirt-clients', 'qemu-system-x86', 'qemu-utils'];
const QEMU_CONF = '/etc/libvirt/qemu.conf';
const MARKER = '# durable-vm-snapshots: sandbox test host settings';
// No systemd, no cgroup delegation and no user namespaces in these sandboxes: run QEMU as root
// without a security driver, as the foundation issue measured.
const SANDBOX_SETTINGS = [
  'user = "root"',
  'group = "root"',
  'dynamic_ownership = 0',
  'security_driver = "none"',
  'cgroup_controllers = [ ]',
  'namespaces = [ ]',
];

export function libvirtAnswers(uri = 'qemu:///system') {
  return onPath('virsh') && probe('virsh', ['-c', uri, 'version']).ok;
}

function isRoot() {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

function installPackages() {
  const missing = ['virsh', 'libvirtd', 'virtlogd', 'qemu-img', 'qemu-io', 'qemu-system-x86_64'].filter((c) => !onPath(c) && !existsSync(`/usr/sbin/${c}`));
  if (missing.length === 0) return;
  aptInstall(PACKAGES, `libvirt/QEMU missing (${missing.join(', ')})`);
}

function configureQemu() {
  const current = readFileSync(QEMU_CONF, 'utf8');
  if (current.includes(MARKER)) return;
  copyFileSync(QEMU_CONF, `${QEMU_CONF}.orig-durable-vm-snapshots`);
  writeFileSync(QEMU_CONF, `${current}\n${MARKER}\n${SANDBOX_SETTINGS.join('\n')}\n`);
}

function waitFor(check, what, seconds = 30) {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if (check()) return;
    probe('sleep', ['0.2']);
  }
  throw new Error(`${what} did not come up within ${seconds}s`);
}

export function ensureLibvirtHost() {
  if (libvirtAnswers()) return;
  installPackages();
  if (!isRoot()) throw new Error('libvirtd is not running and this user cannot start it');
  configureQemu();
  if (!probe('pgrep', ['-x', 'virtlogd']).ok) run('virtlogd', ['-d']);
  if (!probe('pgrep', ['-x', 'libvirtd']).ok) run('libvirtd', ['-d']);
  waitFor(() => libvirtAnswers(), 'libvirtd');
  log('libvirtd is up');
}
