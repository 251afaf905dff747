// An active composed raw image made as the host's named upload makes one (protocol 2), through the
// image service's own API (no HTTP, no guest): every chunk named and sent, a few PUTs at a time as
// src/host/named-upload.ts sends them, the names staged, committed.
import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { UNAUTHENTICATED_ADMIN as admin, type ImageService } from '../../src/images/service';
import { NAMED_CHUNK_BYTES, stagedLength, type LogicalLayout } from '../../src/images/client';

/** The host's chunk PUTs in flight (src/host/named-upload.ts). */
const HOST_PUTS_IN_FLIGHT = 4;

/** The image's id; `disk` is all data, its length a whole number of chunks. */
export async function namedImage(service: ImageService, disk: Buffer): Promise<string> {
  const layout: LogicalLayout = { format: 'raw', map: { virtualSize: disk.length, extents: [[0, disk.length, 'd']] }, staged: 'chunk-names' };
  const id = (await service.create(admin, { name: 'bench-named', disk_format: 'raw', container_format: 'bare' })).id;
  await service.resumable.open(admin, id, { size: stagedLength(layout), token: randomUUID(), layout });
  const chunks: { name: string; bytes: Buffer }[] = [];
  for (let at = 0; at < disk.length; at += NAMED_CHUNK_BYTES) {
    const bytes = disk.subarray(at, at + NAMED_CHUNK_BYTES);
    chunks.push({ name: createHash('sha256').update(bytes).digest('hex'), bytes });
  }
  let next = 0;
  const sender = async (): Promise<void> => {
    for (let c = chunks[next++]; c !== undefined; c = chunks[next++]) await service.namedChunks.receive(id, c.name, Readable.from([c.bytes]));
  };
  await Promise.all(Array.from({ length: HOST_PUTS_IN_FLIGHT }, sender));
  await service.resumable.append(admin, id, 0, Readable.from([Buffer.from(chunks.map((c) => c.name).join(''), 'hex')]));
  await service.resumable.commit(admin, id, {});
  return id;
}
