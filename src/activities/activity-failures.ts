// Translates the typed errors of the services into what Temporal retries or not. Each error class
// says itself whether a repeat can succeed (its `retryable` field); this is the one place that
// reads it. Non-retryable: the instance or image is gone, the input is bad, the disk is full, the
// source cannot be extracted. Everything else (a lost libvirt connection, a busy image service, a
// tool killed with its worker, an error with no verdict) is retried with backoff.
import { ApplicationFailure } from '@temporalio/activity';
import { CephNameError } from '../ceph';
import { ErrorTypes } from '../contract';
import { DomainXmlError } from '../host/domain-xml';
import { HostPathError } from '../fs/safe-path';
import { UnsupportedSourceFormat } from '../host/disk-chain';
import { ToolFailed } from '../process/tool-process';
import { ImageNotFound, ImageGone, ImageTooLarge, ImageRequestRejected } from '../images/client';
import { isLibvirtError, LibvirtUsageError, VIR_ERR_NO_DOMAIN } from '../libvirt';
import { InstanceNotFound, UnexpectedDeletingTaskState, UnexpectedTaskState } from '../store';

/** The error's own verdict that repeating the call cannot succeed. */
function isFinal(err: unknown): err is Error {
  return err instanceof Error && (err as { retryable?: unknown }).retryable === false;
}

/** The ApplicationFailure type the workflow branches on; the class name where it does not branch. */
function failureType(err: Error): string {
  if (err instanceof InstanceNotFound) return ErrorTypes.InstanceNotFound;
  if (err instanceof UnexpectedDeletingTaskState) return ErrorTypes.UnexpectedDeletingTaskState;
  if (err instanceof UnexpectedTaskState) return ErrorTypes.UnexpectedTaskState;
  if (isLibvirtError(err, VIR_ERR_NO_DOMAIN)) return ErrorTypes.InstanceNotRunning;
  if (err instanceof ImageNotFound || err instanceof ImageGone) return ErrorTypes.ImageNotFound;
  if (err instanceof ImageTooLarge || err instanceof ImageRequestRejected) return 'ImageRejected';
  if (err instanceof ToolFailed && err.noSpace) return 'InsufficientSpace';
  if (err instanceof HostPathError || err instanceof DomainXmlError || err instanceof LibvirtUsageError || err instanceof UnsupportedSourceFormat || err instanceof CephNameError) {
    return ErrorTypes.InvalidInput;
  }
  return err.name;
}

export function toActivityFailure(err: unknown): unknown {
  if (err instanceof ApplicationFailure || !isFinal(err)) return err;
  return ApplicationFailure.create({ message: err.message, type: failureType(err), nonRetryable: true, cause: err });
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
