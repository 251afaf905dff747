// The run's progress as the query and the search attribute show it, and how long each step took.
import { upsertSearchAttributes } from '@temporalio/workflow';
import type { SnapshotProgress, SnapshotStep } from '../contract';
import { SnapshotStepKey } from '../temporal/search-attributes';

const PHASES: ReadonlySet<SnapshotStep> = new Set<SnapshotStep>(['prepare_cold', 'restore_guest', 'upload', 'compensating', 'done', 'failed']);

export class Progress {
  readonly state: SnapshotProgress = { step: 'starting', bytesDone: 0, bytesTotal: 0, steps: {} };

  /** phasesOnly: runs recorded before it upserted the attribute at every step, and replay so. */
  constructor(private readonly phasesOnly: boolean) {}

  /** Runs one step: the search attribute and the query show it while it runs, its duration is kept. */
  async step<T>(step: SnapshotStep, run: () => Promise<T>): Promise<T> {
    this.enter(step);
    const started = Date.now();
    try {
      return await run();
    } finally {
      this.state.steps[step] = (this.state.steps[step] ?? 0) + (Date.now() - started);
    }
  }

  enter(step: SnapshotStep): void {
    this.state.step = step;
    // Each upsert is a history event: the search attribute follows the phases an operator filters
    // by, the progress query every step.
    if (!this.phasesOnly || PHASES.has(step)) upsertSearchAttributes([{ key: SnapshotStepKey, value: step }]);
  }
}
