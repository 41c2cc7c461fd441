/**
 * Where access-log lines go: a file (or `/dev/stdout`) opened as a write
 * stream, so writes run on libuv's thread pool and never block the event
 * loop — process.stdout is synchronous for files and pipes on Linux, and a
 * slow reader would stall every request. Lines are batched per tick; while the
 * stream has not drained, at most `maxBufferedBytes` wait, and lines past that
 * are dropped and counted instead of growing memory without bound.
 */
import { createWriteStream, type WriteStream } from 'node:fs';

/** Default cap on lines waiting for a slow sink (1 MiB). */
export const DEFAULT_MAX_BUFFERED_BYTES = 1 << 20;

/** One access-log destination. */
export class AccessLogSink {
  private stream: WriteStream | undefined;
  private pending: string[] = [];
  private pendingBytes = 0;
  /** True while the stream's own buffer is over its high-water mark (we wait for 'drain'). */
  private blocked = false;
  private scheduled = false;
  private closed = false;
  /** Lines dropped because the sink was too slow or failed. */
  dropped = 0;
  /** Lines handed to the stream. */
  written = 0;
  /** The stream's last error (the sink keeps counting drops after one). */
  error: Error | undefined;

  constructor(readonly path: string, private readonly maxBufferedBytes = DEFAULT_MAX_BUFFERED_BYTES) {}

  /** Queues one line (newline included); never throws, never blocks. */
  write(line: string): void {
    if (this.closed || this.error !== undefined || this.pendingBytes + line.length > this.maxBufferedBytes) {
      this.dropped++;
      return;
    }
    this.pending.push(line);
    this.pendingBytes += line.length;
    if (!this.scheduled && !this.blocked) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  private open(): WriteStream {
    // 'a': a shared file (several meshes, or Envoy's habit of appending) is never truncated.
    // The stream's own buffer counts against the bound too: memory stays under twice maxBufferedBytes.
    const s = createWriteStream(this.path, { flags: 'a', highWaterMark: Math.min(this.maxBufferedBytes, 64 * 1024) });
    s.on('error', (err) => {
      this.error = err;
      this.dropped += this.pending.length;
      this.pending = [];
      this.pendingBytes = 0;
    });
    s.on('drain', () => {
      this.blocked = false;
      this.flush();
    });
    return s;
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    if (this.pending.length === 0 || this.blocked || this.error !== undefined) return;
    this.stream ??= this.open();
    const chunk = this.pending.length === 1 ? this.pending[0]! : this.pending.join('');
    this.written += this.pending.length;
    this.pending = [];
    this.pendingBytes = 0;
    if (!this.stream.write(chunk)) this.blocked = true;
  };

  /** Flushes what is queued and closes the file; lines written later are dropped. Resolves once closed (bounded by `timeoutMs`). */
  async close(timeoutMs = 1000): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    const s = this.stream;
    if (s === undefined) return;
    this.dropped += this.pending.length;
    this.pending = [];
    await new Promise<void>((resolve) => {
      // A sink stuck on a slow reader (a FIFO nobody reads) must not hold the mesh's close.
      const timer = setTimeout(() => { s.destroy(); resolve(); }, timeoutMs);
      timer.unref();
      s.end(() => { clearTimeout(timer); resolve(); });
      s.once('error', () => { clearTimeout(timer); resolve(); });
    });
  }
}
