import { CephCommandError, CephNameError } from '../../../src/ceph';
import { ApplicationFailure } from '@temporalio/common';
import { toActivityFailure } from '../../../src/activities/activity-failures';
import { ErrorTypes } from '../../../src/contract';
import { UnsupportedSourceFormat } from '../../../src/host/disk-chain';
import { ToolFailed, ToolOutputInvalid } from '../../../src/process/tool-process';
import { ImageConflict, ImageNotFound, ImageServiceUnavailable, ImageUploadFailed } from '../../../src/images/client';
import { LibvirtConnectionError, LibvirtError, VIR_ERR_NO_DOMAIN, VIR_ERR_OPERATION_FAILED } from '../../../src/libvirt';
import { InstanceNotFound, UnexpectedDeletingTaskState, UnexpectedTaskState } from '../../../src/store';

function libvirtError(code: number): LibvirtError {
  return new LibvirtError({ code, domain: 10, message: 'msg', level: 2, str1: null, str2: null, str3: null, int1: 0, int2: 0 }, 'DomainLookupByName');
}

function failure(err: unknown): { type: string | undefined | null; nonRetryable: boolean | null | undefined } | 'passthrough' {
  const out = toActivityFailure(err);
  if (out === err) return 'passthrough';
  const f = out as ApplicationFailure;
  return { type: f.type, nonRetryable: f.nonRetryable };
}

describe('toActivityFailure', () => {
  it('makes gone instances, gone images, bad input and full disks non-retryable with the type the workflow branches on', () => {
    expect(failure(new InstanceNotFound('u'))).toEqual({ type: ErrorTypes.InstanceNotFound, nonRetryable: true });
    expect(failure(new UnexpectedDeletingTaskState('u', [null]))).toEqual({ type: ErrorTypes.UnexpectedDeletingTaskState, nonRetryable: true });
    expect(failure(new UnexpectedTaskState('u', [null], 'image_uploading'))).toEqual({ type: ErrorTypes.UnexpectedTaskState, nonRetryable: true });
    expect(failure(libvirtError(VIR_ERR_NO_DOMAIN))).toEqual({ type: ErrorTypes.InstanceNotRunning, nonRetryable: true });
    expect(failure(new ImageNotFound('i'))).toEqual({ type: ErrorTypes.ImageNotFound, nonRetryable: true });
    expect(failure(new ToolFailed('qemu-img', 1, 'No space left on device'))).toEqual({ type: 'InsufficientSpace', nonRetryable: true });
  });

  it('leaves transient failures retryable', () => {
    expect(failure(new LibvirtConnectionError('lost'))).toBe('passthrough');
    expect(failure(libvirtError(VIR_ERR_OPERATION_FAILED))).toBe('passthrough');
    expect(failure(new ImageServiceUnavailable('503'))).toBe('passthrough');
    expect(failure(new ToolFailed('qemu-img', 1, 'Could not open'))).toBe('passthrough');
  });

  it('refuses an lvm or rbd source once, as bad input, instead of retrying the same refusal', () => {
    expect(failure(new UnsupportedSourceFormat('rbd'))).toEqual({ type: ErrorTypes.InvalidInput, nonRetryable: true });
    expect(failure(new ToolOutputInvalid('qemu-img info', 'virtual-size: Required'))).toEqual({ type: 'ToolOutputInvalid', nonRetryable: true });
  });

  it('refuses an RBD disk whose name would reach another pool or snapshot as bad input; a missing image is final, a busy or unreachable cluster is retried', () => {
    expect(failure(new CephNameError('invalid image name "x@snap"'))).toEqual({ type: ErrorTypes.InvalidInput, nonRetryable: true });
    expect(failure(new CephCommandError('rbd', 'info vms/x_disk', 2, 'rbd: error opening image x_disk: (2) No such file or directory'))).toEqual({ type: 'CephCommandError', nonRetryable: true });
    expect(failure(new CephCommandError('rbd', 'snap rm vms/x_disk@s', 16, 'snapshot is protected'))).toBe('passthrough');
    expect(failure(new CephCommandError('rbd', 'info vms/x_disk', null, 'timed out after 60000 ms'))).toBe('passthrough');
  });

  it("follows each error's own retryable verdict, and retries an error that has none", () => {
    for (const err of [new ImageUploadFailed('interrupted'), new ImageConflict('saving'), new ImageServiceUnavailable('503'), new LibvirtConnectionError('lost')]) {
      expect(err.retryable).toBe(true);
      expect(failure(err)).toBe('passthrough');
    }
    expect(libvirtError(VIR_ERR_NO_DOMAIN).retryable).toBe(false);
    expect(libvirtError(VIR_ERR_OPERATION_FAILED).retryable).toBe(true);
    expect(new ToolFailed('qemu-img', 1, 'No space left on device').retryable).toBe(false);
    expect(failure(new Error('no verdict'))).toBe('passthrough');
  });
});
