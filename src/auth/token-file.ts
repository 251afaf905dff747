// The embedded token table: created on first start with an admin, a demo-project and a service
// token (the workers', never a user's), kept under the data dir (mode 0600) so restarts keep the
// same tokens. `npm start` adds a service token to a table from before there was one.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { writeFileAtomic } from '../fs/atomic-file';
import {
  AuthEnvSchema,
  DEFAULT_ADMIN_PROJECT,
  DEFAULT_DEMO_PROJECT,
  DEFAULT_SERVICE_PROJECT,
  TokenConfigSchema,
  type TokenConfig,
  type TokenEntry,
} from './auth-config';
import { parseOrThrow } from '../config/validation';
import { tokenEntryIdentity } from './authenticator';
import { errnoCode } from '../contract';

export class TokenFileInvalid extends Error {
  override readonly name = 'TokenFileInvalid';
}

export interface LoadTokensOptions {
  /** Path of the token table file. */
  file: string;
  /** When set, the admin entry carries this token (SNAP_ADMIN_TOKEN). */
  adminToken?: string;
}

export interface LoadedTokens {
  config: TokenConfig;
  file: string;
  /** True when this call generated the file (the caller prints the tokens then). */
  created: boolean;
}

function serviceEntry(): TokenEntry {
  return { token: generateToken(), projectId: DEFAULT_SERVICE_PROJECT, roles: ['service'], name: 'service' };
}

/** The workers' token (SNAP_IMAGE_TOKEN under `npm start`): the image service's snapshot service, refused by the compute API. */
export function serviceTokenOf(config: TokenConfig): string | undefined {
  return config.tokens.find((t) => t.roles.includes('service'))?.token;
}

export function generateToken(): string {
  // Hex: no leading '-' or '_' that a shell or an argv parser could take for an option.
  return randomBytes(24).toString('hex');
}

export function defaultTokenConfig(adminToken?: string): TokenConfig {
  return {
    tokens: [
      { token: adminToken ?? generateToken(), projectId: DEFAULT_ADMIN_PROJECT, roles: ['admin', 'member'], name: 'admin' },
      { token: generateToken(), projectId: DEFAULT_DEMO_PROJECT, roles: ['member'], name: 'demo' },
      serviceEntry(),
    ],
  };
}

/** The stored table, or undefined when the file does not exist. */
async function readStoredTokens(file: string): Promise<TokenConfig | undefined> {
  const text = await readPrivateFile(file);
  if (text === undefined) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new TokenFileInvalid(`token file ${file} is not JSON: ${(err as Error).message}`);
  }
  return parseOrThrow(TokenConfigSchema, json, (issues) => new TokenFileInvalid(`token file ${file} is invalid: ${issues}`));
}

/** Reads the token file, creating it with default tokens when it does not exist yet. */
export async function loadOrCreateTokens(options: LoadTokensOptions): Promise<LoadedTokens> {
  const file = resolve(options.file);
  const stored = await readStoredTokens(file);
  if (stored === undefined) {
    const config = defaultTokenConfig(options.adminToken);
    await writeTokenFile(file, config);
    return { config, file, created: true };
  }
  return { config: withAdminToken(stored, options.adminToken), file, created: false };
}

/**
 * The workers' service token, added to a token file from before there was one (workers used to
 * be handed the admin token). `npm start` calls this before it starts the services that read the file.
 */
export async function ensureServiceToken(loaded: LoadedTokens): Promise<{ tokens: LoadedTokens; serviceToken: string }> {
  const existing = serviceTokenOf(loaded.config);
  if (existing !== undefined) return { tokens: loaded, serviceToken: existing };
  const entry = serviceEntry();
  const stored = (await readStoredTokens(loaded.file)) ?? { tokens: [] };
  await writeTokenFile(loaded.file, { tokens: [...stored.tokens, entry] });
  return { tokens: { ...loaded, config: { tokens: [...loaded.config.tokens, entry] } }, serviceToken: entry.token };
}

/** SNAP_ADMIN_TOKEN wins over the stored admin token without rewriting the file. */
function withAdminToken(config: TokenConfig, adminToken: string | undefined): TokenConfig {
  if (adminToken === undefined) return config;
  const others = config.tokens.filter((t) => t.token !== adminToken);
  const index = others.findIndex((t) => tokenEntryIdentity(t).kind === 'cloud-admin');
  const admin: TokenEntry = { token: adminToken, projectId: DEFAULT_ADMIN_PROJECT, roles: ['admin', 'member'], name: 'admin' };
  if (index < 0) return { tokens: [admin, ...others] };
  const tokens = [...others];
  tokens[index] = { ...admin, name: others[index]?.name ?? 'admin' };
  return { tokens };
}

/**
 * The file's text, undefined when it does not exist. It holds every project's credentials: one
 * that others could read, or that another user owns and could have written, is refused rather
 * than trusted. Mode and owner are read from the opened descriptor, so what is checked is what is
 * read, even when the path is swapped in between.
 */
async function readPrivateFile(file: string): Promise<string | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(file, constants.O_RDONLY);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw new TokenFileInvalid(`token file ${file} is not a regular file`);
    if ((stats.mode & 0o077) !== 0) {
      throw new TokenFileInvalid(`token file ${file} has mode ${(stats.mode & 0o777).toString(8).padStart(4, '0')}: group and others must have no access (chmod 600)`);
    }
    const uid = process.getuid?.();
    if (uid !== undefined && stats.uid !== uid) throw new TokenFileInvalid(`token file ${file} is owned by uid ${stats.uid}, not by this process's uid ${uid}`);
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

async function writeTokenFile(file: string, config: TokenConfig): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  // An exclusive, fresh temp file (O_CREAT|O_EXCL, 0600) renamed over: a symlink or file planted
  // at a predictable name cannot redirect the tokens, and a crash leaves no half file.
  await writeFileAtomic(file, `${JSON.stringify(config, null, 2)}\n`);
}

/** Token file location and admin override from the environment (SNAP_DATA_DIR, SNAP_TOKENS_FILE, SNAP_ADMIN_TOKEN). */
export function tokenOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): LoadTokensOptions {
  const e = AuthEnvSchema.parse(env);
  return { file: e.SNAP_TOKENS_FILE ?? join(e.SNAP_DATA_DIR, 'tokens.json'), adminToken: e.SNAP_ADMIN_TOKEN };
}

/** One line per user token, for the operator on first start; the service token is the workers' and stays in the file. */
export function describeTokens(config: TokenConfig): string {
  return config.tokens
    .map((t) => `${t.name ?? t.projectId}: project=${t.projectId} roles=${t.roles.join(',')} ${t.roles.includes('service') ? '(workers only; in the token file)' : `token=${t.token}`}`)
    .join('\n');
}
