// Composition of a named upload's chunk table (protocol 2, client/chunk-wire.ts): the staged bytes
// are one chunk name per slot the map's data touches, and every byte behind those names is already
// in the store, checked against its name when it arrived or held by an image of the same project.
// Nothing is read or hashed here: each name must be one the upload may use, stored, and exactly its
// slot's length; then it is the slot's entry. The logical digest follows from the table. Each name
// is looked up once (a HEAD on a shared backend), several at a time, its slots filled in order.
import { ImageRequestRejected } from '../client/image-errors';
import { CHUNK_NAME_BYTES, ZERO_CHUNK_NAME, namedSlots, slotLength } from '../client/chunk-wire';
import type { LogicalLayout } from '../client/logical-layout';
import type { ChunkBatch } from './chunk-store';
import { setSlotHash } from './image-index';
import type { TableWindows } from './index-writer';
import { RequestsInFlight } from '../../contract';

/** Names read from the staged list at once: 128 KiB, a GiB of disk. */
const NAMES_AT_ONCE = 4096;
/** Chunk look-ups in flight: each is a round trip on a shared backend. */
const LOOKUPS_IN_FLIGHT = 8;

export interface ComposeNamedInput {
  id: string;
  layout: LogicalLayout;
  table: TableWindows;
  readStaged: (offset: number, length: number) => Promise<Buffer>;
  /** looks every name up, and pins it until its index is on disk */
  batch: ChunkBatch;
  /** whether this upload may name the chunk: it sent it, or was told its project holds it */
  mayName: (hex: string) => boolean;
}

export async function composeNamed(input: ComposeNamedInput): Promise<void> {
  const { id, layout, table, batch } = input;
  const slots = namedSlots(layout);
  const virtualSize = layout.map.virtualSize;
  const refuse = (message: string): never => {
    throw new ImageRequestRejected(400, `The named upload of image ${id} cannot be composed: ${message}; the image is killed`);
  };
  for (let first = 0; first < slots.length; first += NAMES_AT_ONCE) {
    const count = Math.min(NAMES_AT_ONCE, slots.length - first);
    const names = await input.readStaged(first * CHUNK_NAME_BYTES, count * CHUNK_NAME_BYTES);
    const named: { slot: number; name: Buffer; hex: string }[] = [];
    for (let i = 0; i < count; i++) {
      const slot = slots[first + i] as number;
      const name = names.subarray(i * CHUNK_NAME_BYTES, (i + 1) * CHUNK_NAME_BYTES);
      if (name.equals(ZERO_CHUNK_NAME)) continue;
      const hex = name.toString('hex');
      if (!input.mayName(hex)) refuse(`slot ${slot} names chunk ${hex}, which it neither sent nor was told its project holds`);
      named.push({ slot, name, hex });
    }
    const sizes = await storedSizes(batch, named);
    for (const { slot, name, hex } of named) {
      const size = sizes.get(hex);
      if (size === undefined) refuse(`chunk ${hex} of slot ${slot} is not in the store (send it again)`);
      if (size !== slotLength(slot, virtualSize)) refuse(`chunk ${hex} holds ${String(size)} bytes, slot ${slot} ${slotLength(slot, virtualSize)}`);
      setSlotHash(await table.view(slot, 1), 0, Buffer.from(name));
    }
  }
}

/** Each distinct chunk's stored length (absent: not stored), looked up once, a few at a time. */
async function storedSizes(batch: ChunkBatch, named: readonly { name: Buffer; hex: string }[]): Promise<Map<string, number | undefined>> {
  const sizes = new Map<string, number | undefined>();
  const distinct = new Map(named.map(({ name, hex }) => [hex, name]));
  await new RequestsInFlight(LOOKUPS_IN_FLIGHT).each(distinct, async ([hex, name]) => {
    sizes.set(hex, await batch.storedSize(name));
  });
  return sizes;
}
