// The real Linux test guest (src/testing/guest/): the tools that build and inspect it, then the
// build itself (cached under .tools/guest) and the once-per-host KVM probe.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { aptInstall, onPath, run } from './run.mjs';

// gcc + libc6-dev build the static workload; e2fsprogs makes and checks the guest's ext4;
// dpkg-deb and apt-get download unpack Debian's packages without installing them.
const TOOLS = { gcc: 'gcc', 'mkfs.ext4': 'e2fsprogs', debugfs: 'e2fsprogs', e2fsck: 'e2fsprogs', 'dpkg-deb': 'dpkg', ldd: 'libc-bin' };

function ensureBuildTools() {
  const missing = [...new Set(Object.entries(TOOLS).filter(([tool]) => !onPath(tool) && !existsSync(`/usr/sbin/${tool}`) && !existsSync(`/sbin/${tool}`)).map(([, pkg]) => pkg))];
  if (!existsSync('/usr/lib/x86_64-linux-gnu/libc.a')) missing.push('libc6-dev');
  if (missing.length > 0) aptInstall([...new Set(missing)], 'tools for the test guest are missing');
}

export function ensureTestGuest(root, { probeKvm }) {
  ensureBuildTools();
  const args = [join(root, 'src', 'testing', 'guest', 'build-guest-main.ts')];
  if (probeKvm) args.push('--probe-kvm');
  run(join(root, 'node_modules', '.bin', 'tsx'), args, { cwd: root });
}
