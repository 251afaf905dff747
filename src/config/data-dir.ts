import { z } from 'zod';

/** SNAP_DATA_DIR: where every process keeps its gitignored state (tokens, SQLite file, images, snapshots). */
export const DataDirSchema = z.string().min(1).default('.data');
