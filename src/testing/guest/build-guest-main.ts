// `tsx src/testing/guest/build-guest-main.ts [--probe-kvm]`: builds (or finds cached) the test
// guest and prints where it is; with --probe-kvm also settles whether Linux guests run under KVM
// here. Run by the bootstrap before the tests and `npm start`.
import { Libvirt } from '../../libvirt';
import { ensureGuest } from './guest-builder';
import { linuxGuestDomainType } from './kvm-probe';
import { errorMessage } from '../../contract';

const say = (m: string): void => {
  process.stderr.write(`[guest] ${m}\n`);
};

async function main(): Promise<void> {
  const guest = await ensureGuest({ log: say });
  say(`kernel ${guest.manifest.kernelRelease}, initramfs ${guest.initrdPath}`);
  if (!process.argv.includes('--probe-kvm')) return;
  const client = await Libvirt.connect(process.env.SNAP_LIBVIRT_URI ?? 'qemu:///system');
  try {
    say(`Linux guests run as domain type ${await linuxGuestDomainType(client, guest)}`);
  } finally {
    await client.close();
  }
}

main().catch((err: unknown) => {
  say(errorMessage(err));
  process.exitCode = 1;
});
