// snapctl's exit codes: one per error class, so scripts can branch without parsing messages.

export const ExitCode = {
  ok: 0,
  /** bad command line, or the API refused the request as invalid (400, 406, 413, 415) */
  usage: 2,
  /** missing/unknown token (401) or not allowed (403) */
  auth: 3,
  /** no such server, image or snapshot (404) */
  notFound: 4,
  /** the server is busy or in the wrong state (409) */
  conflict: 5,
  /** the API failed (5xx) or answered something unexpected */
  server: 6,
  /** the API could not be reached */
  network: 7,
  /** `snapshot --wait`: the snapshot workflow failed */
  snapshotFailed: 8,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    readonly exitCode: ExitCodeValue,
    message: string,
  ) {
    super(message);
  }
}

export function exitCodeForStatus(status: number): ExitCodeValue {
  if (status === 401 || status === 403) return ExitCode.auth;
  if (status === 404) return ExitCode.notFound;
  if (status === 409) return ExitCode.conflict;
  if (status >= 400 && status < 500) return ExitCode.usage;
  return ExitCode.server;
}

export const usageError = (message: string): CliError => new CliError(ExitCode.usage, message);
