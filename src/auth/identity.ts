// Who a token speaks for, and the hook a service is given to find out. Services never interpret
// tokens themselves: whoever embeds one passes an authenticate function (Keystone, the static
// token table of token-file.ts, ...).

export interface AuthIdentity {
  projectId: string;
  roles: readonly string[];
}

export type Authenticator = (token: string) => AuthIdentity | null | Promise<AuthIdentity | null>;
