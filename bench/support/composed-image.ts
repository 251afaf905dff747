// An active composed raw image made directly through the image service's own API (no HTTP, no
// guest): a resumable logical upload of a disk that is all data, committed.
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { UNAUTHENTICATED_ADMIN as admin, type ImageService } from '../../src/images/service';
import { allDataRawOpen } from '../../test/support/raw-layout';

/** The image's id; `pieces` yields the disk's `bytes` bytes in order. */
export async function composedImage(service: ImageService, bytes: number, pieces: () => AsyncIterable<Buffer>): Promise<string> {
  const id = (await service.create(admin, { name: 'bench', disk_format: 'raw', container_format: 'bare' })).id;
  await service.resumable.open(admin, id, allDataRawOpen(bytes, randomUUID()));
  await service.resumable.append(admin, id, 0, Readable.from(pieces()));
  await service.resumable.commit(admin, id, {});
  return id;
}
