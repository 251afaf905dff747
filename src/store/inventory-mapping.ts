// How a host's domain report becomes an instance row: the vm_state its power state implies and the
// disk that counts as the root disk.
import {
  POWER_STATE_CRASHED,
  POWER_STATE_NOSTATE,
  POWER_STATE_PAUSED,
  POWER_STATE_RUNNING,
  POWER_STATE_SHUTDOWN,
  POWER_STATE_SUSPENDED,
  type InventoryDisk,
  type PowerState,
  type VmState,
} from '../contract';

/**
 * The vm_state a host's observed power state implies. NOSTATE yields undefined because "the
 * hypervisor could not tell" must not overwrite what we already know about the instance.
 */
export function vmStateForPowerState(power: PowerState): VmState | undefined {
  switch (power) {
    case POWER_STATE_RUNNING:
      return 'active';
    case POWER_STATE_PAUSED:
      return 'paused';
    case POWER_STATE_SHUTDOWN:
      return 'stopped';
    case POWER_STATE_SUSPENDED:
      return 'suspended';
    case POWER_STATE_CRASHED:
      return 'error';
    case POWER_STATE_NOSTATE:
      return undefined;
  }
}

const ROOT_TARGETS = ['vda', 'sda', 'hda', 'xvda'];

/** The root disk: the one on a conventional first-disk target, else the first disk listed (libvirt lists boot disks first). */
export function pickRootDisk(disks: readonly InventoryDisk[]): InventoryDisk | undefined {
  return disks.find((d) => d.target !== undefined && ROOT_TARGETS.includes(d.target)) ?? disks[0];
}
