// Small shared helpers for the libvirt integration tests.
import { hasPattern, type Pattern } from '../../../src/host/qemu-img';

export { buildDomainXml } from '../../../src/testing/instance-layout';

/** Reads through a running QEMU's image lock (-U) so tests can inspect live disks. */
export function hasPatternSafe(file: string, p: Pattern): Promise<boolean> {
  return hasPattern(file, p, { forceShare: true });
}
