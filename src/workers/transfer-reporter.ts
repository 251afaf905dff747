import type { Client } from '@temporalio/client';
import type { TransferReporter } from '../activities/host-activities';
import { transferProgressSignal } from '../contract';

/**
 * Upload progress for the workflow's progress query, as a signal at most once per interval per run
 * (each signal is a history event; byte-level precision is not worth a long history).
 */
export function signallingTransferReporter(client: Client, intervalMs = 2_000): TransferReporter {
  const last = new Map<string, number>();
  return {
    report(workflowId, runId, bytesDone, bytesTotal) {
      const now = Date.now();
      const key = `${workflowId}/${runId}`;
      if (bytesDone < bytesTotal && now - (last.get(key) ?? 0) < intervalMs) return;
      last.set(key, now);
      if (bytesDone >= bytesTotal) last.delete(key);
      void client.workflow
        .getHandle(workflowId, runId)
        .signal(transferProgressSignal, { bytesDone, bytesTotal })
        .catch(() => undefined);
    },
  };
}
