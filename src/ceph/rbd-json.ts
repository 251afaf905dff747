// Pieces of rbd's JSON answers that more than one command shares.
import { z } from 'zod';

/** rbd writes booleans of its JSON as the strings "true" and "false". */
export const RbdBool = z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')]);
export const Bytes = z.number().int().nonnegative();
