// A small qcow2 chain (base with patterns, overlay with other patterns over part of them) served by
// a read-only qemu-nbd, with its allocation map read through our NBD client: the source the stream
// tests send into an image service.
import path from 'node:path';
import { startReadOnlyExport, stopReadOnlyExport } from '../../src/host/nbd-export';
import { createQcow2, writePattern } from '../../src/host/qemu-img';
import { allocationMap, NbdClient } from '../../src/nbd';
import type { AllocationMap } from '../../src/qcow2';

const MiB = 1024 * 1024;

export interface ExportedChain {
  overlay: string;
  map: AllocationMap;
  socketPath: string;
  stop(): Promise<void>;
}

/** `patterns` 8 MiB strides over `sizeBytes`: base writes at each stride's start, overlay writes overlapping them. */
export async function exportChain(dir: string, sizeBytes: number, patterns: number): Promise<ExportedChain> {
  const base = path.join(dir, 'base.qcow2');
  const overlay = path.join(dir, 'disk.qcow2');
  const loc = { socketPath: path.join(dir, 'export.sock'), pidFile: path.join(dir, 'qemu-nbd.pid') };
  await createQcow2(base, { sizeBytes });
  for (let i = 0; i < patterns; i++) await writePattern(base, { byte: 0x10 + i, offset: i * 8 * MiB, length: 2 * MiB });
  await createQcow2(overlay, { backing: base });
  for (let i = 0; i < patterns; i++) await writePattern(overlay, { byte: 0x60 + i, offset: i * 8 * MiB + 3 * MiB, length: 2 * MiB + 4096 });
  await startReadOnlyExport({ diskPath: overlay, format: 'qcow2', backing: [{ path: base, format: 'qcow2' }], exportName: 'vda', ...loc });
  const nbd = await NbdClient.connect({ socketPath: loc.socketPath, exportName: 'vda' });
  const map = { virtualSize: nbd.exportSize, extents: await allocationMap(nbd) };
  await nbd.close();
  return { overlay, map, socketPath: loc.socketPath, stop: async () => {
      await stopReadOnlyExport(loc).catch(() => undefined);
    },
  };
}
