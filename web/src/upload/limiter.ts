// A counting semaphore: at most `limit` holders at once, waiters served in order. Shared by all
// uploads of a page, it caps the part PUTs in flight however many files are dropped.
import { AbortedError } from "./errors";

export class Limiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly limit: number) {
    if (!(limit >= 1)) throw new RangeError("limit must be at least 1");
  }

  get inUse(): number {
    return this.active;
  }

  /** Resolves with a release function once a slot is free. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(new AbortedError());
    return new Promise((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener("abort", onAbort);
        this.active++;
        let released = false;
        resolve(() => {
          if (released) return;
          released = true;
          this.active--;
          this.waiting.shift()?.();
        });
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(grant);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(new AbortedError());
      };
      if (this.active < this.limit) {
        grant();
      } else {
        this.waiting.push(grant);
        signal?.addEventListener("abort", onAbort, { once: true });
      }
    });
  }
}
