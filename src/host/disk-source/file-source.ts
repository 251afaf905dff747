// The file disk source: a root disk that is a qcow2 or raw file on the host (Nova's images_type
// qcow2 and flat) with its backing chain, every layer's format as libvirt records it (disk-chain.ts).
import { stat } from 'node:fs/promises';
import type { FileDiskChain } from '../disk-chain';
import type { FileImageSpec } from '../nbd-export';
import type { DiskSource } from './disk-source';

/**
 * Names the disk file itself, not only its path: a disk replaced under the same path (a rebuild,
 * a restore from backup) is another disk whose bitmaps say nothing about the old one.
 */
export async function fileIdentity(diskPath: string): Promise<string> {
  const st = await stat(diskPath, { bigint: true });
  // Birth time where the filesystem keeps one: an inode number alone is reused after a delete.
  return `dev${st.dev}-ino${st.ino}${st.birthtimeNs > 0n ? `-born${st.birthtimeNs}` : ''}`;
}

export class FileDiskSource implements DiskSource {
  readonly kind = 'file';
  /** libvirt keeps a checkpoint as a persistent dirty bitmap in the image, which only qcow2 has */
  readonly checkpointRefusal: string | null;

  constructor(readonly chain: FileDiskChain) {
    this.checkpointRefusal = chain.top.format === 'qcow2' ? null : `a ${chain.top.format} disk cannot hold a checkpoint`;
  }

  identity(): Promise<string> {
    return fileIdentity(this.chain.top.path);
  }

  readOnlyImage(): FileImageSpec {
    return { diskPath: this.chain.top.path, format: this.chain.top.format, backing: this.chain.backing };
  }
}
