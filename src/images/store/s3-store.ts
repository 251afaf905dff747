// The shared store backend on an S3 bucket (store-backend.ts): chunks as `chunks/<2 hex>/<64 hex>`,
// indexes as `indexes/<id>.idx`, image records as `records/<id>.json`, what is found damaged under `quarantine/`. An object is written
// whole by one PUT, so a chunk or an index under its name is always whole, as the local backend's
// rename makes it. A chunk read is at most a chunk's size and an index range at most what the
// caller asks for (sizes from the index's header, checked against the image size cap first).
import { LOGICAL_DIGEST_BLOCK } from '../../qcow2';
import { ImageIdSchema } from '../client/image-record';
import { S3Objects, type S3Location } from './s3-objects';
import { DEFAULT_CHUNK_PUTS_IN_FLIGHT, type RemoteChunk, type RemoteChunks, type RemoteIndexes, type RemoteIndexReader, type RemoteRecord, type RemoteRecords, type SharedStoreBackend } from './store-backend';

const HEX_RE = /^[0-9a-f]{64}$/;
const chunkKey = (hex: string): string => {
  if (!HEX_RE.test(hex)) throw new Error(`not a chunk name: ${hex}`);
  return `chunks/${hex.slice(0, 2)}/${hex}`;
};
const indexKey = (id: string): string => `indexes/${ImageIdSchema.parse(id)}.idx`;
const recordKey = (id: string): string => `records/${ImageIdSchema.parse(id)}.json`;
/** A record is a few KiB; anything far larger is not one and is never read whole. */
const MAX_RECORD_BYTES = 1024 * 1024;

class S3Chunks implements RemoteChunks {
  constructor(private readonly objects: S3Objects) {}

  async stat(hex: string): Promise<RemoteChunk | undefined> {
    const found = await this.objects.head(chunkKey(hex));
    return found === undefined ? undefined : { hex, size: found.size, lastModified: found.lastModified };
  }

  get(hex: string): Promise<Buffer | undefined> {
    return this.objects.get(chunkKey(hex), LOGICAL_DIGEST_BLOCK);
  }

  put(hex: string, bytes: Uint8Array): Promise<void> {
    return this.objects.put(chunkKey(hex), Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  }

  touch(hex: string): Promise<void> {
    return this.objects.copy(chunkKey(hex), chunkKey(hex));
  }

  removeIfOlder(hex: string, cutoff: Date): Promise<boolean> {
    // RGW compares whole seconds, at or before: the last second wholly before the cutoff.
    const lastOld = new Date(Math.floor(cutoff.getTime() / 1000) * 1000 - 1000);
    return this.objects.removeUnmodifiedSince(chunkKey(hex), lastOld);
  }

  async quarantine(hex: string): Promise<void> {
    // Copy then delete: S3 has no rename. A copy of a chunk another reader removed first fails: it is quarantined already.
    if ((await this.objects.head(chunkKey(hex))) === undefined) return;
    await this.objects.copy(chunkKey(hex), `quarantine/chunks/${hex}.${Date.now()}`);
    await this.objects.remove(chunkKey(hex));
  }

  async *list(): AsyncGenerator<RemoteChunk> {
    for await (const o of this.objects.list('chunks/')) {
      const hex = o.key.slice(o.key.lastIndexOf('/') + 1);
      if (HEX_RE.test(hex) && o.key === chunkKey(hex)) yield { hex, size: o.size, lastModified: o.lastModified };
    }
  }
}

class S3Indexes implements RemoteIndexes {
  constructor(private readonly objects: S3Objects) {}

  async open(id: string): Promise<RemoteIndexReader | undefined> {
    const key = indexKey(id);
    const found = await this.objects.head(key);
    if (found === undefined) return undefined;
    const objects = this.objects;
    return {
      size: found.size,
      async read(position, length) {
        if (length === 0) return Buffer.alloc(0);
        return (await objects.get(key, length, { start: position, length })) ?? Buffer.alloc(0);
      },
    };
  }

  install(id: string, localPath: string): Promise<void> {
    return this.objects.putFile(indexKey(id), localPath);
  }

  remove(id: string): Promise<void> {
    return this.objects.remove(indexKey(id));
  }

  async ids(): Promise<string[]> {
    const out: string[] = [];
    for await (const o of this.objects.list('indexes/')) {
      const id = /^indexes\/([^/]+)\.idx$/.exec(o.key)?.[1] ?? '';
      if (ImageIdSchema.safeParse(id).success) out.push(id);
    }
    return out;
  }

  async quarantine(id: string): Promise<void> {
    if ((await this.objects.head(indexKey(id))) === undefined) return;
    await this.objects.copy(indexKey(id), `quarantine/indexes/${id}.${Date.now()}.idx`);
    await this.objects.remove(indexKey(id));
  }
}

class S3Records implements RemoteRecords {
  constructor(private readonly objects: S3Objects) {}

  get(id: string): Promise<RemoteRecord | undefined> {
    return this.objects.getTagged(recordKey(id), MAX_RECORD_BYTES);
  }

  put(id: string, bytes: Buffer): Promise<void> {
    return this.objects.put(recordKey(id), bytes);
  }

  replace(id: string, bytes: Buffer, etag: string): Promise<boolean> {
    return this.objects.putIfMatch(recordKey(id), bytes, etag);
  }

  remove(id: string): Promise<void> {
    return this.objects.remove(recordKey(id));
  }

  async list(): Promise<{ id: string; etag: string }[]> {
    const out: { id: string; etag: string }[] = [];
    for await (const o of this.objects.list('records/')) {
      const id = /^records\/([^/]+)\.json$/.exec(o.key)?.[1] ?? '';
      if (ImageIdSchema.safeParse(id).success) out.push({ id, etag: o.etag ?? '' });
    }
    return out;
  }
}

export function s3StoreBackend(location: S3Location, graceMs: number, putsInFlight = DEFAULT_CHUNK_PUTS_IN_FLIGHT): SharedStoreBackend {
  const objects = new S3Objects(location);
  return {
    name: `s3://${location.bucket}/${location.prefix}`,
    chunks: new S3Chunks(objects),
    indexes: new S3Indexes(objects),
    records: new S3Records(objects),
    graceMs,
    putsInFlight,
    close: () => objects.close(),
  };
}
