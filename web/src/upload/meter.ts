// Transfer speed over a sliding window, and the time left at that speed.

interface Sample {
  at: number;
  sent: number;
}

export class SpeedMeter {
  private samples: Sample[] = [];

  /** @param windowMs how far back the speed looks */
  constructor(private readonly windowMs = 10_000) {}

  /** Record that `sent` bytes (a running total that only grows) have gone out by time `at` (ms). */
  add(at: number, sent: number): void {
    const last = this.samples[this.samples.length - 1];
    if (last && sent < last.sent) this.samples = [];
    this.samples.push({ at, sent });
    // keep one sample older than the window, so the window is always spanned
    while (this.samples.length > 2 && this.samples[1].at <= at - this.windowMs) this.samples.shift();
  }

  reset(): void {
    this.samples = [];
  }

  /** bytes per second, or null while there is too little to tell */
  speed(): number | null {
    if (this.samples.length < 2) return null;
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    const elapsed = last.at - first.at;
    if (elapsed < 500) return null;
    return ((last.sent - first.sent) * 1000) / elapsed;
  }

  /** seconds until `remaining` bytes are sent, or null if unknown */
  secondsLeft(remaining: number): number | null {
    if (remaining <= 0) return 0;
    const speed = this.speed();
    if (speed === null || speed <= 0) return null;
    return remaining / speed;
  }
}
