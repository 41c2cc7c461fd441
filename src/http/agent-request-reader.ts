/**
 * The request side of the agent's wire (node-agent.ts): an incremental
 * HTTP/1.1 request reader written for what node's ClientRequest sends into
 * the pipe — a request line, headers, then a `content-length` or
 * `transfer-encoding: chunked` body — one request after another on a
 * keep-alive connection.
 *
 * It is strict where a lenient parser would let two readers disagree on where
 * a request ends (RFC 9112 §11.2): bare LF, obs-fold, whitespace before the
 * colon, both `content-length` and `transfer-encoding`, conflicting lengths
 * or a coding other than `chunked` are refused. node's serializer never
 * writes those, so a refusal means the bytes did not come from it.
 */

import { HEX, TOKEN } from './http1-syntax.js';
import { type MalformedStatus, RequestHead, parseRequestHead } from './agent-request-head.js';

export { CONTEXT_HEADER, type MalformedStatus, RequestHead } from './agent-request-head.js';

/** Where a {@link RequestReader} delivers what it reads. */
export interface RequestSink {
  /** A request head was read; its body (if any) follows through onRequestBody. */
  onRequestHead(head: RequestHead): void;
  /** A piece of the body; a view into the pipe's chunk, not a copy. */
  onRequestBody(chunk: Buffer): void;
  /** The request (head and body) is complete; the reader waits for {@link RequestReader.resume}. */
  onRequestEnd(): void;
  /** The bytes are not a request this reader accepts; it reads nothing more. */
  onMalformed(status: MalformedStatus, reason: string): void;
}

/** Envoy's default `max_request_headers_kb` (60 KiB): a longer head is answered 431. */
export const MAX_HEAD_BYTES = 60 * 1024;
/** A chunk-size line (size and extensions) or the trailer section longer than this is refused. */
const MAX_CHUNK_LINE_BYTES = 4096;
const MAX_TRAILER_BYTES = 16 * 1024;
/** 13 hex digits stay below 2^53, so a chunk size is an exact number. */
const MAX_CHUNK_SIZE_DIGITS = 13;

const enum State {
  Head,
  Length,
  ChunkSize,
  ChunkExt,
  ChunkSizeLf,
  ChunkData,
  ChunkDataCr,
  ChunkDataLf,
  TrailerLineStart,
  TrailerLine,
  TrailerLf,
  TrailerEndLf,
  /** a request is complete; the rest waits for resume() */
  Waiting,
  /** malformed input: nothing more is read */
  Dead,
}

const CR = 13;
const LF = 10;
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');

/**
 * Reads HTTP/1.1 requests from the chunks of one connection. `execute` takes
 * each chunk as it arrives; after a request ends it keeps what follows (a
 * pipelined request) until `resume`, so responses go out in request order.
 */
export class RequestReader {
  private state = State.Head;
  /** head bytes of earlier chunks while a head spans several */
  private headChunks: Buffer[] = [];
  private headBytes = 0;
  /** the last bytes of those chunks (at most 3) */
  private headTail: number[] = [];
  /** body bytes left: of the content-length, or of the current chunk */
  private remaining = 0;
  private chunkDigits = 0;
  private lineBytes = 0;
  /** input after a complete request, parsed on resume() */
  private rest: Buffer | undefined = undefined;

  constructor(private readonly sink: RequestSink) {}

  /** True once the reader refused the input. */
  get dead(): boolean {
    return this.state === State.Dead;
  }

  /** True between requests: no head or body bytes read of the next one. */
  get idle(): boolean {
    return (this.state === State.Head && this.headBytes === 0) || (this.state === State.Waiting && this.rest === undefined);
  }

  /** True while input after a complete request waits for {@link resume}. */
  get holding(): boolean {
    return this.state === State.Waiting && this.rest !== undefined;
  }

  /** Reads a chunk from the connection. */
  execute(chunk: Buffer): void {
    if (this.state === State.Dead) return;
    if (this.state === State.Waiting) {
      this.rest = this.rest === undefined ? chunk : Buffer.concat([this.rest, chunk]);
      return;
    }
    this.run(chunk, 0);
  }

  /** The response to the last request is done: reads the next one, if its bytes are here. */
  resume(): void {
    if (this.state !== State.Waiting) return;
    this.state = State.Head;
    const rest = this.rest;
    this.rest = undefined;
    if (rest !== undefined) this.run(rest, 0);
  }

  private run(chunk: Buffer, offset: number): void {
    while (offset < chunk.length) {
      switch (this.state) {
        case State.Head:
          offset = this.readHead(chunk, offset);
          break;
        case State.Length: {
          const n = Math.min(this.remaining, chunk.length - offset);
          this.remaining -= n;
          this.sink.onRequestBody(chunk.subarray(offset, offset + n));
          offset += n;
          if (this.remaining === 0) this.end();
          break;
        }
        case State.ChunkData: {
          const n = Math.min(this.remaining, chunk.length - offset);
          this.remaining -= n;
          this.sink.onRequestBody(chunk.subarray(offset, offset + n));
          offset += n;
          if (this.remaining === 0) this.state = State.ChunkDataCr;
          break;
        }
        case State.Waiting:
          this.rest = chunk.subarray(offset);
          return;
        case State.Dead:
          return;
        default:
          this.chunkByte(chunk[offset++]!);
      }
    }
  }

  /** Looks for the end of the head; returns where reading goes on. */
  private readHead(chunk: Buffer, offset: number): number {
    if (this.headBytes === 0) {
      // RFC 9112 §2.2: a server ignores empty lines before a request line.
      while (offset + 1 < chunk.length && chunk[offset] === CR && chunk[offset + 1] === LF) offset += 2;
      if (offset >= chunk.length) return offset;
    }
    let end = -1;
    if (this.headChunks.length > 0) end = this.endAcrossChunks(chunk, offset);
    if (end === -1) {
      const at = chunk.indexOf(HEAD_END, offset);
      if (at !== -1) end = at + 4;
    }
    if (end === -1) {
      this.headBytes += chunk.length - offset;
      if (this.headBytes > MAX_HEAD_BYTES) return this.fail(431, 'request head too large');
      const piece = offset === 0 ? chunk : chunk.subarray(offset);
      this.headChunks.push(piece);
      this.keepTail(piece);
      return chunk.length;
    }
    if (this.headBytes + (end - offset) > MAX_HEAD_BYTES) return this.fail(431, 'request head too large');
    let text: string;
    if (this.headChunks.length === 0) {
      text = chunk.toString('latin1', offset, end - 4);
    } else {
      this.headChunks.push(chunk.subarray(offset, end));
      const head = Buffer.concat(this.headChunks); // the one copy, only for a head that spans chunks
      this.headChunks = [];
      this.headTail = [];
      text = head.toString('latin1', 0, head.length - 4);
    }
    this.headBytes = 0;
    this.parseHead(text);
    return end;
  }

  /** The head's end when "\r\n\r\n" straddles earlier chunks and this one (absolute offset in chunk), else -1. */
  private endAcrossChunks(chunk: Buffer, offset: number): number {
    const tail = this.headTail;
    const take = Math.min(3, chunk.length - offset);
    const probe = Buffer.allocUnsafe(tail.length + take);
    for (let i = 0; i < tail.length; i++) probe[i] = tail[i]!;
    chunk.copy(probe, tail.length, offset, offset + take);
    const at = probe.indexOf(HEAD_END);
    return at === -1 ? -1 : offset + at + 4 - tail.length;
  }

  /** Keeps the head's last three bytes, where the end of a head that spans chunks may begin. */
  private keepTail(piece: Buffer): void {
    const tail = this.headTail;
    for (let i = Math.max(0, piece.length - 3); i < piece.length; i++) tail.push(piece[i]!);
    if (tail.length > 3) tail.splice(0, tail.length - 3);
  }

  private parseHead(text: string): void {
    const head = parseRequestHead(text);
    if (!(head instanceof RequestHead)) return void this.fail(head.status, head.reason);
    this.sink.onRequestHead(head);
    if (this.state === State.Dead) return;
    if (head.contentLength > 0) {
      this.state = State.Length;
      this.remaining = head.contentLength;
    } else if (head.contentLength === -1) {
      this.startChunk();
    } else {
      this.end();
    }
  }

  private startChunk(): void {
    this.state = State.ChunkSize;
    this.remaining = 0;
    this.chunkDigits = 0;
    this.lineBytes = 0;
  }

  /** One byte of chunked framing: sizes, extensions, CRLFs and trailers. */
  private chunkByte(b: number): void {
    switch (this.state) {
      case State.ChunkSize: {
        const digit = HEX[b]!;
        if (digit !== -1) {
          if (++this.chunkDigits > MAX_CHUNK_SIZE_DIGITS) return void this.fail(400, 'chunk size too large');
          this.remaining = this.remaining * 16 + digit;
          return;
        }
        if (this.chunkDigits === 0) return void this.fail(400, 'malformed chunk size');
        if (b === CR) this.state = State.ChunkSizeLf;
        else if (b === 59 /* ; */ || b === 32 || b === 9) this.state = State.ChunkExt; // extensions are ignored (RFC 9112 §7.1.1)
        else this.fail(400, 'malformed chunk size');
        return;
      }
      case State.ChunkExt:
        if (++this.lineBytes > MAX_CHUNK_LINE_BYTES) return void this.fail(400, 'chunk extension too long');
        if (b === CR) this.state = State.ChunkSizeLf;
        else if (b === LF || (b < 32 && b !== 9) || b === 127) this.fail(400, 'malformed chunk extension');
        return;
      case State.ChunkSizeLf:
        if (b !== LF) return void this.fail(400, 'malformed chunk size line');
        if (this.remaining > 0) this.state = State.ChunkData;
        else {
          this.state = State.TrailerLineStart;
          this.lineBytes = 0;
        }
        return;
      case State.ChunkDataCr:
        if (b !== CR) return void this.fail(400, 'chunk data longer than its size');
        this.state = State.ChunkDataLf;
        return;
      case State.ChunkDataLf:
        if (b !== LF) return void this.fail(400, 'chunk data longer than its size');
        this.startChunk();
        return;
      // Trailer fields are read and dropped: an upstream request body cannot carry them.
      case State.TrailerLineStart:
        if (b === CR) this.state = State.TrailerEndLf;
        else if (b === LF || b === 32 || b === 9 || TOKEN[b] !== 1) this.fail(400, 'malformed trailer');
        else this.state = State.TrailerLine;
        this.lineBytes++;
        return;
      case State.TrailerLine:
        if (++this.lineBytes > MAX_TRAILER_BYTES) return void this.fail(431, 'trailers too large');
        if (b === CR) this.state = State.TrailerLf;
        else if (b === LF || (b < 32 && b !== 9) || b === 127) this.fail(400, 'malformed trailer');
        return;
      case State.TrailerLf:
        if (b !== LF) return void this.fail(400, 'malformed trailer');
        this.state = State.TrailerLineStart;
        return;
      case State.TrailerEndLf:
        if (b !== LF) return void this.fail(400, 'malformed end of chunked body');
        this.end();
        return;
    }
  }

  private end(): void {
    this.state = State.Waiting;
    this.sink.onRequestEnd();
  }

  /** Refuses the input; returns the offset past everything so callers can `return this.fail(…)`. */
  private fail(status: MalformedStatus, reason: string): number {
    this.state = State.Dead;
    this.headChunks = [];
    this.headTail = [];
    this.rest = undefined;
    this.sink.onMalformed(status, reason);
    return Number.MAX_SAFE_INTEGER;
  }
}
