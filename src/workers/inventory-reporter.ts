import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import { scanDomains } from '../host/domain-inventory';
import type { LibvirtSession } from '../host/libvirt-session';
import { CONTROL_TASK_QUEUE, inventoryWorkflowId, REPORT_INVENTORY_WORKFLOW } from '../contract';

export interface InventoryReporterOptions {
  client: Client;
  session: LibvirtSession;
  host: string;
  /** the project of domains that name no owner; undefined: no project's (admin-only) */
  defaultProject?: string;
  intervalMs: number;
  log: Logger;
}

/** Reports the host's domains now and then periodically; a failed round is logged and retried next time. */
export function startInventoryReporter(options: InventoryReporterOptions): { reportNow(): Promise<number>; stop(): void } {
  const reportNow = async (): Promise<number> => {
    const { domains, skipped } = await scanDomains(await options.session.client(), options.host, options.defaultProject);
    for (const domain of skipped) options.log.warn({ host: options.host, domain }, 'inventory: a domain left out of the report');
    return options.client.workflow.execute(REPORT_INVENTORY_WORKFLOW, {
      taskQueue: CONTROL_TASK_QUEUE,
      workflowId: inventoryWorkflowId(options.host),
      args: [options.host, domains],
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowExecutionTimeout: '5 minutes',
    });
  };
  const round = () =>
    reportNow().then(
      (n) => options.log.debug({ host: options.host, instances: n }, 'inventory reported'),
      (err: unknown) => options.log.warn({ host: options.host, err }, 'inventory report failed; retrying next round'),
    );
  void round();
  const timer = setInterval(() => void round(), options.intervalMs);
  timer.unref();
  return { reportNow, stop: () => clearInterval(timer) };
}
