import { chmod, chown, lstat, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAuthenticator, loadOrCreateTokens, tokenOptionsFromEnv, TokenFileInvalid } from '../../../src/auth';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'auth-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('token file', () => {
  it('creates an admin and a demo token on first start (mode 0600) and keeps them on the next', async () => {
    const file = join(dir, 'nested', 'tokens.json');
    const first = await loadOrCreateTokens({ file });
    expect(first.created).toBe(true);
    expect(first.config.tokens.map((t) => [t.projectId, t.roles.includes('admin')])).toEqual([
      ['admin', true],
      ['demo', false],
    ]);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const second = await loadOrCreateTokens({ file });
    expect(second.created).toBe(false);
    expect(second.config).toEqual(first.config);
  });

  it('SNAP_ADMIN_TOKEN fixes the admin token, on creation and over an existing file', async () => {
    const file = join(dir, 'tokens.json');
    const fixed = 'fixed-admin-token-123456';
    const created = await loadOrCreateTokens({ file, adminToken: fixed });
    expect(createAuthenticator(created.config).authenticate(fixed)).toMatchObject({ projectId: 'admin', isAdmin: true });

    const plain = join(dir, 'plain.json');
    const original = await loadOrCreateTokens({ file: plain });
    const overridden = await loadOrCreateTokens({ file: plain, adminToken: fixed });
    const auth = createAuthenticator(overridden.config);
    expect(auth.authenticate(fixed)?.isAdmin).toBe(true);
    expect(auth.authenticate(original.config.tokens[0]?.token)).toBeNull();
    expect(auth.authenticate(original.config.tokens[1]?.token)).toMatchObject({ projectId: 'demo', isAdmin: false });
  });

  it('refuses a corrupt or invalid file with a clear error instead of replacing it', async () => {
    const file = join(dir, 'tokens.json');
    await writeFile(file, '{"tokens": [', { mode: 0o600 });
    await expect(loadOrCreateTokens({ file })).rejects.toBeInstanceOf(TokenFileInvalid);
    await writeFile(file, JSON.stringify({ tokens: [{ token: 'short', projectId: 'p', roles: ['member'] }] }), { mode: 0o600 });
    await expect(loadOrCreateTokens({ file })).rejects.toThrow(/at least 16 characters/);
    expect(await readFile(file, 'utf8')).toContain('short');
  });

  it('refuses at start a token file that group or others can read or write, naming the mode', async () => {
    const file = join(dir, 'tokens.json');
    const created = await loadOrCreateTokens({ file });
    for (const mode of [0o640, 0o604, 0o620, 0o602, 0o644]) {
      await chmod(file, mode);
      await expect(loadOrCreateTokens({ file })).rejects.toThrow(new RegExp(`has mode 0${mode.toString(8)}.*chmod 600`));
    }
    await chmod(file, 0o600);
    expect((await loadOrCreateTokens({ file })).config).toEqual(created.config);
    expect(await readdir(dir)).toEqual(['tokens.json']);
  });

  (process.getuid?.() === 0 ? it : it.skip)('refuses a token file owned by another user (run as root to chown)', async () => {
    const file = join(dir, 'tokens.json');
    await loadOrCreateTokens({ file });
    await chown(file, 4242, 4242);
    await expect(loadOrCreateTokens({ file })).rejects.toThrow(/owned by uid 4242, not by this process's uid 0/);
  });

  it('writes through an exclusive temp file: a symlink planted at a temp name does not redirect the tokens', async () => {
    const victim = join(dir, 'victim');
    await writeFile(victim, 'unrelated\n', { mode: 0o644 });
    const file = join(dir, 'tokens.json');
    // The names an attacker can guess: the old fixed pid-based temp name, and the file itself.
    await symlink(victim, `${file}.${process.pid}.tmp`);
    const created = await loadOrCreateTokens({ file });
    expect(await readFile(victim, 'utf8')).toBe('unrelated\n');
    expect((await stat(victim)).mode & 0o777).toBe(0o644);
    const written = await lstat(file);
    expect(written.isFile()).toBe(true);
    expect(written.mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual(created.config);
    expect((await readdir(dir)).sort()).toEqual(['tokens.json', 'tokens.json.' + process.pid + '.tmp', 'victim'].sort());
  });

  it('reads its location from the environment', () => {
    expect(tokenOptionsFromEnv({ SNAP_DATA_DIR: 'x' })).toEqual({ file: join('x', 'tokens.json'), adminToken: undefined });
    expect(tokenOptionsFromEnv({ SNAP_TOKENS_FILE: '/t.json', SNAP_ADMIN_TOKEN: 'a'.repeat(20) })).toEqual({ file: '/t.json', adminToken: 'a'.repeat(20) });
    expect(() => tokenOptionsFromEnv({ SNAP_ADMIN_TOKEN: 'short' })).toThrow();
  });
});

describe('authenticator', () => {
  const auth = createAuthenticator({
    tokens: [
      { token: 'admin-token-aaaaaaaaaaaa', projectId: 'admin', roles: ['admin'] },
      { token: 'member-token-bbbbbbbbbbb', projectId: 'p1', roles: ['member'] },
    ],
  });

  it('maps tokens to project and roles, and anything else to null', () => {
    expect(auth.authenticate('member-token-bbbbbbbbbbb')).toEqual({ projectId: 'p1', roles: ['member'], isAdmin: false });
    expect(auth.authenticate('admin-token-aaaaaaaaaaaa')?.isAdmin).toBe(true);
    for (const bad of [undefined, '', 'member-token-bbbbbbbbbb', 'member-token-bbbbbbbbbbbX', 'x'.repeat(1000)]) expect(auth.authenticate(bad)).toBeNull();
    expect(auth.adminToken()).toBe('admin-token-aaaaaaaaaaaa');
  });

  it('rejects duplicate tokens in the configuration', () => {
    const token = 'same-token-cccccccccccc';
    expect(() => createAuthenticator({ tokens: [{ token, projectId: 'a', roles: ['member'] }, { token, projectId: 'b', roles: ['member'] }] })).toThrow(/unique/);
  });
});
