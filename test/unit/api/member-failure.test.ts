// The member-safe text of a failure: a type and a fixed sentence, never text from the failure.
import { ErrorTypes } from '../../../src/contract';
import { memberFailureText } from '../../../src/api/member-failure';

it('names the known failure types with a fixed sentence each', () => {
  expect(memberFailureText(ErrorTypes.InstanceNotFound)).toBe('InstanceNotFound: The instance was deleted, or its domain disappeared from the host, during the snapshot.');
  expect(memberFailureText('InsufficientSpace')).toBe('InsufficientSpace: The compute host had no space left for the snapshot.');
  expect(memberFailureText('Terminated')).toBe('Terminated: The snapshot was stopped by an administrator.');
  // Nova's own words, which name nothing of the host
  expect(memberFailureText(ErrorTypes.VolumeBackedBackup)).toBe('VolumeBackedBackup: Backup is not supported for volume-backed instances.');
  const texts = ['InstanceNotFound', 'UnexpectedTaskState', 'ImageNotFound', 'InvalidSnapshotInput', 'ImageRejected', 'TimedOut', 'Cancelled'].map(memberFailureText);
  for (const text of texts) expect(text).toMatch(/^[A-Za-z]+: [A-Z][^:/]*\.$/);
});

it('reads the same generic line for any other type, none, or a type that is a prototype key', () => {
  const generic = 'SnapshotFailed: The snapshot failed; an administrator can see why.';
  for (const type of [undefined, null, '', 'ToolFailed', 'InjectedFailure', '/var/lib/nova/instances/x: stderr', 'toString', '__proto__', 'constructor']) {
    expect(memberFailureText(type)).toBe(generic);
  }
});
