/**
 * Timeouts in bulk. A mesh arms a route timeout and a per-try timeout on
 * almost every request, each with the same few durations. One timer per
 * duration over a FIFO list (entries of one duration expire in the order they
 * were armed) makes arming and cancelling O(1) and cheaper than a Node timer
 * per request.
 */
import { timerDelay } from './duration.js';

/** An armed deadline; pass it to {@link Deadlines.cancel}. */
export interface Deadline {
  /** @internal */ at: number;
  /** @internal */ fire: ((arg: never) => void) | undefined;
  /** @internal */ arg: unknown;
  /** @internal */ prev: Deadline | undefined;
  /** @internal */ next: Deadline | undefined;
  /** @internal */ queue: Queue | undefined;
}

class Queue {
  head: Deadline | undefined;
  tail: Deadline | undefined;
  timer: NodeJS.Timeout | undefined;

  constructor(private readonly now: () => number) {}

  push(d: Deadline): void {
    d.queue = this;
    d.prev = this.tail;
    if (this.tail) this.tail.next = d;
    else this.head = d;
    this.tail = d;
    if (!this.timer) this.arm(d.at);
  }

  remove(d: Deadline): void {
    if (d.prev) d.prev.next = d.next;
    else this.head = d.next;
    if (d.next) d.next.prev = d.prev;
    else this.tail = d.prev;
    d.prev = d.next = d.queue = undefined;
  }

  private arm(at: number): void {
    // Clamped: Node turns a delay past 2^31 - 1 ms into 1 ms, which would re-arm every millisecond.
    this.timer = setTimeout(() => this.expire(), timerDelay(Math.ceil(at - this.now())));
    this.timer.unref();
  }

  private expire(): void {
    this.timer = undefined;
    const now = this.now();
    let d = this.head;
    // Node timers may fire a little early on a coarse clock; 1 ms of slack avoids a 0 ms re-arm loop.
    while (d && d.at <= now + 1) {
      const fire = d.fire;
      const arg = d.arg;
      this.remove(d);
      d.fire = undefined;
      fire?.(arg as never);
      d = this.head;
    }
    if (this.head && !this.timer) this.arm(this.head.at);
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.head = this.tail = undefined;
  }
}

/** One mesh's deadline queues, one per duration. */
export class Deadlines {
  private readonly queues = new Map<number, Queue>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Calls `fire(arg)` after `ms` milliseconds unless cancelled first. */
  arm<A>(ms: number, fire: (arg: A) => void, arg: A): Deadline {
    let queue = this.queues.get(ms);
    if (!queue) this.queues.set(ms, (queue = new Queue(this.now)));
    const d: Deadline = { at: this.now() + ms, fire: fire as (arg: never) => void, arg, prev: undefined, next: undefined, queue: undefined };
    queue.push(d);
    return d;
  }

  /** Disarms a deadline (a no-op when it already fired or was cancelled). */
  cancel(d: Deadline | undefined): void {
    cancelDeadline(d);
  }

  /** Drops every pending deadline and its timer. */
  close(): void {
    for (const q of this.queues.values()) q.close();
    this.queues.clear();
  }
}

/** Disarms a deadline armed on any {@link Deadlines} (a no-op when it already fired or was cancelled). */
export function cancelDeadline(d: Deadline | undefined): void {
  if (!d || !d.queue) return;
  d.fire = undefined;
  d.queue.remove(d);
}
