// Nova's fault bodies: `{"<faultName>": {"code": N, "message": "..."}}`, with the names Nova's
// wsgi Fault uses per status (nova/api/openstack/wsgi.py Fault._fault_names), and its wording of
// a request that fails its schema.
import type { ZodIssue } from 'zod';
import { WHOLE_FAULT_PARAM } from './api-schemas';

const FAULT_NAMES: Record<number, string> = {
  400: 'badRequest',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'itemNotFound',
  405: 'badMethod',
  406: 'notAcceptable',
  409: 'conflictingRequest',
  413: 'overLimit',
  415: 'badMediaType',
  429: 'overLimit',
  501: 'notImplemented',
  503: 'serviceUnavailable',
};

export function faultName(status: number): string {
  return FAULT_NAMES[status] ?? 'computeFault';
}

export function faultBody(status: number, message: string): Record<string, { code: number; message: string }> {
  return { [faultName(status)]: { code: status, message } };
}

/** An error with a definite HTTP answer. Anything else thrown in a handler is a 500 computeFault. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const badRequest = (message: string): ApiError => new ApiError(400, message);
export const unauthorized = (): ApiError =>
  new ApiError(401, 'The request you have made requires authentication.', { 'WWW-Authenticate': 'Keystone uri="local"' });
export const forbidden = (message: string): ApiError => new ApiError(403, message);
export const notFound = (message: string): ApiError => new ApiError(404, message);
export const conflict = (message: string): ApiError => new ApiError(409, message);
export const serviceUnavailable = (message: string): ApiError => new ApiError(503, message);

export const serverNotFound = (id: string): ApiError => notFound(`Instance ${id} could not be found.`);

/** Nova's raise_http_conflict_for_instance_invalid_state text. */
export const invalidState = (action: string, uuid: string, attr: 'task_state' | 'vm_state', state: string | null): ApiError =>
  conflict(`Cannot '${action}' instance ${uuid} while it is in ${attr} ${String(state)}`);

export const INTERNAL_ERROR_MESSAGE =
  'Unexpected API Error. Please report this at the project issue tracker and attach the API log if possible.';

/** Nova's jsonschema validation message for `issue` found in `input`; a format check's own fault text (InvalidName) as it is. */
export function validationMessage(issue: ZodIssue | undefined, input: unknown): string {
  if (issue === undefined) return 'Invalid input';
  if (issue.code === 'custom' && issue.params?.[WHOLE_FAULT_PARAM] === true) return issue.message;
  const path = issue.path.join('.');
  let value: unknown = input;
  for (const key of issue.path) value = typeof value === 'object' && value !== null ? (value as Record<string | number, unknown>)[key] : undefined;
  const shown = value === undefined ? '' : (JSON.stringify(value) ?? '').slice(0, 100);
  return `Invalid input for field/attribute ${path || 'body'}. Value: ${shown}. ${issue.message}`;
}
