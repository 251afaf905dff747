// bench:gc — the time of one image's delete, to its chunks reclaimed, among 10 and among 1,000 images
// in the store. Every image is a small raw disk made through the store's own API: a base the images
// share (deduplicated) and chunks of their own, which are what a delete frees. Next to it, the full
// mark and sweep every delete ran before the reference counts (the repair pass, which still runs at
// each start): its time follows the store, which is what the counts remove from a delete. Also the
// start's repair, a commit among the images (it counts its new index), and the counts' memory.
// Target (issue 25): a delete among 1,000 images ≤ 2× the delete among 10.
// Each store keeps its size: every image deleted is replaced by a new one (its commit timed too),
// and the two stores take turns, so a shared machine's changing load falls on both alike.
// Run: npm run bench:gc -- [--small 10] [--large 1000] [--deletes 25] [--collections 3] [--own-mib 1] [--shared-mib 1]
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';
import { ImageService, UNAUTHENTICATED_ADMIN as admin } from '../src/images/service';
import { ImageRecordRepository } from '../src/images/service/image-record-repository';
import { ChunkRefs } from '../src/images/store/chunk-refs';
import { ComposedImages } from '../src/images/store/composed-images';
import { parseArgs } from './support/args';
import { composedImage } from './support/composed-image';
import { machineFacts } from './support/machine';
import { median, printTable, ratio, timed, type Row } from './support/table';
import { errorStack } from '../src/contract';

const MiB = 1024 * 1024;
const CHUNK = 256 * 1024;

const args = parseArgs(
  z.object({
    small: z.coerce.number().int().min(2).default(10),
    large: z.coerce.number().int().min(2).default(1000),
    deletes: z.coerce.number().int().min(1).default(25),
    collections: z.coerce.number().int().min(1).default(3),
    'own-mib': z.coerce.number().int().min(1).default(1),
    'shared-mib': z.coerce.number().int().min(0).default(1),
  }),
);

interface Store {
  images: number;
  dir: string;
  service: ImageService;
  /** each image's own part (its chunks are what its delete frees), by id */
  own: Map<string, Buffer>;
  start: number;
  delete: number[];
  /** of each delete: the record's durable write, and the reclaim (index read, counts, chunk files) */
  record: number[];
  reclaim: number[];
  fullCollection: number[];
  commit: number[];
}

const ms = (n: number): string => n.toFixed(1);
const shared = randomBytes(args['shared-mib'] * MiB);
const ownBytes = args['own-mib'] * MiB;

async function presentChunks(dir: string, hexes: string[]): Promise<number> {
  let present = 0;
  for (const hex of hexes) if (await stat(join(dir, 'chunks', hex.slice(0, 2), hex)).then(() => true, () => false)) present++;
  return present;
}

/** The chunk names of an image's own part (a raw disk's 256 KiB pieces). */
function ownChunks(own: Buffer): string[] {
  const out: string[] = [];
  for (let at = 0; at < own.length; at += CHUNK) out.push(createHash('sha256').update(own.subarray(at, at + CHUNK)).digest('hex'));
  return out;
}

/** One more image: the shared base, then its own random part. */
async function addImage(service: ImageService, own: Map<string, Buffer>): Promise<number> {
  const mine = randomBytes(ownBytes);
  const made = await timed(() => composedImage(service, shared.length + ownBytes, async function* () {
    yield shared;
    yield mine;
  }));
  own.set(made.value, mine);
  return made.ms;
}

/** A store of `images` images, made and then opened again (the start timed). */
async function storeOf(images: number): Promise<Store> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-gc-'));
  const own = new Map<string, Buffer>();
  const setup = await ImageService.open({ dataDir: dir, maxImageBytes: 64 * 1024 * MiB, verifyAfterCommit: false });
  for (let i = 0; i < images; i++) await addImage(setup, own);
  await setup.close();
  const started = await timed(() => ImageService.open({ dataDir: dir, maxImageBytes: 64 * 1024 * MiB, verifyAfterCommit: false }));
  return { images, dir, service: started.value, own, start: started.ms, delete: [], record: [], reclaim: [], fullCollection: [], commit: [] };
}

/** Deletes one image at random (timed, checked: its own chunks are gone), then adds one back, so the store keeps its size. */
async function deleteOne(store: Store, withFullCollection: boolean): Promise<void> {
  const ids = [...store.own.keys()];
  const id = ids[Math.floor(Math.random() * ids.length)] ?? '';
  const hexes = ownChunks(store.own.get(id) ?? Buffer.alloc(0));
  const phases = phaseTimes();
  store.delete.push((await timed(() => store.service.delete(admin, id))).ms);
  store.record.push(phases.record());
  store.reclaim.push(phases.reclaim());
  const left = await presentChunks(store.dir, hexes);
  if (left !== 0) throw new Error(`image ${id}'s delete left ${left} of its ${hexes.length} own chunks`);
  store.own.delete(id);
  // What every delete ran before the counts: the store-wide mark and sweep.
  if (withFullCollection) store.fullCollection.push((await timed(() => store.service.collectChunks())).ms);
  store.commit.push(await addImage(store.service, store.own));
}

/** The delete's two phases, timed by wrapping the service's record write and the store's reclaim. */
function phaseTimes(): { record: () => number; reclaim: () => number } {
  const spent = { record: 0, reclaim: 0 };
  const wrap = <K extends string>(proto: Record<K, (...a: never[]) => Promise<unknown>>, name: K, phase: keyof typeof spent): void => {
    const original = proto[name];
    proto[name] = async function (this: unknown, ...a: never[]) {
      const start = process.hrtime.bigint();
      try {
        return await original.apply(this, a);
      } finally {
        spent[phase] += Number(process.hrtime.bigint() - start) / 1e6;
        proto[name] = original;
      }
    } as (typeof proto)[K];
  };
  wrap(ImageRecordRepository.prototype as never, 'update', 'record');
  wrap(ComposedImages.prototype as never, 'removeIndex', 'reclaim');
  return { record: () => spent.record, reclaim: () => spent.reclaim };
}

/** Heap bytes per distinct chunk the counts hold (needs --expose-gc; '-' without it). */
function countsMemory(chunks: number): string {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return '-';
  gc();
  const before = process.memoryUsage().heapUsed;
  const refs = new ChunkRefs();
  const window = randomBytes(32 * 4096);
  for (let done = 0; done < chunks; done += 4096) {
    randomBytes(window.length).copy(window);
    refs.add(window);
  }
  gc();
  const bytes = (process.memoryUsage().heapUsed - before) / refs.chunks;
  const perTiB = 1024 ** 4 / CHUNK;
  return `${bytes.toFixed(0)} B/chunk (${((bytes * perTiB) / 1024 ** 3).toFixed(2)} GiB per TiB of distinct chunks)`;
}

async function main(): Promise<void> {
  printTable('machine', await machineFacts());
  const stores = [await storeOf(args.small), await storeOf(args.large)];
  try {
    // The stores were just written: their dirty pages go to disk first, so no delete pays for them.
    await promisify(execFile)('sync');
    // One store then the other, in turns: a shared machine's load changes alike for both.
    for (let r = 0; r < args.deletes; r++) for (const store of stores) await deleteOne(store, r < args.collections);
    const [small, large] = stores as [Store, Store];
    const per = async (st: Store): Promise<string> => `${st.images} images, ${(await st.service.chunkStats()).chunks} chunks`;
    const [a, b] = [await per(small), await per(large)];
    const row = (name: string, pick: (st: Store) => number[], target = ''): Row => {
      const [x, y] = [median(pick(small)), median(pick(large))];
      return { case: name, [a]: ms(x), [b]: ms(y), 'large / small': ratio(y, x), target };
    };
    printTable(`store GC: ms, medians of ${args.deletes} deletes (full collections: ${args.collections}); each image ${args['shared-mib']} MiB shared + ${args['own-mib']} MiB its own`, [
      row('delete, to its chunks reclaimed (reference counts)', (st) => st.delete, '≤ 2.00×'),
      row('… of which the record’s durable write', (st) => st.record),
      row('… of which the reclaim (its index, the counts, its chunk files)', (st) => st.reclaim),
      row('full mark and sweep (what every delete ran before; now the repair pass)', (st) => st.fullCollection),
      row('start (records, recovery, the repair pass)', (st) => [st.start]),
      row('commit of one image (it counts its index)', (st) => st.commit),
    ]);
    printTable('the counts’ memory', [{ case: 'ChunkRefs, 1,048,576 distinct chunks', heap: countsMemory(1024 * 1024) }]);
  } finally {
    for (const store of stores) {
      await store.service.close();
      await rm(store.dir, { recursive: true, force: true });
    }
  }
}

void main().catch((err: unknown) => {
  process.stderr.write(`${errorStack(err)}\n`);
  process.exitCode = 1;
});
