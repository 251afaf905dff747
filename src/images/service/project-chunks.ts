// Which chunks a project already holds, for the named upload's known-chunks answer: the names in
// the indexes of the project's own active images, and nothing else. A tenant learns from an answer
// only what it could learn by downloading its own images, never whether another project stores a
// chunk (docs/security.md). The set of a project is built from its indexes when first asked and
// kept while the project's active composed images stay the same ones; a commit or a delete of one
// of them makes the next question build it again.
import type { ImageRecordRepository } from './image-record-repository';
import type { ComposedImages } from '../store/composed-images';

/** Projects whose sets are kept at once; the least recently asked goes first. */
const PROJECTS_KEPT = 8;

interface ProjectSet {
  /** the active images it was built from, sorted and joined */
  images: string;
  names: Set<string>;
}

export class ProjectChunks {
  private readonly sets = new Map<string | null, ProjectSet>();

  constructor(
    private readonly records: ImageRecordRepository,
    private readonly composed: ComposedImages,
  ) {}

  /** The names of the chunks the active images `owner` owns hold (null: images without an owner). */
  async of(owner: string | null): Promise<ReadonlySet<string>> {
    const ids = this.records
      .all()
      .filter((r) => r.status === 'active' && r.owner === owner)
      .map((r) => r.id)
      .sort();
    const images = ids.join(',');
    const kept = this.sets.get(owner);
    this.sets.delete(owner);
    if (kept?.images === images) {
      this.sets.set(owner, kept);
      return kept.names;
    }
    const names = new Set<string>();
    for (const id of ids) await this.composed.chunkNames(id, names);
    this.sets.set(owner, { images, names });
    for (const oldest of this.sets.keys()) {
      if (this.sets.size <= PROJECTS_KEPT) break;
      this.sets.delete(oldest);
    }
    return names;
  }
}
