// A shared store backend held in memory, for unit tests of what the store asks of one: how many
// chunk requests of each kind, how many at once, and a PUT that fails when a test says so. Each
// chunk request takes `latencyMs`, as an object store's round trip does. The real backend on a
// RADOS Gateway is tested in test/integration/images/s3-store.test.ts.
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RemoteChunk, RemoteChunks, RemoteIndexes, RemoteRecord, RemoteRecords, SharedStoreBackend } from '../../../src/images/store/store-backend';

/** Calls of one kind of chunk request: started, running now, most running at once. */
export class RequestCounts {
  started = 0;
  running = 0;
  mostAtOnce = 0;

  async around<T>(work: () => Promise<T>): Promise<T> {
    this.started++;
    this.running++;
    this.mostAtOnce = Math.max(this.mostAtOnce, this.running);
    try {
      return await work();
    } finally {
      this.running--;
    }
  }

  reset(): void {
    this.started = 0;
    this.mostAtOnce = this.running;
  }
}

export class MemoryChunks implements RemoteChunks {
  readonly objects = new Map<string, { bytes: Buffer; lastModified: Date }>();
  readonly heads = new RequestCounts();
  readonly puts = new RequestCounts();
  readonly gets = new RequestCounts();
  /** the PUT of the chunk (by its place among the PUTs started, from 1) fails when this says so */
  failPut: (nth: number, hex: string) => boolean = () => false;
  /** what a GET of the chunk answers, given what is stored: rot, when a test says so */
  answer: (hex: string, stored: Buffer) => Buffer = (_hex, stored) => stored;
  /** removeIfOlder removes whatever the time, as a store that ignores the condition would */
  ignoresRemoveCondition = false;

  constructor(private readonly latencyMs: number) {}

  stat(hex: string): Promise<RemoteChunk | undefined> {
    return this.heads.around(async () => {
      await sleep(this.latencyMs);
      const o = this.objects.get(hex);
      return o === undefined ? undefined : { hex, size: o.bytes.length, lastModified: o.lastModified };
    });
  }

  get(hex: string): Promise<Buffer | undefined> {
    return this.gets.around(async () => {
      await sleep(this.latencyMs);
      const stored = this.objects.get(hex)?.bytes;
      return stored === undefined ? undefined : this.answer(hex, stored);
    });
  }

  put(hex: string, bytes: Uint8Array): Promise<void> {
    const nth = this.puts.started + 1;
    return this.puts.around(async () => {
      await sleep(this.latencyMs);
      if (this.failPut(nth, hex)) throw new Error(`PUT of chunk ${hex} refused by the test`);
      this.objects.set(hex, { bytes: Buffer.from(bytes), lastModified: new Date() });
    });
  }

  async touch(hex: string): Promise<void> {
    const o = this.objects.get(hex);
    if (o !== undefined) o.lastModified = new Date();
  }

  /** As RGW checks it: whole seconds, a chunk of the cutoff's own second kept; unchecked when a test says so (a store that ignores RGW's header). */
  async removeIfOlder(hex: string, cutoff: Date): Promise<boolean> {
    const o = this.objects.get(hex);
    if (o !== undefined && !this.ignoresRemoveCondition && Math.floor(o.lastModified.getTime() / 1000) >= Math.floor(cutoff.getTime() / 1000)) return false;
    this.objects.delete(hex);
    return true;
  }

  async quarantine(hex: string): Promise<void> {
    this.objects.delete(hex);
  }

  async *list(): AsyncGenerator<RemoteChunk> {
    for (const [hex, o] of [...this.objects]) yield { hex, size: o.bytes.length, lastModified: o.lastModified };
  }
}

class MemoryIndexes implements RemoteIndexes {
  readonly objects = new Map<string, Buffer>();
  /** ranged reads of index objects */
  reads = 0;

  async open(id: string) {
    const bytes = this.objects.get(id);
    if (bytes === undefined) return undefined;
    return {
      size: bytes.length,
      read: async (position: number, length: number) => {
        this.reads++;
        return Buffer.from(bytes.subarray(position, position + length));
      },
    };
  }

  async install(id: string, localPath: string): Promise<void> {
    this.objects.set(id, await readFile(localPath));
  }

  async remove(id: string): Promise<void> {
    this.objects.delete(id);
  }

  async ids(): Promise<string[]> {
    return [...this.objects.keys()];
  }

  async quarantine(id: string): Promise<void> {
    this.objects.delete(id);
  }
}

class MemoryRecords implements RemoteRecords {
  private readonly objects = new Map<string, RemoteRecord>();
  private version = 0;

  async get(id: string): Promise<RemoteRecord | undefined> {
    return this.objects.get(id);
  }

  async put(id: string, bytes: Buffer): Promise<void> {
    this.objects.set(id, { bytes, etag: String(++this.version) });
  }

  async replace(id: string, bytes: Buffer, etag: string): Promise<boolean> {
    if (this.objects.get(id)?.etag !== etag) return false;
    await this.put(id, bytes);
    return true;
  }

  async remove(id: string): Promise<void> {
    this.objects.delete(id);
  }

  async list(): Promise<{ id: string; etag: string }[]> {
    return [...this.objects].map(([id, r]) => ({ id, etag: r.etag }));
  }
}

export interface MemoryStoreBackend extends SharedStoreBackend {
  readonly chunks: MemoryChunks;
  readonly indexes: MemoryIndexes;
}

export function memoryStoreBackend(options: { putsInFlight: number; latencyMs: number; graceMs?: number }): MemoryStoreBackend {
  return {
    name: 'memory://',
    chunks: new MemoryChunks(options.latencyMs),
    indexes: new MemoryIndexes(),
    records: new MemoryRecords(),
    graceMs: options.graceMs ?? 24 * 3600_000,
    putsInFlight: options.putsInFlight,
    close: () => undefined,
  };
}
