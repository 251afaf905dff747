// The host worker imports the image client alone: loading it must not load the HTTP server
// (Fastify) nor the image service's or the store's code. Checked in a fresh Node process, whose
// require cache lists every module the entry loaded (jest's own module registry would hide them).
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const ROOT = join(__dirname, '..', '..', '..');

async function loadedBy(entry: string): Promise<string[]> {
  const script = `require(${JSON.stringify(join(ROOT, entry))}); process.stdout.write(JSON.stringify(Object.keys(require.cache)));`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '-e', script], { cwd: ROOT, timeout: 60_000 });
  return JSON.parse(stdout) as string[];
}

const serverSide = (modules: string[]): string[] => modules.filter((m) => /[\\/]node_modules[\\/]fastify|[\\/]src[\\/]images[\\/](service|store)[\\/]/.test(m));

describe('what the image client loads', () => {
  it('the client entry loads neither Fastify nor the service or the store', async () => {
    const modules = await loadedBy('src/images/client/index.ts');
    expect(modules.some((m) => m.endsWith(join('images', 'client', 'image-client.ts')))).toBe(true);
    expect(serverSide(modules)).toEqual([]);
  }, 60_000);

  it('the host worker loads the client and nothing of the image service', async () => {
    const modules = await loadedBy('src/workers/host-worker.ts');
    expect(modules.some((m) => m.endsWith(join('images', 'client', 'index.ts')))).toBe(true);
    expect(serverSide(modules)).toEqual([]);
  }, 60_000);
});
