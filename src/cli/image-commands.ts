// snapctl images / image / download: the image API side (same token).
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GlanceHttpClient, ImageError, ImageNotFound, ImageServiceUnavailable, type Image } from '../images/client';
import { CliError, ExitCode, exitCodeForStatus } from './cli-errors';
import { emit, keyValues, line, table, type Output } from './output';

/** Image client failures as CliErrors with the exit code of their class. */
export function imageCliError(err: unknown, imageUrl: string): unknown {
  if (err instanceof CliError) return err;
  if (err instanceof ImageServiceUnavailable && err.cause !== undefined && !(err.cause instanceof ImageError)) {
    return new CliError(ExitCode.network, `cannot reach the image API at ${imageUrl}: ${err.message}`);
  }
  if (err instanceof ImageNotFound) return new CliError(ExitCode.notFound, err.message);
  if (err instanceof ImageError) return new CliError(exitCodeForStatus(err.status), `${err.message} (HTTP ${err.status})`);
  return err;
}

export async function listImagesCommand(images: GlanceHttpClient, out: Output): Promise<void> {
  const list = await images.list();
  emit(out, { images: list }, () => table(['ID', 'NAME', 'STATUS', 'SIZE', 'OWNER', 'INSTANCE', 'KIND'], list.map((i) => [i.id, i.name, i.status, i.size, i.owner, i.properties.instance_uuid, i.properties.snapshot_kind])));
}

export async function showImageCommand(images: GlanceHttpClient, out: Output, id: string): Promise<void> {
  const image: Image = await images.get(id);
  emit(out, { image }, () => keyValues(Object.entries(image)));
}

/** Streams the image data to `file` (via a temp file, renamed at the end) and checks the MD5 against the record. */
export async function downloadImageCommand(images: GlanceHttpClient, out: Output, id: string, file: string): Promise<void> {
  const image = await images.get(id);
  if (image.status !== 'active') throw new CliError(ExitCode.conflict, `image ${id} is ${image.status}, not active: it has no complete data`);
  const md5 = createHash('md5');
  let bytes = 0;
  const hasher = new Transform({
    transform(chunk: Buffer, _enc, callback) {
      md5.update(chunk);
      bytes += chunk.length;
      callback(null, chunk);
    },
  });
  const tmp = `${file}.part`;
  try {
    await pipeline(await images.download(id), hasher, createWriteStream(tmp, { flags: 'w' }));
    const checksum = md5.digest('hex');
    if (image.checksum !== null && checksum !== image.checksum) {
      throw new CliError(ExitCode.server, `downloaded data of ${id} does not match its checksum (${checksum} != ${image.checksum})`);
    }
    await rename(tmp, file);
    emit(out, { image_id: id, file, bytes, checksum }, () => line(`Downloaded ${bytes} bytes of image ${id} to ${file} (md5 ${checksum})`));
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
