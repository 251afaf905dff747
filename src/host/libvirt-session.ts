// One libvirt connection per host worker, re-opened on first use after it was lost (libvirtd
// restarted): calls in flight fail with the client's typed, retryable LibvirtConnectionError, and
// the activity's retry lands on a fresh connection.
import { Libvirt, type ConnectOptions } from '../libvirt';

export class LibvirtSession {
  private current: Promise<Libvirt> | null = null;

  constructor(
    readonly uri: string,
    private readonly options: ConnectOptions = {},
    /** an event the client could not decode (it is dropped; block-job waits fall back to polling) */
    private readonly onEventError?: (err: Error) => void,
  ) {}

  async client(): Promise<Libvirt> {
    if (this.current) {
      const existing = await this.current.catch(() => null);
      if (existing && !existing.closed) return existing;
    }
    const opening = Libvirt.connect(this.uri, this.options).then((client) => {
      if (this.onEventError) client.onEventError(this.onEventError);
      return client;
    });
    this.current = opening;
    opening.catch(() => {
      if (this.current === opening) this.current = null;
    });
    return opening;
  }

  async close(): Promise<void> {
    const existing = await this.current?.catch(() => null);
    this.current = null;
    await existing?.close();
  }
}
