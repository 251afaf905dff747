// The store's repair pass as the image service's admin route answers it
// (`POST /v2/snapshot-store/repair`): the full mark and sweep a start runs, on request, which
// rebuilds the chunks' reference counts from the indexes and removes what no index names (the
// chunks an index quarantined while counted held, what a failed removal left).
import { z } from 'zod';

export const STORE_REPAIR_URL = '/v2/snapshot-store/repair';

const Count = z.number().int().nonnegative();

export const StoreRepairSchema = z.object({
  /** indexes of images neither active nor uploading, removed */
  removed_indexes: z.array(z.string()),
  removed_chunks: Count,
  removed_bytes: Count,
  kept_chunks: Count,
  /** distinct chunks the indexes name, as counted after the pass */
  counted_chunks: Count,
});
export type StoreRepair = z.infer<typeof StoreRepairSchema>;
