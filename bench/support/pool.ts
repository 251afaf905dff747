// Bounded parallelism for set-up and verification work, so preparing 100 guests does not start
// 100 qemu-img processes at once on a 2-core machine (the measured phase is not pooled).
export async function mapPool<T, R>(items: readonly T[], width: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(width, items.length)) }, async () => {
    while (next < items.length) {
      const index = next++;
      out[index] = await fn(items[index] as T, index);
    }
  });
  await Promise.all(lanes);
  return out;
}
