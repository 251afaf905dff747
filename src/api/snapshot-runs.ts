// Reads snapshot workflow runs back from Temporal: visibility listing by the search attributes,
// describe + progress query + the failure from history for one run, and the run's original input
// (what a retry repeats). Nothing here changes state.
import { WorkflowNotFoundError, type Client, type WorkflowExecutionDescription, type WorkflowExecutionInfo, type WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { ComputeHostKey, ImageIdKey, InstanceUuidKey, SnapshotStepKey } from '../temporal/search-attributes';
import { progressQuery, SnapshotInputSchema, WORKFLOW_TYPE, type SnapshotInput, type SnapshotProgress } from '../contract';
import { z } from 'zod';
import { notFound } from './api-errors';
import { memberFailureText, RunEndings } from './member-failure';
import { SnapshotRunResultSchema, type OpsSnapshotsQuery, type SnapshotRun, type SnapshotRunDetail } from './api-schemas';

const FAILED_STATUSES = ['FAILED', 'TERMINATED', 'TIMED_OUT', 'CANCELLED'];
// Visibility query spelling of the same statuses.
const STATE_QUERIES: Record<NonNullable<OpsSnapshotsQuery['state']>, string> = {
  running: `ExecutionStatus = 'Running'`,
  completed: `ExecutionStatus = 'Completed'`,
  failed: `(ExecutionStatus = 'Failed' OR ExecutionStatus = 'Terminated' OR ExecutionStatus = 'TimedOut' OR ExecutionStatus = 'Canceled')`,
};
const QUERY_TIMEOUT_MS = 3_000;

// History types through the client's own signatures (the proto package is not a direct dependency).
type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;
type HistoryEvent = NonNullable<History['events']>[number];
type Failure = NonNullable<HistoryEvent['workflowExecutionFailedEventAttributes']>['failure'];
type RunInfo = Pick<WorkflowExecutionInfo, 'workflowId' | 'runId' | 'status' | 'typedSearchAttributes' | 'startTime' | 'closeTime'>;


export function runState(statusName: string): SnapshotRun['state'] {
  if (statusName === 'RUNNING') return 'running';
  if (statusName === 'COMPLETED') return 'completed';
  return FAILED_STATUSES.includes(statusName) ? 'failed' : 'other';
}

/** The visibility query for the filters. Values were validated (uuid, host name regex) so quoting them is safe. */
export function visibilityQuery(filter: Pick<OpsSnapshotsQuery, 'state' | 'instance' | 'host'>): string {
  const clauses = [`WorkflowType = '${WORKFLOW_TYPE}'`];
  if (filter.state !== undefined) clauses.push(STATE_QUERIES[filter.state]);
  if (filter.instance !== undefined) clauses.push(`${InstanceUuidKey.name} = '${filter.instance}'`);
  if (filter.host !== undefined) clauses.push(`${ComputeHostKey.name} = '${filter.host}'`);
  return clauses.join(' AND ');
}

export interface SnapshotRunsOptions {
  client: Client;
  /** Temporal Web UI base, e.g. http://127.0.0.1:8233 */
  uiBaseUrl: string;
}

export interface RunDetailOptions {
  /**
   * A project member's view: no compute host, no Temporal UI link, and the failure as its type and
   * a fixed sentence (member-failure.ts) instead of its text.
   */
  forMember?: boolean;
}

export class SnapshotRuns {
  constructor(private readonly options: SnapshotRunsOptions) {}

  uiUrl(workflowId: string, runId: string): string {
    const ns = encodeURIComponent(this.options.client.options.namespace);
    return `${this.options.uiBaseUrl.replace(/\/$/, '')}/namespaces/${ns}/workflows/${encodeURIComponent(workflowId)}/${encodeURIComponent(runId)}`;
  }

  async list(filter: OpsSnapshotsQuery): Promise<SnapshotRun[]> {
    const out: SnapshotRun[] = [];
    for await (const info of this.options.client.workflow.list({ query: visibilityQuery(filter), pageSize: Math.min(filter.limit, 1000) })) {
      out.push(this.summary(info));
      if (out.length >= filter.limit) break;
    }
    return out;
  }

  /** The latest run of `workflowId`; 404 when Temporal has never seen it. */
  async describe(workflowId: string): Promise<WorkflowExecutionDescription> {
    try {
      return await this.options.client.workflow.getHandle(workflowId).describe();
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw notFound(`Snapshot ${workflowId} could not be found.`);
      throw err;
    }
  }

  async detail(workflowId: string, options: RunDetailOptions = {}): Promise<SnapshotRunDetail> {
    const description = await this.describe(workflowId);
    const summary = this.summary(description);
    const handle = this.options.client.workflow.getHandle(workflowId, description.runId);
    const history = await handle.fetchHistory();
    const input = inputFromHistory(history);
    const closed = closingEvent(history);
    const progress = summary.state === 'running' ? withStreamProgress(await this.progress(workflowId, description.runId), description) : null;
    const detail: SnapshotRunDetail = {
      ...summary,
      name: input?.name ?? null,
      progress: progress === null ? null : { ...progress, steps: { ...progress.steps } },
      error: closed.error ?? progress?.error ?? null,
      result: closed.result,
    };
    return options.forMember === true ? memberView(detail, closed.failureType) : detail;
  }

  /** What the run was started with, for a retry. */
  async input(workflowId: string, runId: string): Promise<SnapshotInput | undefined> {
    const history = await this.options.client.workflow.getHandle(workflowId, runId).fetchHistory();
    return inputFromHistory(history);
  }

  /** The progress query, or null when no worker answers in time (the run is then shown without it). */
  private async progress(workflowId: string, runId: string): Promise<SnapshotProgress | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), QUERY_TIMEOUT_MS);
    });
    try {
      const query = this.options.client.workflow.getHandle(workflowId, runId).query(progressQuery).catch(() => null);
      return await Promise.race([query, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  summary(info: RunInfo): SnapshotRun {
    const attrs = info.typedSearchAttributes;
    return {
      workflowId: info.workflowId,
      runId: info.runId,
      state: runState(info.status.name),
      status: info.status.name,
      instanceUuid: attrs.get(InstanceUuidKey) ?? null,
      host: attrs.get(ComputeHostKey) ?? null,
      imageId: attrs.get(ImageIdKey) ?? null,
      step: attrs.get(SnapshotStepKey) ?? null,
      startTime: info.startTime.toISOString(),
      closeTime: info.closeTime?.toISOString() ?? null,
      temporalUiUrl: this.uiUrl(info.workflowId, info.runId),
    };
  }
}

// What the one-pass stream heartbeats (src/activities/one-pass-activities.ts): bytes the image service committed.
const StreamHeartbeatSchema = z.object({ acknowledged: z.number().int().nonnegative(), total: z.number().int().nonnegative() });

/** Bytes of a running stream come from its heartbeat, not from signals that would lengthen the history. */
function withStreamProgress(progress: SnapshotProgress | null, description: WorkflowExecutionDescription): SnapshotProgress | null {
  if (progress === null || progress.step !== 'upload') return progress;
  for (const pending of description.raw.pendingActivities ?? []) {
    if (pending.activityType?.name !== 'streamSnapshot') continue;
    const payload = pending.heartbeatDetails?.payloads?.[0];
    if (payload === undefined || payload === null) continue;
    const parsed = StreamHeartbeatSchema.safeParse(defaultPayloadConverter.fromPayload(payload));
    if (parsed.success) return { ...progress, bytesDone: parsed.data.acknowledged, bytesTotal: parsed.data.total };
  }
  return progress;
}

function inputFromHistory(history: History): SnapshotInput | undefined {
  const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  if (payload === undefined || payload === null) return undefined;
  const parsed = SnapshotInputSchema.safeParse(defaultPayloadConverter.fromPayload(payload));
  return parsed.success ? parsed.data : undefined;
}

/** A failure and its causes, outermost first, at most 10 deep. */
function* failureChain(failure: Failure): Generator<NonNullable<Failure>> {
  let current = failure;
  for (let depth = 0; current !== null && current !== undefined && depth < 10; depth++) {
    yield current;
    current = current.cause;
  }
}

/** The innermost failure message with its chain, e.g. "Activity task failed: injected failure in uploadSnapshot". */
export function failureMessage(failure: Failure): string | null {
  const parts = [...failureChain(failure)].flatMap((f) => (f.message ? [f.message] : []));
  return parts.length === 0 ? null : parts.join(': ');
}

interface Closing {
  error: string | null;
  /** the ApplicationFailure type the run failed with, or how it otherwise ended */
  failureType?: string;
  result: SnapshotRunDetail['result'];
}

/** What a member may see of a run: see RunDetailOptions.forMember. */
function memberView(detail: SnapshotRunDetail, failureType: string | undefined): SnapshotRunDetail {
  const view: SnapshotRunDetail = { ...detail, host: null, temporalUiUrl: null, error: detail.error === null ? null : memberFailureText(failureType) };
  if (view.progress !== null) {
    const { host: _host, error, ...progress } = view.progress;
    // A running run's error is the workflow's text before it compensates; its type is not known yet.
    view.progress = error === undefined ? progress : { ...progress, error: memberFailureText(undefined) };
  }
  return view;
}

/** The first ApplicationFailure type in the chain: the activity's (or the workflow's own) verdict. */
function failureTypeOf(failure: Failure): string | undefined {
  for (const f of failureChain(failure)) if (f.applicationFailureInfo?.type) return f.applicationFailureInfo.type;
  return undefined;
}


function closingEvent(history: History): Closing {
  const events = history.events ?? [];
  const last = events[events.length - 1];
  if (last === undefined) return { error: null, result: null };
  const failed = last.workflowExecutionFailedEventAttributes;
  if (failed) return { error: failureMessage(failed.failure), failureType: failureTypeOf(failed.failure), result: null };
  if (last.workflowExecutionTerminatedEventAttributes) {
    return { error: `terminated: ${last.workflowExecutionTerminatedEventAttributes.reason ?? 'no reason given'}`, failureType: RunEndings.Terminated, result: null };
  }
  if (last.workflowExecutionTimedOutEventAttributes) return { error: 'the snapshot workflow timed out', failureType: RunEndings.TimedOut, result: null };
  if (last.workflowExecutionCanceledEventAttributes) return { error: 'the snapshot workflow was cancelled', failureType: RunEndings.Cancelled, result: null };
  const payload = last.workflowExecutionCompletedEventAttributes?.result?.payloads?.[0];
  if (payload === undefined || payload === null) return { error: null, result: null };
  const parsed = SnapshotRunResultSchema.safeParse(defaultPayloadConverter.fromPayload(payload));
  return { error: null, result: parsed.success ? parsed.data : null };
}
