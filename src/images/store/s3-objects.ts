// The one S3 bucket (under an optional key prefix) a shared store keeps its chunks and indexes in,
// through AWS's own client (`@aws-sdk/client-s3`), path-style for Ceph's RADOS Gateway. What comes
// back is never sized by the response alone: every read names the most it may be (from the index,
// or a chunk's fixed size) and is refused above it before a buffer is allocated, whatever
// Content-Length says, and cut if the body runs longer than it announced.
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { errorMessage } from '../../contract';

export interface S3Location {
  endpoint: string;
  region: string;
  bucket: string;
  /** keys start with it ('' or ending in '/'): several stores may share a bucket */
  prefix: string;
  /** `http://host/bucket/key`, as RGW without wildcard DNS needs */
  pathStyle: boolean;
  credentials: { accessKeyId: string; secretAccessKey: string };
}

/** The object store failed or answered what the store cannot use: no local meaning, retry later. */
export class ObjectStoreError extends Error {
  override readonly name = 'ObjectStoreError';
}

export interface StoredObject {
  key: string;
  size: number;
  lastModified: Date;
  /** the object's version tag, what a conditional write names */
  etag?: string;
}

/** A whole small object read with its version tag. */
export interface TaggedObject {
  bytes: Buffer;
  etag: string;
}

const preconditionFailed = (err: unknown): boolean => err instanceof S3ServiceException && (err.$metadata.httpStatusCode === 412 || err.name === 'PreconditionFailed');

const notFound = (err: unknown): boolean => err instanceof S3ServiceException && (err.$metadata.httpStatusCode === 404 || err.name === 'NotFound' || err.name === 'NoSuchKey');

export class S3Objects {
  private readonly client: S3Client;
  readonly bucket: string;
  private readonly prefix: string;

  constructor(location: S3Location) {
    this.client = new S3Client({
      endpoint: location.endpoint,
      region: location.region,
      forcePathStyle: location.pathStyle,
      credentials: location.credentials,
      maxAttempts: 3,
      // The SDK's default CRC trailer sends a streamed body aws-chunked, which RGW refuses
      // (MissingContentLength); a chunk's integrity is its name anyway, checked on every read.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    this.bucket = location.bucket;
    this.prefix = location.prefix;
  }

  /** Size and time of an object, undefined when there is none. */
  async head(key: string): Promise<StoredObject | undefined> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
      return { key, size: out.ContentLength ?? 0, lastModified: out.LastModified ?? new Date(0), etag: out.ETag };
    } catch (err) {
      if (notFound(err)) return undefined;
      throw this.failure('HEAD', key, err);
    }
  }

  /**
   * The object's bytes [start, start + length) or whole (no range), at most `maxBytes`: refused
   * above it before anything is allocated; undefined when there is no such object.
   */
  async get(key: string, maxBytes: number, range?: { start: number; length: number }): Promise<Buffer | undefined> {
    let body: Readable;
    let declared: number;
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + key, Range: range === undefined ? undefined : `bytes=${range.start}-${range.start + range.length - 1}` }));
      body = out.Body as Readable;
      declared = out.ContentLength ?? -1;
    } catch (err) {
      if (notFound(err)) return undefined;
      throw this.failure('GET', key, err);
    }
    if (declared < 0 || declared > maxBytes) {
      body.destroy();
      throw new ObjectStoreError(`object ${key} is ${declared} bytes, more than the ${maxBytes} it may be`);
    }
    const out = Buffer.alloc(declared);
    let done = 0;
    try {
      for await (const part of body) {
        const buf = part as Buffer;
        if (done + buf.length > declared) throw new ObjectStoreError(`object ${key} sent more than the ${declared} bytes it announced`);
        buf.copy(out, done);
        done += buf.length;
      }
    } finally {
      body.destroy();
    }
    return done === declared ? out : out.subarray(0, done);
  }

  /** A whole object of at most `maxBytes` and its ETag (of the same response); undefined when there is none. */
  async getTagged(key: string, maxBytes: number): Promise<TaggedObject | undefined> {
    let out;
    try {
      out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
    } catch (err) {
      if (notFound(err)) return undefined;
      throw this.failure('GET', key, err);
    }
    const body = out.Body as Readable;
    const declared = out.ContentLength ?? -1;
    if (declared < 0 || declared > maxBytes) {
      body.destroy();
      throw new ObjectStoreError(`object ${key} is ${declared} bytes, more than the ${maxBytes} it may be`);
    }
    const parts: Buffer[] = [];
    let done = 0;
    try {
      for await (const part of body) {
        done += (part as Buffer).length;
        if (done > declared) throw new ObjectStoreError(`object ${key} sent more than the ${declared} bytes it announced`);
        parts.push(part as Buffer);
      }
    } finally {
      body.destroy();
    }
    return { bytes: Buffer.concat(parts), etag: out.ETag ?? '' };
  }

  /**
   * Writes an object whole only if it is still the version `etag` names (S3's If-Match on PUT):
   * false when another writer changed or removed it since.
   */
  async putIfMatch(key: string, body: Buffer, etag: string): Promise<boolean> {
    try {
      // RGW (16) compares If-Match on a PUT with the bare tag: the quoted form S3 returns never matches.
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.prefix + key, Body: body, ContentLength: body.length, IfMatch: etag.replace(/^"(.*)"$/, '$1') }));
      return true;
    } catch (err) {
      if (preconditionFailed(err) || notFound(err)) return false;
      throw this.failure('PUT', key, err);
    }
  }

  /** Writes an object whole (S3 makes it visible whole or not at all). */
  async put(key: string, body: Buffer): Promise<void> {
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.prefix + key, Body: body, ContentLength: body.length }));
    } catch (err) {
      throw this.failure('PUT', key, err);
    }
  }

  /** Writes an object from a whole local file, streamed. */
  async putFile(key: string, path: string): Promise<void> {
    const { size } = await stat(path);
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.prefix + key, Body: createReadStream(path), ContentLength: size }));
    } catch (err) {
      throw this.failure('PUT', key, err);
    }
  }

  /** Copies an object to another key; to itself, it renews its Last-Modified (S3's only "touch"). */
  async copy(from: string, to: string): Promise<void> {
    try {
      await this.client.send(
        new CopyObjectCommand({ Bucket: this.bucket, CopySource: `${this.bucket}/${encodeURIComponent(this.prefix + from)}`, Key: this.prefix + to, MetadataDirective: 'REPLACE', Metadata: { touched: String(Date.now()) } }),
      );
    } catch (err) {
      throw this.failure('COPY', from, err);
    }
  }

  async remove(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
    } catch (err) {
      if (!notFound(err)) throw this.failure('DELETE', key, err);
    }
  }

  /**
   * Deletes an object only if it was last written at or before `since`, in whole seconds, as the
   * object store checks it in the same operation as the delete (RGW's
   * `x-amz-delete-if-unmodified-since`, which its lifecycle expiry uses for the same race); false
   * when it was written since, and kept. An object already gone answers true (RGW answers 204).
   * S3's own conditions do not serve here: If-Match compares the ETag, the MD5 of the bytes, which
   * a touch or a re-PUT of the same bytes leaves as it was; x-amz-if-match-last-modified-time is
   * directory buckets' on AWS and Tentacle's (20) on RGW, not Pacific's (16).
   */
  async removeUnmodifiedSince(key: string, since: Date): Promise<boolean> {
    const command = new DeleteObjectCommand({ Bucket: this.bucket, Key: this.prefix + key });
    // RGW parses the date as `YYYY-MM-DDTHH:MM:SS` (UTC) or `<sec>.<usec>`, never as an HTTP date.
    const header = since.toISOString().slice(0, 19);
    command.middlewareStack.add(
      (next) => (args) => {
        const request = args.request as { headers?: Record<string, string> };
        // Never sent without it: an unconditional delete could take a chunk a writer just renewed.
        if (request.headers === undefined) throw new ObjectStoreError(`S3 DELETE of ${key}: no request headers to set its condition on`);
        request.headers['x-amz-delete-if-unmodified-since'] = header;
        return next(args);
      },
      // Before signing (finalizeRequest): the header is signed with the rest.
      { step: 'build', name: 'deleteIfUnmodifiedSince' },
    );
    try {
      await this.client.send(command);
      return true;
    } catch (err) {
      if (preconditionFailed(err)) return false;
      throw this.failure('DELETE', key, err);
    }
  }

  /** Every object under `under` (keys without the store's prefix), a page of 1,000 at a time. */
  async *list(under: string): AsyncGenerator<StoredObject> {
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix + under, ContinuationToken: token }));
      } catch (err) {
        throw this.failure('LIST', under, err);
      }
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined) continue;
        yield { key: o.Key.slice(this.prefix.length), size: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0), etag: o.ETag };
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  close(): void {
    this.client.destroy();
  }

  private failure(op: string, key: string, err: unknown): ObjectStoreError {
    return new ObjectStoreError(`S3 ${op} of ${key} in bucket ${this.bucket} failed: ${errorMessage(err)}`, { cause: err });
  }
}
