/**
 * An in-process connection: two Duplex ends where what one writes the other
 * reads, with back-pressure, a FIN on `end()` and the handful of net.Socket
 * methods node's HTTP client and server call (`setTimeout` with a real idle
 * timer, `setNoDelay`, `setKeepAlive`, `ref`/`unref`). node:http accepts any
 * Duplex as an agent's connection (`createConnection`), so a request can go
 * from an http.ClientRequest to the mesh's agent wire (agent-connection.ts)
 * without a socket.
 */
import { Duplex } from 'node:stream';

/** One end of a {@link pipePair}. */
export class PipeEnd extends Duplex {
  /** @internal the other end */
  peer!: PipeEnd;
  /** A write waiting for the peer to read (back-pressure). */
  private pendingWrite: (() => void) | undefined;
  private idleMs = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private lastActive = 0;
  /** Looks like a loopback TCP peer to code that logs addresses. */
  readonly remoteAddress = '127.0.0.1';
  readonly remoteFamily = 'IPv4';
  readonly localAddress = '127.0.0.1';

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.touch();
    const peer = this.peer;
    if (peer.destroyed) return callback(Object.assign(new Error('the other end of the pipe is closed'), { code: 'EPIPE' }));
    peer.touch();
    if (peer.push(chunk)) callback();
    else peer.pendingWrite = () => callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.peer.push(null);
    callback();
  }

  override _read(): void {
    const resume = this.pendingWrite;
    this.pendingWrite = undefined;
    resume?.();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.clearIdle();
    const peer = this.peer;
    // As a closed TCP connection: the other side reads EOF and closes too.
    if (!peer.destroyed) {
      peer.push(null);
      peer.destroy();
    }
    const pending = peer.pendingWrite;
    peer.pendingWrite = undefined;
    pending?.();
    callback(error);
  }

  /** As net.Socket's: emits 'timeout' after `ms` without activity (0 turns it off). */
  setTimeout(ms: number, callback?: () => void): this {
    if (callback) this.once('timeout', callback);
    if (ms !== this.idleMs) this.clearIdle();
    this.idleMs = ms;
    this.touch();
    return this;
  }

  setNoDelay(): this {
    return this;
  }

  setKeepAlive(): this {
    return this;
  }

  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }

  /**
   * Notes activity (only while an idle timeout is set: setTimeout notes it too). One timer per idle
   * period, not per chunk: it re-arms for what is left when it fires early.
   */
  private touch(): void {
    if (this.idleMs <= 0) return;
    this.lastActive = performance.now();
    if (this.idleTimer === undefined && !this.destroyed) this.armIdle(this.idleMs);
  }

  private armIdle(ms: number): void {
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.idleMs <= 0 || this.destroyed) return;
      const left = this.idleMs - (performance.now() - this.lastActive);
      if (left > 1) this.armIdle(left);
      else this.emit('timeout');
    }, ms);
    this.idleTimer.unref();
  }

  private clearIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }
}

/** Two connected ends: `[client, server]`. */
export function pipePair(): [PipeEnd, PipeEnd] {
  const a = new PipeEnd();
  const b = new PipeEnd();
  a.peer = b;
  b.peer = a;
  return [a, b];
}
