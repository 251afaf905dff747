// Where a workflow's wall time went, from its Temporal history alone (event times are the
// server's clock, so client-side noise does not enter): activity execution (Started→Completed),
// activity queueing (Scheduled→Started: waiting for a worker slot) and the rest, which is the
// orchestration itself (workflow tasks, history writes, dispatch).
import type { Client, WorkflowHandle } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time';

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;
type HistoryEvent = NonNullable<History['events']>[number];

export interface RunTiming {
  workflowMs: number;
  activities: number;
  /** sum of ActivityTaskStarted → ActivityTaskCompleted/Failed */
  activityExecMs: number;
  /** sum of ActivityTaskScheduled → ActivityTaskStarted */
  activityQueueMs: number;
  /** workflow time minus the sum of activity execution times */
  overheadMs: number;
  /** workflow time minus the sum of Scheduled → Completed (no activity outstanding) */
  orchestrationMs: number;
}

function eventMs(event: HistoryEvent | undefined): number {
  return event?.eventTime ? tsToMs(event.eventTime) : NaN;
}

function eventId(event: HistoryEvent): string {
  return String(event.eventId ?? '');
}

export function timingFromHistory(history: History): RunTiming {
  const events = history.events ?? [];
  const byId = new Map(events.map((e) => [eventId(e), e]));
  const started = events.find((e) => e.workflowExecutionStartedEventAttributes);
  const closed = events.find((e) => e.workflowExecutionCompletedEventAttributes || e.workflowExecutionFailedEventAttributes);
  let activities = 0;
  let activityExecMs = 0;
  let activityQueueMs = 0;
  for (const event of events) {
    const done = event.activityTaskCompletedEventAttributes ?? event.activityTaskFailedEventAttributes;
    if (!done) continue;
    const scheduled = byId.get(String(done.scheduledEventId ?? ''));
    const startedEvent = byId.get(String(done.startedEventId ?? ''));
    activities++;
    activityExecMs += eventMs(event) - eventMs(startedEvent);
    activityQueueMs += eventMs(startedEvent) - eventMs(scheduled);
  }
  const workflowMs = eventMs(closed) - eventMs(started);
  return {
    workflowMs,
    activities,
    activityExecMs,
    activityQueueMs,
    overheadMs: workflowMs - activityExecMs,
    orchestrationMs: workflowMs - activityExecMs - activityQueueMs,
  };
}

export async function fetchRunTiming(client: Client, workflowId: string): Promise<RunTiming> {
  return timingFromHistory(await client.workflow.getHandle(workflowId).fetchHistory());
}

/** The event kind, from whichever `…EventAttributes` field is set (no proto enum import needed). */
function eventKind(event: HistoryEvent): string {
  const key = Object.keys(event).find((k) => k.endsWith('EventAttributes') && (event as Record<string, unknown>)[k] != null);
  return key ? key.replace(/EventAttributes$/, '') : 'unknown';
}

export interface HistoryGap {
  from: string;
  to: string;
  ms: number;
}

/** The `n` longest pauses between consecutive history events: where a slow run waited. */
export async function largestGaps(client: Client, workflowId: string, n: number): Promise<HistoryGap[]> {
  const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const gaps: HistoryGap[] = [];
  for (let i = 1; i < events.length; i++) {
    const prev = events[i - 1];
    const cur = events[i];
    if (prev && cur) gaps.push({ from: eventKind(prev), to: eventKind(cur), ms: eventMs(cur) - eventMs(prev) });
  }
  return gaps.sort((a, b) => b.ms - a.ms).slice(0, n);
}
