// snapctl images / image / download / store-verify: the image API side (same token).
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
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

/**
 * snapctl store-verify: the image store's verify job (cloud admins). `start` starts one now; `wait`
 * follows it until it ends. Resolves with whether the job shown found the store whole (or none ran).
 */
export async function storeVerifyCommand(images: GlanceHttpClient, out: Output, options: { start: boolean; wait: boolean; pollMs?: number }): Promise<boolean> {
  if (options.start) await images.startStoreVerify();
  let status = await images.storeVerifyStatus();
  while (options.wait && status.job?.state === 'running') {
    await sleep(options.pollMs ?? 1000);
    status = await images.storeVerifyStatus();
  }
  const job = status.job;
  emit(out, status, () => {
    const schedule = status.interval_hours === null ? 'on request only' : `every ${status.interval_hours} h, next ${status.next_run_at ?? '-'}`;
    const head = keyValues([['schedule', schedule], ['re-verify after', `${status.reverify_after_days} days`]]);
    if (job === null) return `${head}no verify job has run yet\n`;
    const facts: [string, unknown][] = [
      ['job', job.id], ['state', job.state], ['trigger', job.trigger], ['started', job.started_at], ['finished', job.finished_at],
      ['images', `${job.images_done}/${job.images_total}`], ['chunks verified', job.chunks_verified], ['chunks skipped (verified recently)', job.chunks_skipped],
      ['bytes read', job.bytes_read], ['damaged images', job.damaged_images.join(' ') || '-'], ['error', job.error],
    ];
    const chunks = job.damaged_chunks.length === 0 ? '' : table(['DAMAGED CHUNK', 'REASON'], job.damaged_chunks.map((d) => [d.chunk, d.reason]));
    return head + keyValues(facts) + chunks;
  });
  return job === null || job.state === 'ok' || job.state === 'running';
}
