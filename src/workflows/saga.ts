import { CancellationScope, log } from '@temporalio/workflow';
import { errorMessage } from '../contract';

/**
 * Compensations registered as the snapshot advances and run newest first when it fails. They run in
 * a non-cancellable scope so that a cancelled workflow still cleans up, and one failing does not
 * stop the others (each activity behind them already retries until its own policy gives up).
 */
export class Saga {
  private readonly steps: { name: string; run: () => Promise<unknown> }[] = [];

  add(name: string, run: () => Promise<unknown>): void {
    this.steps.push({ name, run });
  }

  async compensate(): Promise<string[]> {
    const failures: string[] = [];
    await CancellationScope.nonCancellable(async () => {
      for (const step of [...this.steps].reverse()) {
        try {
          await step.run();
        } catch (err) {
          failures.push(`${step.name}: ${errorMessage(err)}`);
          log.error('compensation failed', { compensation: step.name, error: String(err) });
        }
      }
    });
    return failures;
  }
}
