// Ceph for the RBD tests on a test machine: Debian's mon, mgr and OSD daemons and the rbd/ceph
// CLIs, QEMU's rbd block driver, the python bindings a Glance on RBD needs, and the RADOS Gateway
// (radosgw, radosgw-admin) the image store's S3 backend is tested on. Nothing is
// configured or started here: each test suite brings up its own single-node cluster under a temp
// dir (test/support/ceph.ts). Idempotent: skipped when every tool and the rbd driver are present.
import { existsSync, readdirSync } from 'node:fs';
import { aptInstall, onPath, probe } from './run.mjs';

const PACKAGES = ['ceph-mon', 'ceph-osd', 'ceph-mgr', 'ceph-common', 'qemu-block-extra', 'python3-rbd', 'python3-rados', 'radosgw'];
const TOOLS = ['ceph-mon', 'ceph-osd', 'ceph-mgr', 'ceph', 'rbd', 'ceph-authtool', 'monmaptool', 'radosgw', 'radosgw-admin'];
const DIST_PACKAGES = '/usr/lib/python3/dist-packages';

function qemuHasRbd() {
  // `qemu-img --help` lists the block drivers QEMU loaded, rbd among them once qemu-block-extra is in.
  const help = probe('qemu-img', ['--help']);
  return /Supported formats:.*\brbd\b/s.test(help.stdout);
}

function hasPythonBindings() {
  if (!existsSync(DIST_PACKAGES)) return false;
  const files = readdirSync(DIST_PACKAGES);
  return ['rbd', 'rados'].every((module) => files.some((file) => file.startsWith(`${module}.cpython-`) && file.endsWith('.so')));
}

function missingParts() {
  const missing = TOOLS.filter((tool) => !onPath(tool) && !existsSync(`/usr/bin/${tool}`) && !existsSync(`/usr/sbin/${tool}`));
  if (!qemuHasRbd()) missing.push('QEMU rbd driver');
  if (!hasPythonBindings()) missing.push('python rbd/rados bindings');
  return missing;
}

export function ensureCephHost() {
  const missing = missingParts();
  if (missing.length === 0) return;
  aptInstall(PACKAGES, `Ceph for the RBD tests is missing (${missing.join(', ')})`, { noRecommends: true });
}
