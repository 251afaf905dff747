import { ExitCode, exitCodeForStatus } from '../../../src/cli/cli-errors';
import { cliConfigFromEnv } from '../../../src/cli/cli-config';
import { parseMetadata } from '../../../src/cli/compute-commands';
import { formatBytes, renderProgress } from '../../../src/cli/progress-bar';

describe('snapctl pieces', () => {
  it('maps HTTP statuses to exit codes by class', () => {
    expect([400, 401, 403, 404, 406, 409, 413, 415, 500, 503].map(exitCodeForStatus)).toEqual([2, 3, 3, 4, 2, 5, 2, 2, 6, 6]);
  });

  it('parses --metadata k=v, keeping "=" inside values, refusing pairs without a key', () => {
    expect(parseMetadata(['a=b', 'url=http://x/?q=1', 'empty='])).toEqual({ a: 'b', url: 'http://x/?q=1', empty: '' });
    expect(() => parseMetadata(['novalue'])).toThrow(expect.objectContaining({ exitCode: ExitCode.usage }));
    expect(() => parseMetadata(['=v'])).toThrow(expect.objectContaining({ exitCode: ExitCode.usage }));
  });

  it('renders step, bar and bytes', () => {
    expect(renderProgress({ step: 'upload', bytesDone: 512, bytesTotal: 1024, mode: 'live' }, 10)).toBe('[#####-----] upload (live) 512 B/1.0 KiB 50%');
    expect(renderProgress({ step: 'extract', bytesDone: 0, bytesTotal: 0 }, 4)).toBe('[----] extract');
    expect(formatBytes(3 * 1024 ** 3)).toBe('3.0 GiB');
  });

  it('needs a token (auth exit code) and valid URLs (usage exit code)', () => {
    expect(() => cliConfigFromEnv({})).toThrow(expect.objectContaining({ exitCode: ExitCode.auth }));
    expect(() => cliConfigFromEnv({ SNAP_TOKEN: 't', SNAP_API_URL: 'not a url' })).toThrow(expect.objectContaining({ exitCode: ExitCode.usage }));
    expect(cliConfigFromEnv({ SNAP_TOKEN: 't', SNAP_API_URL: 'http://h:1/' })).toEqual({ token: 't', apiUrl: 'http://h:1', imageUrl: 'http://127.0.0.1:9292' });
  });
});
