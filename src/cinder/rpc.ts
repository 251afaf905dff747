// The cinder room's calls: a request whose JSON answer is checked against what we read of it (zod),
// so a Cinder of another release that answers differently fails loudly instead of being misread.
import type { z } from 'zod';
import { issueText } from '../config/validation';
import { CinderResponseInvalid } from './errors';
import { sendCinder, type CinderConnection, type CinderRequest } from './transport';

export async function callCinder<S extends z.ZodTypeAny>(conn: CinderConnection, req: CinderRequest, schema: S): Promise<z.output<S>> {
  const { text } = await sendCinder(conn, req);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new CinderResponseInvalid(req.operation, 'not JSON');
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new CinderResponseInvalid(req.operation, issueText(parsed.error));
  return parsed.data as z.output<S>;
}
