// snapctl against a hostile server (a real HTTP server answering names, metadata and faults full of
// ANSI escapes and line breaks): nothing it prints carries a control character but its own line
// ends, in text and in --json, on stdout and stderr.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ExitCode } from '../../../src/cli/cli-errors';
import { failureReport, run } from '../../../src/cli/snapctl';
import { renderProgress } from '../../../src/cli/progress-bar';
import { printable, printableJson } from '../../../src/cli/terminal-text';
import { toGlanceView, type ImageRecord } from '../../../src/images/client';

// Retitles the terminal, clears the screen, then forges a line; C1 CSI (U+009B) and DEL too.
const HOSTILE = '\u001b]0;owned\u0007\u001b[2J\u001b[31mred\r\nFAKE ROW\u009b31m\u007f\u0000end';
const CONTROL = /\p{Cc}/u;

it('escapes every control character as \\xNN and leaves printable text alone', () => {
  expect(printable(HOSTILE)).toBe('\\x1b]0;owned\\x07\\x1b[2J\\x1b[31mred\\x0d\\x0aFAKE ROW\\x9b31m\\x7f\\x00end');
  expect(printable('é 日本 \u00a0 \u{1F600} ~')).toBe('é 日本 \u00a0 \u{1F600} ~');
});

it('draws the progress line with the server\'s step and mode escaped', () => {
  const drawn = renderProgress({ step: HOSTILE, bytesDone: 1, bytesTotal: 2, mode: '\u001b[2J' }, 4);
  expect(drawn).toBe(`[##--] ${printable(HOSTILE)} (\\x1b[2J) 1 B/2 B 50%`);
  expect(CONTROL.test(drawn)).toBe(false);
});

it('prints --json that parses back to the same value, with no control character but its line breaks', () => {
  const value = { name: HOSTILE, nested: [{ k: '\u0085\u009f' }] };
  const json = printableJson(value);
  expect(JSON.parse(json)).toEqual(value);
  expect(CONTROL.test(json.replace(/\n/g, ''))).toBe(false);
});

function server(name: string, id: string) {
  return {
    id, name, links: [], status: 'ACTIVE', tenant_id: 'p1', user_id: 'u1', hostId: '', image: '', flavor: { id: 'f', links: [] },
    created: '2030-01-01T00:00:00Z', updated: '2030-01-01T00:00:00Z', metadata: {}, addresses: {}, accessIPv4: '', accessIPv6: '',
    'os-extended-volumes:volumes_attached': [], 'OS-EXT-STS:task_state': null, 'OS-EXT-STS:vm_state': 'active', 'OS-EXT-STS:power_state': 1,
  };
}
const SERVER_ID = '3b6f8c1e-6f53-4c43-9b5e-2a5f0d3f6d11';
const image: ImageRecord = {
  id: SERVER_ID, name: HOSTILE, status: 'active', container_format: 'bare', disk_format: 'qcow2', visibility: 'private', owner: 'p1',
  size: 5, checksum: 'md5', os_hash_algo: 'sha512', os_hash_value: 'sha', min_disk: 0, min_ram: 0, protected: false,
  tags: [], properties: { [`k${HOSTILE}`]: HOSTILE, instance_uuid: HOSTILE }, created_at: '2030-01-01T00:00:00Z', updated_at: '2030-01-01T00:00:00Z',
};

/** A compute and image API in one: hostile names and metadata, a hostile fault for snapshots. */
let hostile: Server;
let url: string;
beforeAll(async () => {
  hostile = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const answer = (status: number, body: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (path === '/v2.1/servers/detail') return answer(200, { servers: [server(HOSTILE, SERVER_ID)] });
    if (path === `/v2.1/servers/${SERVER_ID}`) return answer(200, { server: server(HOSTILE, SERVER_ID) });
    if (path === '/v2/images') return answer(200, { images: [toGlanceView(image)] });
    if (path === `/v2/images/${SERVER_ID}`) return answer(200, toGlanceView(image));
    return answer(409, { conflictingRequest: { code: 409, message: HOSTILE } });
  });
  await new Promise<void>((resolve) => hostile.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(hostile.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => hostile.close(resolve));
});

async function snapctl(args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  let stdout = '';
  let stderr = '';
  let code = 0;
  const sink = (append: (text: string) => void) => ({ isTTY: false, write: (text: string) => (append(text), true) }) as unknown as NodeJS.WriteStream;
  const env = { SNAP_TOKEN: 'token-0123456789abcdef', SNAP_API_URL: url, SNAP_IMAGE_URL: url };
  try {
    await run(args, env, sink((t) => (stdout += t)), sink((t) => (stderr += t)));
  } catch (err) {
    const report = failureReport(err);
    stderr += report.text;
    code = report.code;
  }
  return { stdout, stderr, code };
}

const COMMANDS = [['servers'], ['show', SERVER_ID], ['images'], ['image', SERVER_ID], ['servers', '--json'], ['images', '--json'], ['image', SERVER_ID, '--json']];
it.each(COMMANDS.map((args) => [args.join(' '), args] as const))(
  'snapctl %s prints the server\'s text escaped: no escape sequence, no forged line',
  async (_shown, args) => {
    const { stdout, stderr } = await snapctl([...args]);
    expect(stderr).toBe('');
    expect(stdout).toContain('owned');
    expect(CONTROL.test(stdout.replace(/\n/g, ''))).toBe(false);
    expect(stdout.split('\n').some((l) => l.startsWith('FAKE ROW'))).toBe(false);
  },
);

it('escapes a fault message from the server on stderr, keeping the exit code of its class', async () => {
  const { stdout, stderr, code } = await snapctl(['snapshot', SERVER_ID, '--name', 's']);
  expect(code).toBe(ExitCode.conflict);
  expect(stdout).toBe('');
  expect(stderr).toBe(`snapctl: ${printable(HOSTILE)} (HTTP 409)\n`);
  expect(CONTROL.test(failureReport(new Error(`boom ${HOSTILE}`)).text.replace(/\n/g, ''))).toBe(false);
});
