// Live job updates from GET /api/jobs/events (spec §7, docs/events.md).
//
// Wisp answers short SSE responses that end by themselves; the browser's EventSource reconnects
// after the `retry:` the server sends and passes the last `id:` as Last-Event-ID, so no event is
// lost between responses. Each response ends with a `wisp_position` event carrying that position.
// This client keeps the newest position too: when EventSource gives up (a 401/403/5xx closes it
// for good) a new EventSource is opened later with `?last_event_id=<position>`, and the server
// replays what happened meanwhile. The routine reconnects after each response are not reported
// as trouble.

export type JobEventType = "job_created" | "job_updated" | "job_deleted";

export interface JobEvent {
  type: JobEventType;
  jobId: number;
}

export type StreamStatus =
  /** receiving (a response has been opened since the last failure) */
  | "live"
  /** opening the first connection */
  | "connecting"
  /** EventSource gave up; a new one opens after a delay */
  | "reconnecting"
  | "stopped";

/** What the client needs of an EventSource (the real one, or a test double). */
export interface EventSourceLike {
  readonly readyState: number;
  onopen: ((event: Event) => void) | null;
  onerror: ((event: Event) => void) | null;
  addEventListener(type: string, listener: (event: MessageEvent) => void): void;
  close(): void;
}

export type EventSourceFactory = (url: string) => EventSourceLike;

export const EVENT_TYPES: readonly JobEventType[] = ["job_created", "job_updated", "job_deleted"];
const CLOSED = 2;

export interface JobEventsOptions {
  onEvent: (event: JobEvent) => void;
  /** Events may have been missed (first connection, or a position the server may no longer
   * replay): reload whatever is shown. Also the place to notice an ended session (a 401). */
  onResync?: () => void;
  onStatus?: (status: StreamStatus) => void;
  /** `api/jobs/events` (relative: same origin, any path prefix) */
  url?: string;
  factory?: EventSourceFactory;
  /** delays before opening a new EventSource after one gave up: doubled up to maxDelayMs */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** a position older than this may be beyond the server's log (15 min): resync after replay */
  staleAfterMs?: number;
  now?: () => number;
  setTimer?: (callback: () => void, ms: number) => unknown;
  clearTimer?: (timer: unknown) => void;
}

const browserFactory: EventSourceFactory = (url) => new EventSource(url, { withCredentials: true });

export class JobEvents {
  private source: EventSourceLike | null = null;
  private position: string | null = null;
  private positionAt = 0;
  private failures = 0;
  private timer: unknown = null;
  private status: StreamStatus = "stopped";
  private readonly o: Required<Omit<JobEventsOptions, "onResync" | "onStatus">> &
    Pick<JobEventsOptions, "onResync" | "onStatus">;

  constructor(options: JobEventsOptions) {
    this.o = {
      url: "api/jobs/events",
      factory: browserFactory,
      baseDelayMs: 2_000,
      maxDelayMs: 60_000,
      staleAfterMs: 10 * 60 * 1000,
      now: Date.now,
      setTimer: (callback, ms) => setTimeout(callback, ms),
      clearTimer: (timer) => clearTimeout(timer as ReturnType<typeof setTimeout>),
      ...options,
    };
  }

  /** the stream position last received (`wisp_position`), if any */
  get lastPosition(): string | null {
    return this.position;
  }

  get currentStatus(): StreamStatus {
    return this.status;
  }

  start(): void {
    if (this.source || this.timer !== null) return;
    this.open();
  }

  stop(): void {
    this.cancelTimer();
    this.source?.close();
    this.source = null;
    this.setStatus("stopped");
  }

  /** Open a fresh connection now (after a sign-in, a session rotation, the network coming back). */
  reconnect(): void {
    this.cancelTimer();
    this.source?.close();
    this.source = null;
    this.open();
  }

  private cancelTimer(): void {
    if (this.timer !== null) this.o.clearTimer(this.timer);
    this.timer = null;
  }

  private setStatus(status: StreamStatus): void {
    if (status === this.status) return;
    this.status = status;
    this.o.onStatus?.(status);
  }

  private open(): void {
    const stale = this.position !== null && this.o.now() - this.positionAt > this.o.staleAfterMs;
    const resume = this.position !== null && !stale ? this.position : null;
    const url = resume ? `${this.o.url}${this.o.url.includes("?") ? "&" : "?"}last_event_id=${encodeURIComponent(resume)}` : this.o.url;
    if (this.status !== "live") this.setStatus(this.failures > 0 ? "reconnecting" : "connecting");
    const source = this.o.factory(url);
    this.source = source;
    let resynced = false;
    source.onopen = () => {
      if (this.source !== source) return;
      this.failures = 0;
      this.setStatus("live");
      // nothing to replay from: whatever happened before this connection must be read afresh
      if (!resume && !resynced) {
        resynced = true;
        this.o.onResync?.();
      }
    };
    for (const type of EVENT_TYPES) {
      source.addEventListener(type, (event) => {
        if (this.source !== source) return;
        const jobId = Number.parseInt(String(event.data), 10);
        if (Number.isFinite(jobId)) this.o.onEvent({ type, jobId });
      });
    }
    source.addEventListener("wisp_position", (event) => {
      if (this.source !== source) return;
      const data = String(event.data ?? "").trim();
      if (data) {
        this.position = data;
        this.positionAt = this.o.now();
      }
    });
    source.onerror = () => {
      if (this.source !== source) return;
      // CONNECTING: the response simply ended and the browser comes back after `retry` ms.
      if (source.readyState !== CLOSED) return;
      // CLOSED: an HTTP error (401, 403, 5xx) or a wrong content type; EventSource will not retry.
      source.close();
      this.source = null;
      this.failures++;
      this.setStatus("reconnecting");
      this.o.onResync?.();
      const delay = Math.min(this.o.maxDelayMs, this.o.baseDelayMs * 2 ** (this.failures - 1));
      this.timer = this.o.setTimer(() => {
        this.timer = null;
        this.open();
      }, delay);
    };
  }
}
