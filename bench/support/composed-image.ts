// An active composed raw image made directly through the image service's own API (no HTTP, no
// guest): a resumable logical upload of a disk that is all data, committed.
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { UNAUTHENTICATED_ADMIN as admin, type ImageService } from '../../src/images/service';

/** The image's id; `pieces` yields the disk's `bytes` bytes in order. */
export async function composedImage(service: ImageService, bytes: number, pieces: () => AsyncIterable<Buffer>): Promise<string> {
  const id = (await service.create(admin, { name: 'bench', disk_format: 'raw', container_format: 'bare' })).id;
  const layout = { format: 'raw' as const, map: { virtualSize: bytes, extents: [[0, bytes, 'd']] as [number, number, 'd'][] } };
  await service.resumable.open(admin, id, { size: bytes, token: randomUUID(), layout });
  await service.resumable.append(admin, id, 0, Readable.from(pieces()));
  await service.resumable.commit(admin, id, {});
  return id;
}
