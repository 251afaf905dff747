import { chmod, chown, lstat, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAuthenticator, describeTokens, ensureServiceToken, loadOrCreateTokens, tokenOptionsFromEnv, TokenFileInvalid } from '../../../src/auth';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'auth-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('token file', () => {
  it('creates an admin, a demo and a service token on first start (mode 0600) and keeps them on the next', async () => {
    const file = join(dir, 'nested', 'tokens.json');
    const first = await loadOrCreateTokens({ file });
    expect(first.created).toBe(true);
    expect(first.config.tokens.map((t) => [t.projectId, t.roles.includes('admin')])).toEqual([
      ['admin', true],
      ['demo', false],
      ['service', false],
    ]);
    const auth = createAuthenticator(first.config);
    expect(first.config.tokens.map((t) => auth.authenticate(t.token)?.kind)).toEqual(['cloud-admin', 'project', 'service']);
    // The service token is the workers': not printed for users.
    const service = first.config.tokens[2]?.token ?? '';
    expect(describeTokens(first.config)).not.toContain(service);
    expect(describeTokens(first.config)).toContain(first.config.tokens[1]?.token ?? '-');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const second = await loadOrCreateTokens({ file });
    expect(second.created).toBe(false);
    expect(second.config).toEqual(first.config);
  });

  it('SNAP_ADMIN_TOKEN fixes the admin token, on creation and over an existing file', async () => {
    const file = join(dir, 'tokens.json');
    const fixed = 'fixed-admin-token-123456';
    const created = await loadOrCreateTokens({ file, adminToken: fixed });
    expect(createAuthenticator(created.config).authenticate(fixed)).toMatchObject({ projectId: 'admin', kind: 'cloud-admin' });

    const plain = join(dir, 'plain.json');
    const original = await loadOrCreateTokens({ file: plain });
    const overridden = await loadOrCreateTokens({ file: plain, adminToken: fixed });
    const auth = createAuthenticator(overridden.config);
    expect(auth.authenticate(fixed)?.kind).toBe('cloud-admin');
    expect(auth.authenticate(original.config.tokens[0]?.token)).toBeNull();
    expect(auth.authenticate(original.config.tokens[1]?.token)).toMatchObject({ projectId: 'demo', kind: 'project', projectAdmin: false });
  });

  it('adds a service token to a table from before there was one, keeping every other entry as stored', async () => {
    const file = join(dir, 'tokens.json');
    const old = { tokens: [{ token: 'old-admin-token-aaaaaaaa', projectId: 'admin', roles: ['admin', 'member'] }, { token: 'old-demo-token-bbbbbbbbb', projectId: 'demo', roles: ['member'] }] };
    await writeFile(file, JSON.stringify(old), { mode: 0o600 });
    const loaded = await loadOrCreateTokens({ file, adminToken: 'fixed-admin-token-123456' });
    expect(loaded.config.tokens).toHaveLength(2);
    const { tokens, serviceToken } = await ensureServiceToken(loaded);
    expect(createAuthenticator(tokens.config).authenticate(serviceToken)).toEqual({ kind: 'service', projectId: 'service' });
    const stored = JSON.parse(await readFile(file, 'utf8')) as typeof old;
    // SNAP_ADMIN_TOKEN is not written into the file; the stored entries stay as they were
    expect(stored.tokens.slice(0, 2)).toEqual(old.tokens);
    expect(stored.tokens[2]).toMatchObject({ token: serviceToken, roles: ['service'] });
    expect((await ensureServiceToken(await loadOrCreateTokens({ file }))).serviceToken).toBe(serviceToken);
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
    expect(auth.authenticate('member-token-bbbbbbbbbbb')).toEqual({ kind: 'project', projectId: 'p1', projectAdmin: false });
    expect(auth.authenticate('admin-token-aaaaaaaaaaaa')?.kind).toBe('cloud-admin');
    for (const bad of [undefined, '', 'member-token-bbbbbbbbbb', 'member-token-bbbbbbbbbbbX', 'x'.repeat(1000)]) expect(auth.authenticate(bad)).toBeNull();
    expect(auth.adminToken()).toBe('admin-token-aaaaaaaaaaaa');
  });

  it("takes an admin role outside the admin project for that project's admin only, and a service token for the service", () => {
    const scoped = createAuthenticator({
      tokens: [
        { token: 'p2-admin-token-cccccccccc', projectId: 'p2', roles: ['admin', 'member'] },
        { token: 'service-token-dddddddddd', projectId: 'service', roles: ['service'] },
      ],
    });
    expect(scoped.authenticate('p2-admin-token-cccccccccc')).toEqual({ kind: 'project', projectId: 'p2', projectAdmin: true });
    expect(scoped.authenticate('service-token-dddddddddd')).toEqual({ kind: 'service', projectId: 'service' });
    expect(() => scoped.adminToken()).toThrow(/no admin token/);
    expect(() => createAuthenticator({ tokens: [{ token: 'mixed-token-eeeeeeeeeee', projectId: 'service', roles: ['service', 'admin'] }] })).toThrow(/'service' token has that role only/);
  });

  it('rejects duplicate tokens in the configuration', () => {
    const token = 'same-token-cccccccccccc';
    expect(() => createAuthenticator({ tokens: [{ token, projectId: 'a', roles: ['member'] }, { token, projectId: 'b', roles: ['member'] }] })).toThrow(/unique/);
  });
});
