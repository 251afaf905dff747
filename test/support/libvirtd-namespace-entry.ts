// Runs inside `unshare --mount --propagation private` (started by second-libvirtd.ts): bind-mounts
// private state dirs over libvirt's fixed system paths — visible to this mount namespace only —
// and runs a second libvirtd in the foreground with its own config and socket dir. SIGTERM stops
// it. A separate entry rather than `sh -c` so every command is an argv array.
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { z } from 'zod';

const env = z.object({ SNAP_LIBVIRTD2_DIR: z.string().min(1) }).parse(process.env);
const dir = env.SNAP_LIBVIRTD2_DIR;
const mounts: [string, string][] = [
  [join(dir, 'run'), '/run/libvirt'],
  [join(dir, 'lib'), '/var/lib/libvirt'],
  [join(dir, 'cache'), '/var/cache/libvirt'],
  [join(dir, 'log'), '/var/log/libvirt'],
  [join(dir, 'etc'), '/etc/libvirt'],
];
for (const [source, target] of mounts) execFileSync('mount', ['--bind', source, target]);
const daemon = spawn('libvirtd', ['--pid-file', join(dir, 'libvirtd.pid')], { stdio: 'inherit' });
const stop = (): void => {
  daemon.kill('SIGTERM');
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
daemon.on('exit', (code) => process.exit(code ?? 0));
