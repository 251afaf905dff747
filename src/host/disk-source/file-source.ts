// The file disk source: a root disk that is a qcow2 or raw file on the host (Nova's images_type
// qcow2 and flat), with its format from the domain XML.
import { stat } from 'node:fs/promises';
import { assertSafePath, imageInfo } from '../qemu-img';
import type { FileImageSpec } from '../nbd-export';
import type { DiskFacts, DiskSource } from './disk-source';

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
  readonly path: string;
  /** libvirt checks the image format: a raw disk has nowhere to keep a dirty bitmap */
  readonly checkpointRefusal: string | null;

  constructor(
    path: string,
    readonly format: 'qcow2' | 'raw',
  ) {
    this.path = assertSafePath(path);
    this.checkpointRefusal = format === 'raw' ? 'libvirt keeps no checkpoints on a raw disk: each snapshot is read whole' : null;
  }

  async inspect(): Promise<DiskFacts> {
    // A running QEMU holds the disk locked; -U reads the header anyway.
    const info = await imageInfo(this.path, { forceShare: true });
    return { sourceFormat: this.format, virtualSize: info.virtualSize, backingPath: info.fullBackingFilename ?? info.backingFilename, backingFormat: info.backingFormat };
  }

  identity(): Promise<string> {
    return fileIdentity(this.path);
  }

  readOnlyImage(): FileImageSpec {
    return { diskPath: this.path, format: this.format };
  }
}
