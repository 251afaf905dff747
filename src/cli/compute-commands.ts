// snapctl snapshot / servers / show: the compute API side.
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { ServerDetailSchema, SnapshotRunDetailSchema, type ServerDetail, type SnapshotRunDetail } from '../api/api-schemas';
import { parseAnswer, type ComputeApiClient } from './api-client';
import { CliError, ExitCode, usageError } from './cli-errors';
import { emit, keyValues, line, table, type Output } from './output';
import { ProgressPrinter } from './progress-bar';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ServersSchema = z.object({ servers: z.array(ServerDetailSchema) });
const ServerSchema = z.object({ server: ServerDetailSchema });
const ImageIdBodySchema = z.object({ image_id: z.string() });
const ProgressBodySchema = z.object({ snapshot: SnapshotRunDetailSchema });

async function servers(api: ComputeApiClient): Promise<ServerDetail[]> {
  return parseAnswer(ServersSchema, await api.get('/v2.1/servers/detail')).servers;
}

/** A server by uuid, or by name when the name is unique in the token's project (as the nova CLI does). */
export async function resolveServer(api: ComputeApiClient, ref: string): Promise<string> {
  if (UUID.test(ref)) return ref;
  const matches = (await servers(api)).filter((s) => s.name === ref);
  if (matches.length === 0) throw new CliError(ExitCode.notFound, `no server named ${ref}`);
  if (matches.length > 1) throw new CliError(ExitCode.conflict, `${matches.length} servers are named ${ref}; use the id`);
  return matches[0]?.id ?? ref;
}

export function parseMetadata(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw usageError(`--metadata expects key=value, got ${JSON.stringify(pair)}`);
    out[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return out;
}

export async function listServersCommand(api: ComputeApiClient, out: Output): Promise<void> {
  const list = await servers(api);
  emit(out, { servers: list }, () =>
    table(
      ['ID', 'NAME', 'STATUS', 'TASK_STATE', 'POWER', 'HOST'],
      list.map((s) => [s.id, s.name, s.status, s['OS-EXT-STS:task_state'], s['OS-EXT-STS:power_state'], s['OS-EXT-SRV-ATTR:host']]),
    ),
  );
}

export async function showServerCommand(api: ComputeApiClient, out: Output, ref: string): Promise<void> {
  const id = await resolveServer(api, ref);
  const { server } = parseAnswer(ServerSchema, await api.get(`/v2.1/servers/${encodeURIComponent(id)}`));
  emit(out, { server }, () => keyValues(Object.entries(server).filter(([k]) => k !== 'links')));
}

export interface SnapshotOptions {
  name: string;
  metadata: Record<string, string>;
  wait: boolean;
  pollMs?: number;
  progress: NodeJS.WriteStream;
}

export async function snapshotCommand(api: ComputeApiClient, out: Output, ref: string, options: SnapshotOptions): Promise<void> {
  const id = await resolveServer(api, ref);
  const answer = await api.request('POST', `/v2.1/servers/${encodeURIComponent(id)}/action`, { createImage: { name: options.name, metadata: options.metadata } }, { 'OpenStack-API-Version': 'compute 2.45' });
  const imageId = parseAnswer(ImageIdBodySchema, answer.json).image_id;
  if (!options.wait) {
    emit(out, { image_id: imageId, server_id: id }, () => line(`Snapshot of ${id} accepted: image ${imageId}`));
    return;
  }
  const final = await waitForSnapshot(api, id, imageId, options);
  if (final.state !== 'completed') {
    throw new CliError(ExitCode.snapshotFailed, `snapshot ${imageId} of ${id} failed: ${final.error ?? final.status}`);
  }
  emit(out, { image_id: imageId, server_id: id, snapshot: final }, () => line(`Snapshot of ${id} is active: image ${imageId}${final.result ? ` (${final.result.size} bytes, ${final.result.mode}${chainText(final.result)})` : ''}`));
}

/** ", incremental over <parent>" or ", full: <why>" for results that say. */
function chainText(result: NonNullable<SnapshotRunDetail['result']>): string {
  if (result.kind === 'incremental') return `, incremental over ${result.parentImageId ?? '?'}: ${result.changedBytes ?? 0} bytes changed`;
  if (result.kind === 'full') return `, full${result.fullReason !== undefined ? `: ${result.fullReason}` : ''}`;
  return '';
}

/** Polls the owner-visible progress endpoint until the run that made `imageId` closes. */
async function waitForSnapshot(api: ComputeApiClient, serverId: string, imageId: string, options: SnapshotOptions): Promise<SnapshotRunDetail> {
  const printer = new ProgressPrinter(options.progress);
  try {
    for (;;) {
      const run = await currentRun(api, serverId);
      // The run is ours once it reports our image; before that visibility may still show the previous run.
      const ours = run !== undefined && (run.imageId === imageId || run.progress?.imageId === imageId || run.result?.imageId === imageId);
      if (ours && run !== undefined) {
        if (run.progress !== null) printer.update({ step: run.progress.step, bytesDone: run.progress.bytesDone, bytesTotal: run.progress.bytesTotal, mode: run.progress.mode });
        if (run.state !== 'running') {
          printer.update({ step: run.state === 'completed' ? 'done' : 'failed', bytesDone: run.result?.size ?? 0, bytesTotal: run.result?.size ?? 0 });
          return run;
        }
      }
      await sleep(options.pollMs ?? 500);
    }
  } finally {
    printer.finish();
  }
}

async function currentRun(api: ComputeApiClient, serverId: string): Promise<SnapshotRunDetail | undefined> {
  try {
    return parseAnswer(ProgressBodySchema, await api.get(`/v2.1/servers/${encodeURIComponent(serverId)}/snapshot-progress`)).snapshot;
  } catch (err) {
    // Right after the 202 the run may not be visible yet.
    if (err instanceof CliError && err.exitCode === ExitCode.notFound) return undefined;
    throw err;
  }
}
