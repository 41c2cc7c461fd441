/**
 * Work in slices, so a large config swap never holds the event loop: a
 * compile step is a generator that yields after every bounded piece of work
 * (a slice of endpoints), and its runner either drains it at once (tests,
 * small configs, the control plane's checks) or gives the event loop a turn
 * between slices (a mesh installing a push). Requests meanwhile keep the
 * snapshot in force; the new one is swapped in whole when the last slice is
 * done (DESIGN.md §7).
 */

/** A sliced computation: yields between slices, returns its result. */
export type Sliced<T> = Generator<void, T, void>;

/**
 * Endpoints per slice. A slice of decoding and compiling this many endpoints
 * costs a few milliseconds on a loaded machine, well under the ~20 ms budget.
 */
export const ENDPOINTS_PER_SLICE = 1_000;

/** Counts units of work and says when a slice is full. */
export class SliceBudget {
  private used = 0;
  constructor(readonly size: number = ENDPOINTS_PER_SLICE) {}

  /** Spends `n` units; true when the slice is full (and starts the next one). */
  spend(n = 1): boolean {
    this.used += n;
    if (this.used < this.size) return false;
    this.used = 0;
    return true;
  }
}

/** The budget of work run in one piece (runNow callers): never full, so it never asks to yield. */
export const UNSLICED = new SliceBudget(Infinity);

/** Runs a sliced computation to the end without yielding to the event loop. */
export function runNow<T>(work: Sliced<T>): T {
  for (;;) {
    const step = work.next();
    if (step.done) return step.value;
  }
}

/** Observes slicing (tests, diagnostics): called after each slice, before the event loop's turn. */
export type SliceObserver = (slice: number) => void;

/** Resolves on the next turn of the event loop (after pending I/O and timers). */
export function nextTurn(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * Runs a sliced computation, giving the event loop a turn (`setImmediate`:
 * I/O and timers run first) between slices.
 */
export async function runSliced<T>(work: Sliced<T>, onSlice?: SliceObserver): Promise<T> {
  let slice = 0;
  for (;;) {
    const step = work.next();
    if (step.done) return step.value;
    onSlice?.(++slice);
    await nextTurn();
  }
}

/**
 * Runs tasks one after another: a config install that spans slices must not
 * interleave with the next one (each compiles against the snapshot the one
 * before it installed).
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  /** Runs `task` after every task queued before it; a failed task does not stop the ones after. */
  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task, task);
    this.tail = result.catch(() => undefined);
    return result;
  }
}
