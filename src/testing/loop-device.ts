// Loop devices standing in for LVM logical volumes in tests (this machine kind's kernel has no
// device-mapper, so lvcreate cannot make real ones): a sparse file attached with losetup, named
// through a symlink the way LVM names /dev/<vg>/<lv> → /dev/dm-N. Needs root (losetup), as the
// tests that drive qemu:///system run here. Loop devices are found by their backing file, so what
// a crashed run attached is found again, even after the file was deleted.
import { z } from 'zod';
import { assertSafePath } from '../fs/safe-path';
import { parseToolJson, runTool, runToolOutput } from '../process/tool-process';

const LOOP_DEVICE_RE = /^\/dev\/loop\d+$/;
const LoopListSchema = z.object({
  loopdevices: z.array(z.object({ name: z.string().regex(LOOP_DEVICE_RE, 'a loop device'), 'back-file': z.string().nullable() }).passthrough()),
});
/** What losetup appends to a backing file that was deleted while attached. */
const DELETED_SUFFIX = ' (deleted)';

/** Attaches `file` to the first free loop device and returns it (/dev/loopN). */
export async function attachLoopDevice(file: string): Promise<string> {
  const { stdout } = await runToolOutput('losetup', ['--find', '--show', assertSafePath(file)]);
  const device = stdout.trim();
  if (!LOOP_DEVICE_RE.test(device)) throw new Error(`losetup attached ${file} to ${JSON.stringify(device)}, not a loop device`);
  return device;
}

/** The loop devices attached to `file` ([] for none), the file present or deleted. */
export async function loopDevicesOf(file: string): Promise<string[]> {
  const { stdout } = await runToolOutput('losetup', ['--list', '--json']);
  // losetup prints nothing at all when no loop device is attached.
  if (stdout.trim() === '') return [];
  const attached = parseToolJson('losetup', LoopListSchema, stdout).loopdevices;
  return attached.filter((d) => d['back-file'] === file || d['back-file'] === file + DELETED_SUFFIX).map((d) => d.name);
}

/** Detaches every loop device `file` is attached to; nothing when none is. */
export async function detachLoopDevices(file: string): Promise<void> {
  for (const device of await loopDevicesOf(assertSafePath(file))) await runTool('losetup', ['--detach', device]);
}
