// Translates the typed errors of the services into what Temporal retries or not. Non-retryable:
// the instance or image is gone, the input is bad, the disk is full. Everything else (a lost
// libvirt connection, a busy image service, a tool killed with its worker) is retried with backoff.
import { ApplicationFailure } from '@temporalio/activity';
import { ErrorTypes } from './activity-types';
import { DomainXmlError } from '../host/domain-xml';
import { HostPathError } from '../host/qemu-img';
import { ToolFailed } from '../host/tool-process';
import { ImageNotFound, ImageGone, ImageTooLarge, ImageRequestRejected } from '../images';
import { LibvirtError, LibvirtUsageError, VIR_ERR_NO_DOMAIN } from '../libvirt';
import { InstanceNotFound, UnexpectedDeletingTaskState, UnexpectedTaskState } from '../store';

export function toActivityFailure(err: unknown): unknown {
  if (err instanceof ApplicationFailure) return err;
  const message = err instanceof Error ? err.message : String(err);
  const fatal = (type: string) => ApplicationFailure.create({ message, type, nonRetryable: true, cause: err instanceof Error ? err : undefined });
  if (err instanceof InstanceNotFound) return fatal(ErrorTypes.InstanceNotFound);
  if (err instanceof UnexpectedDeletingTaskState) return fatal(ErrorTypes.UnexpectedDeletingTaskState);
  if (err instanceof UnexpectedTaskState) return fatal(ErrorTypes.UnexpectedTaskState);
  if (err instanceof LibvirtError && err.code === VIR_ERR_NO_DOMAIN) return fatal(ErrorTypes.InstanceNotRunning);
  if (err instanceof ImageNotFound || err instanceof ImageGone) return fatal(ErrorTypes.ImageNotFound);
  if (err instanceof ImageTooLarge || err instanceof ImageRequestRejected) return fatal('ImageRejected');
  if (err instanceof ToolFailed && err.noSpace) return fatal('InsufficientSpace');
  if (err instanceof HostPathError || err instanceof DomainXmlError || err instanceof LibvirtUsageError) return fatal(ErrorTypes.InvalidInput);
  return err;
}

/** Wraps every activity of a factory so that its errors are translated in one place. */
export function translateFailures<T extends object>(activities: T): T {
  const wrapped: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(activities)) {
    if (typeof fn !== 'function') continue;
    wrapped[name] = async (...args: unknown[]) => {
      try {
        return await (fn as (...a: unknown[]) => Promise<unknown>)(...args);
      } catch (err) {
        throw toActivityFailure(err);
      }
    };
  }
  return wrapped as T;
}
