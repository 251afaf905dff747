// Where a composing store keeps what it writes: its chunks (by digest) and its indexes (by image).
// The default is the local filesystem under the data dir (chunk-store.ts, image-index.ts hold that
// backend's files, unchanged). A shared backend puts both in an object store (s3-store.ts) that
// several image services use at once; a store on one then changes how chunks go away:
//
// - no process's in-memory counts decide a removal, since another service's index may name a chunk
//   this one has never seen: a delete removes the image's index only;
// - chunks go by a mark and sweep over every index in the backend (ComposedImages.collect, in the
//   background), which removes a chunk only when no index names it, no compose of this process pins
//   it, and it is older than the grace period, as listed and again at its delete (a HEAD, then a
//   DELETE the object store refuses if the chunk was written since): a compose of another service
//   that wrote or reused it recently (a reused chunk older than half the grace is touched, PBS's
//   atime rule) may be about to install the index that names it.
//
// A commit's chunk PUTs go several at a time (putsInFlight): each is a round trip to the object
// store, and one after another they, not the bytes, bound a commit (docs/benchmarks.md, bench:s3).

/** Chunk PUTs one commit keeps in flight when the backend's settings name none. */
export const DEFAULT_CHUNK_PUTS_IN_FLIGHT = 8;
/** More buys nothing on one gateway and holds more chunks in memory (256 KiB each) per commit. */
export const MAX_CHUNK_PUTS_IN_FLIGHT = 64;

/** What a chunk object's listing or head tells. */
export interface RemoteChunk {
  hex: string;
  size: number;
  /** written or last touched (by the object store's clock) */
  lastModified: Date;
}

export interface RemoteChunks {
  stat(hex: string): Promise<RemoteChunk | undefined>;
  /** the chunk's bytes, refused above a chunk's size; undefined when it is not stored */
  get(hex: string): Promise<Buffer | undefined>;
  /** stored whole and durably once this resolves */
  put(hex: string, bytes: Uint8Array): Promise<void>;
  /** renews its time: a compose reuses it */
  touch(hex: string): Promise<void>;
  /**
   * Removes it only if it was written or last touched before `cutoff`, which the object store
   * checks in the same operation as the delete, to the whole second (a chunk of the cutoff's own
   * second is kept); false when it was written or touched since, and kept. One already gone: true.
   */
  removeIfOlder(hex: string, cutoff: Date): Promise<boolean>;
  /** out of the store's names, kept for an operator */
  quarantine(hex: string): Promise<void>;
  list(): AsyncIterable<RemoteChunk>;
}

/** An index object open for reading: its length, and ranges of it. */
export interface RemoteIndexReader {
  size: number;
  read(position: number, length: number): Promise<Buffer>;
}

export interface RemoteIndexes {
  open(id: string): Promise<RemoteIndexReader | undefined>;
  /** a whole local index file becomes the image's index object */
  install(id: string, localPath: string): Promise<void>;
  remove(id: string): Promise<void>;
  ids(): Promise<string[]>;
  quarantine(id: string): Promise<void>;
}

/** An image record's JSON as the backend holds it, with the version tag a conditional write names. */
export interface RemoteRecord {
  bytes: Buffer;
  etag: string;
}

/** Image records shared through the backend (the service's shared-records.ts gives them meaning). */
export interface RemoteRecords {
  get(id: string): Promise<RemoteRecord | undefined>;
  put(id: string, bytes: Buffer): Promise<void>;
  /** writes only over the version `etag` names; false when another service changed or removed it since */
  replace(id: string, bytes: Buffer, etag: string): Promise<boolean>;
  remove(id: string): Promise<void>;
  /** every stored record's id and version tag */
  list(): Promise<{ id: string; etag: string }[]>;
}

export interface SharedStoreBackend {
  /** names the backend in logs and errors (`s3://bucket/prefix`) */
  readonly name: string;
  readonly chunks: RemoteChunks;
  readonly indexes: RemoteIndexes;
  readonly records: RemoteRecords;
  /** a chunk younger than this is never swept */
  readonly graceMs: number;
  /** chunk PUTs one commit (or one received chunk) keeps in flight at most */
  readonly putsInFlight: number;
  close(): void;
}

