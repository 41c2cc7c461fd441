/**
 * Request bodies and retries. Strings and byte arrays replay as they are;
 * a streamed body (an async iterable, as fetch sends) is recorded while the
 * first attempt sends it, up to a limit, the way Envoy buffers a request for
 * retries. A body larger than the limit cannot be replayed, so that request
 * is not retried.
 */

import { fixedBodyBytes } from './wire-bytes.js';

/** Envoy's default per-request buffer limit for retries is of this order. */
export const REPLAY_LIMIT_BYTES = 64 * 1024;

export interface ReplayableBody {
  /** the body to send on the next attempt, or undefined when it cannot be replayed */
  next(): unknown;
  /** false once the body exceeded the limit or is of a kind that cannot be replayed */
  readonly replayable: boolean;
  /** Bytes of the body sent so far (a stream's as it is read), for istio_request_bytes. */
  readonly bytes: number;
}

/** Wraps a dispatch body so later attempts can resend it. */
export function replayableBody(body: unknown): ReplayableBody {
  if (body == null) return NO_BODY;
  if (typeof body === 'string' || body instanceof Uint8Array) return new FixedBody(body, true);
  if (typeof (body as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') return new RecordedBody(body as AsyncIterable<Uint8Array | string>);
  return new FixedBody(body, false);
}

/** A body sent as it is on every attempt (or, when not replayable, once). */
class FixedBody implements ReplayableBody {
  readonly bytes: number;
  constructor(private readonly body: unknown, readonly replayable: boolean) {
    this.bytes = fixedBodyBytes(body) ?? 0;
  }
  next(): unknown {
    return this.body;
  }
}

const NO_BODY: ReplayableBody = new FixedBody(undefined, true);

class RecordedBody implements ReplayableBody {
  private chunks: Buffer[] | undefined = [];
  private size = 0;
  /** Every byte read from the source, recorded or not. */
  bytes = 0;
  private complete = false;
  private started = false;

  constructor(private readonly source: AsyncIterable<Uint8Array | string>) {}

  get replayable(): boolean {
    return this.chunks !== undefined && (this.complete || !this.started);
  }

  next(): unknown {
    if (!this.started) {
      this.started = true;
      return this.record();
    }
    return this.chunks ? Buffer.concat(this.chunks) : undefined;
  }

  private async *record(): AsyncGenerator<Uint8Array> {
    for await (const chunk of this.source) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      this.bytes += buf.length;
      if (this.chunks) {
        this.size += buf.length;
        if (this.size > REPLAY_LIMIT_BYTES) this.chunks = undefined;
        else this.chunks.push(Buffer.from(buf));
      }
      yield buf;
    }
    this.complete = true;
  }
}
