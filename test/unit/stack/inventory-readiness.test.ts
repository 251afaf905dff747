// npm start's wait for the demo instance in the compute API: done at the first 200, with the
// token it was given; at its deadline it says what the API last answered.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { waitForInstanceListed } from '../../../src/stack/inventory-readiness';

let server: Server;
let url: string;
let answers: number[];
const seen: { path: string | undefined; token: string | string[] | undefined }[] = [];

beforeEach(async () => {
  seen.length = 0;
  server = createServer((req, res) => {
    seen.push({ path: req.url, token: req.headers['x-auth-token'] });
    res.statusCode = answers.shift() ?? 404;
    res.end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterEach(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

it('is done at the first 200 for the instance, asked with the token', async () => {
  answers = [404, 404, 200];
  const said: string[] = [];
  await expect(waitForInstanceListed(url, 'tok', 'f3a1c2d4-5b6e-4f70-8192-a3b4c5d6e7f8', { timeoutMs: 10_000, say: (l) => said.push(l), stillStarting: () => true })).resolves.toBe(true);
  expect(seen).toHaveLength(3);
  expect(seen[2]).toEqual({ path: '/v2.1/servers/f3a1c2d4-5b6e-4f70-8192-a3b4c5d6e7f8', token: 'tok' });
  expect(said).toEqual([]);
});

it("gives up at its deadline and says the API's last answer", async () => {
  answers = [];
  const said: string[] = [];
  await expect(waitForInstanceListed(url, 'tok', 'x', { timeoutMs: 1_200, say: (l) => said.push(l), stillStarting: () => true })).resolves.toBe(false);
  expect(said).toEqual([expect.stringMatching(/not in the inventory after \d+ s \(the compute API: HTTP 404\)/) as string]);
});

it('stops asking once the stack is stopping', async () => {
  answers = [];
  await expect(waitForInstanceListed(url, 'tok', 'x', { timeoutMs: 60_000, say: () => undefined, stillStarting: () => false })).resolves.toBe(false);
  expect(seen).toHaveLength(0);
});
