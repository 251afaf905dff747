// Which identity source a service process uses: Keystone when SNAP_KEYSTONE_URL is set, otherwise
// the project's token file (generated on first start).
import { createAuthenticator } from './authenticator';
import type { IdentitySource } from './authenticator';
import { KeystoneAuthenticator } from './keystone-authenticator';
import { keystoneOptionsFromEnv } from './keystone-config';
import { loadOrCreateTokens, tokenOptionsFromEnv, type LoadedTokens } from './token-file';

export type ConfiguredIdentity =
  | { mode: 'keystone'; source: KeystoneAuthenticator; url: string }
  | { mode: 'tokens'; source: IdentitySource; tokens: LoadedTokens };

export async function identitySourceFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<ConfiguredIdentity> {
  const keystone = keystoneOptionsFromEnv(env);
  if (keystone !== undefined) return { mode: 'keystone', source: new KeystoneAuthenticator(keystone), url: keystone.endpoint.url };
  const tokens = await loadOrCreateTokens(tokenOptionsFromEnv(env));
  return { mode: 'tokens', source: createAuthenticator(tokens.config), tokens };
}

/**
 * The token a worker sends to the image backend: the Keystone service user's (renewed before it
 * expires, so a long upload never carries a user's dying token) when Keystone is configured, else
 * the fixed SNAP_IMAGE_TOKEN.
 */
export function serviceTokenSource(fixed: string | undefined, env: NodeJS.ProcessEnv = process.env): string | (() => Promise<string>) | undefined {
  const keystone = keystoneOptionsFromEnv(env);
  if (keystone === undefined) return fixed;
  const authenticator = new KeystoneAuthenticator(keystone);
  return () => authenticator.serviceToken();
}
