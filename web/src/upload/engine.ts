// The resumable multipart upload of one file straight to S3 through Wisp's direct-upload routes:
// parts in parallel (under a limiter shared by all files), retries with backoff, pause/resume,
// waiting out network drops, and continuing after a reload when the same file is selected again
// (the upload id is kept in a ResumeStore; GET /parts tells which parts S3 already has).
import { backoffDelay, DEFAULT_BACKOFF, sleep as realSleep } from "./backoff";
import type { BackoffPolicy, Sleep } from "./backoff";
import { AbortedError, HttpError, isAbort, MissingEtagError, NetworkError } from "./errors";
import { Limiter } from "./limiter";
import { SpeedMeter } from "./meter";
import { partLength, partRanges } from "./parts";
import type { PartRange } from "./parts";
import { ResumeStore } from "./resumeStore";
import type { PartTransport, UploadApi, UploadFile, UploadPartsResponse, UploadPartUrl } from "./types";

export type UploadPhase =
  | "waiting" // created, not started
  | "starting" // asking the server for an upload (or for the parts of the remembered one)
  | "uploading"
  | "offline" // the browser is offline: waiting for the network, then carrying on
  | "paused"
  | "completing" // all parts are in S3; asking the server to assemble them and create the job
  | "done"
  | "failed"
  | "cancelled";

export type UploadFailure =
  /** the server or S3 answered with an error; `status` and `detail` say which */
  | { kind: "http"; status: number; detail: string | null }
  /** the browser cannot read S3's ETag header: the bucket's CORS configuration is wrong */
  | { kind: "etag" }
  /** `complete` was sent, its answer was lost, and the retry found the upload gone: the job was
   * probably created. The job list tells. */
  | { kind: "maybe_submitted" }
  | { kind: "other"; message: string };

export interface UploadSnapshot {
  phase: UploadPhase;
  fileName: string;
  size: number;
  /** bytes S3 has (whole parts) plus the bytes of parts in flight */
  bytesDone: number;
  /** bytes per second over the last seconds, or null while unknown */
  speed: number | null;
  secondsLeft: number | null;
  /** the upload continues one started earlier (after a reload or in another tab) */
  resumed: boolean;
  /** bytes S3 already had when this page resumed the upload */
  resumedBytes: number;
  /** some part (or call) failed and is being tried again */
  retrying: boolean;
  jobId: number | null;
  failure: UploadFailure | null;
}

export interface NetworkMonitor {
  online(): boolean;
  /** resolves when the browser says it is online again (or after a while: the flag can lie) */
  waitOnline(signal: AbortSignal): Promise<void>;
}

export const browserNetwork: NetworkMonitor = {
  online: () => typeof navigator === "undefined" || navigator.onLine !== false,
  waitOnline: (signal) =>
    new Promise<void>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        window.removeEventListener("online", done);
        signal.removeEventListener("abort", aborted);
        resolve();
      };
      const aborted = () => {
        clearTimeout(timer);
        window.removeEventListener("online", done);
        reject(new AbortedError());
      };
      const timer = setTimeout(done, 15_000);
      window.addEventListener("online", done);
      signal.addEventListener("abort", aborted, { once: true });
    }),
};

export interface UploadOptions {
  api: UploadApi;
  transport: PartTransport;
  store: ResumeStore;
  /** caps the part PUTs in flight across uploads; default: this upload's own `concurrency` */
  limiter?: Limiter;
  /** parts of this file in flight at once (default 4) */
  concurrency?: number;
  /** content type to announce (audio/* or video/*) */
  contentType: string;
  /** asked once all parts are in: the settings record for the job (undefined: the user's default) */
  jobSettingsId?: () => Promise<number | undefined> | number | undefined;
  /** tries per part (or call) for errors the server answers (5xx, 429, an expired URL); network
   * failures are retried without limit, since the upload must outlive a dropped connection */
  maxAttempts?: number;
  backoff?: BackoffPolicy;
  /** pre-signed URLs last an hour; older ones are renewed before use */
  urlMaxAgeMs?: number;
  network?: NetworkMonitor;
  sleep?: Sleep;
  now?: () => number;
  random?: () => number;
  /** minimum ms between progress notifications (phase changes are told at once) */
  notifyEveryMs?: number;
}

type Disposition = "network" | "retry" | "refresh" | "fatal";

function classify(error: unknown, isPart: boolean): Disposition {
  if (error instanceof MissingEtagError) return "fatal";
  if (error instanceof NetworkError || error instanceof TypeError) return "network";
  if (error instanceof HttpError) {
    if (error.status === 0) return "network";
    if (error.status === 408 || error.status === 429 || error.status >= 500) return "retry";
    // S3 answers 403 for a pre-signed URL that has expired
    if (isPart && (error.status === 403 || error.status === 400)) return "refresh";
  }
  return "fatal";
}

function toFailure(error: unknown): UploadFailure {
  if (error instanceof HttpError) return { kind: "http", status: error.status, detail: error.detail };
  if (error instanceof MissingEtagError) return { kind: "etag" };
  return { kind: "other", message: error instanceof Error ? error.message : String(error) };
}

export class FileUpload {
  readonly file: UploadFile;
  private readonly o: Required<Omit<UploadOptions, "jobSettingsId" | "limiter">> &
    Pick<UploadOptions, "jobSettingsId">;
  private readonly limiter: Limiter;
  private readonly meter = new SpeedMeter();

  private phase: UploadPhase = "waiting";
  private uploadId: string | null = null;
  private ranges: PartRange[] = [];
  private readonly etags = new Map<number, string>();
  private readonly urls = new Map<number, { url: string; at: number }>();
  private readonly inflight = new Map<number, number>();
  private sent = 0;
  private resumed = false;
  private resumedBytes = 0;
  private retries = 0;
  private offlineWaits = 0;
  private jobId: number | null = null;
  private failure: UploadFailure | null = null;
  private controller: AbortController | null = null;
  private running: Promise<void> | null = null;
  private refreshing: Promise<void> | null = null;
  private readonly listeners = new Set<(snapshot: UploadSnapshot) => void>();
  private lastNotify = 0;

  constructor(file: UploadFile, options: UploadOptions) {
    this.file = file;
    this.o = {
      concurrency: 4,
      maxAttempts: 6,
      backoff: DEFAULT_BACKOFF,
      urlMaxAgeMs: 50 * 60 * 1000,
      network: browserNetwork,
      sleep: realSleep,
      now: Date.now,
      random: Math.random,
      notifyEveryMs: 200,
      ...options,
    };
    this.limiter = options.limiter ?? new Limiter(this.o.concurrency);
  }

  // ---------------------------------------------------------------- observing

  subscribe(listener: (snapshot: UploadSnapshot) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get bytesDone(): number {
    let done = 0;
    for (const range of this.ranges) if (this.etags.has(range.partNumber)) done += partLength(range);
    for (const loaded of this.inflight.values()) done += loaded;
    return Math.min(done, this.file.size);
  }

  snapshot(): UploadSnapshot {
    const bytesDone = this.phase === "done" ? this.file.size : this.bytesDone;
    const active = this.phase === "uploading";
    return {
      phase: this.phase,
      fileName: this.file.name,
      size: this.file.size,
      bytesDone,
      speed: active ? this.meter.speed() : null,
      secondsLeft: active ? this.meter.secondsLeft(this.file.size - bytesDone) : null,
      resumed: this.resumed,
      resumedBytes: this.resumedBytes,
      retrying: this.retries > 0,
      jobId: this.jobId,
      failure: this.failure,
    };
  }

  /** the server's id of this upload, once it has one */
  get id(): string | null {
    return this.uploadId;
  }

  private notify(force = true): void {
    const now = this.o.now();
    if (!force && now - this.lastNotify < this.o.notifyEveryMs) return;
    this.lastNotify = now;
    const snapshot = this.snapshot();
    for (const listener of this.listeners) listener(snapshot);
  }

  private setPhase(phase: UploadPhase): void {
    if (this.phase === phase) return;
    this.phase = phase;
    if (phase !== "uploading") this.meter.reset();
    this.notify();
  }

  // ---------------------------------------------------------------- control

  /** Start (or continue) the upload; resolves when it is done, paused, cancelled or failed. */
  start(): Promise<void> {
    if (this.running) return this.running;
    if (this.phase === "done" || this.phase === "cancelled") return Promise.resolve();
    this.running = this.run().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** Stop sending; parts in flight are dropped and sent again on resume. Not while completing. */
  pause(): boolean {
    if (!["waiting", "starting", "uploading", "offline"].includes(this.phase)) return false;
    this.controller?.abort();
    this.inflight.clear();
    this.setPhase("paused");
    return true;
  }

  /** Continue a paused upload, or try a failed one again. */
  resume(): Promise<void> {
    if (this.phase !== "paused" && this.phase !== "failed") return this.running ?? Promise.resolve();
    return this.start();
  }

  /** Give the upload up: S3 drops its parts and the remembered id is forgotten. */
  async cancel(): Promise<void> {
    if (this.phase === "done" || this.phase === "cancelled" || this.phase === "completing") return;
    this.controller?.abort();
    this.inflight.clear();
    this.setPhase("cancelled");
    this.o.store.remove(this.file);
    if (this.uploadId !== null) {
      try {
        await this.o.api.cancel(this.uploadId);
      } catch {
        // already gone, or offline: S3's lifecycle rule removes it after two days
      }
    }
  }

  // ---------------------------------------------------------------- the work

  private async run(): Promise<void> {
    const controller = new AbortController();
    this.controller = controller;
    const signal = controller.signal;
    this.failure = null;
    try {
      if (this.uploadId === null) {
        this.setPhase("starting");
        await this.open(signal);
      }
      if (this.missing().length > 0) {
        this.setPhase("uploading");
        this.meter.add(this.o.now(), this.sent);
        await this.uploadMissing(signal);
      }
      this.setPhase("completing");
      await this.complete(signal);
    } catch (error) {
      if (signal.aborted || isAbort(error)) return; // pause() or cancel() has set the phase
      this.inflight.clear();
      this.failure = this.failure ?? toFailure(error);
      this.setPhase("failed");
      this.notify();
    } finally {
      if (this.controller === controller) this.controller = null;
    }
  }

  private missing(): PartRange[] {
    return this.ranges.filter((range) => !this.etags.has(range.partNumber));
  }

  private setUrls(parts: UploadPartUrl[]): void {
    const at = this.o.now();
    for (const part of parts) this.urls.set(part.part_number, { url: part.url, at });
  }

  /** Take over the parts S3 lists; false if one of them does not fit this file (then start over). */
  private adopt(answer: UploadPartsResponse): boolean {
    const ranges = partRanges(this.file.size, answer.part_size);
    const lengths = new Map(ranges.map((r) => [r.partNumber, partLength(r)]));
    for (const part of answer.uploaded) {
      if (lengths.get(part.part_number) !== part.size) return false;
    }
    this.uploadId = answer.upload_id;
    this.ranges = ranges;
    this.etags.clear();
    for (const part of answer.uploaded) this.etags.set(part.part_number, part.etag);
    this.urls.clear();
    this.setUrls(answer.parts);
    return true;
  }

  private async open(signal: AbortSignal): Promise<void> {
    const { api, store } = this.o;
    const record = store.get(this.file);
    if (record) {
      let answer: UploadPartsResponse | null = null;
      try {
        answer = await this.withRetries(signal, () => api.parts(record.uploadId));
      } catch (error) {
        if (signal.aborted || isAbort(error)) throw error;
        // 400 "Unknown upload": completed, cancelled, expired or another user's; start afresh
        if (!(error instanceof HttpError && error.status === 400)) throw error;
      }
      if (answer && this.adopt(answer)) {
        this.resumed = true;
        this.resumedBytes = this.bytesDone;
        this.notify();
        return;
      }
      if (answer) await api.cancel(record.uploadId).catch(() => undefined);
      store.remove(this.file);
    }
    const started = await this.withRetries(signal, () =>
      api.start({ file_name: this.file.name, content_type: this.o.contentType, size: this.file.size }),
    );
    this.uploadId = started.upload_id;
    this.ranges = partRanges(this.file.size, started.part_size);
    this.etags.clear();
    this.urls.clear();
    this.setUrls(started.parts);
    store.put({
      uploadId: started.upload_id,
      partSize: started.part_size,
      fileName: this.file.name,
      size: this.file.size,
      lastModified: this.file.lastModified,
      startedAt: this.o.now(),
    });
  }

  /** New URLs for the parts S3 lacks; parts it has (a PUT whose answer was lost) count as done. */
  private refreshUrls(): Promise<void> {
    if (!this.refreshing) {
      const uploadId = this.uploadId as string;
      this.refreshing = this.o.api
        .parts(uploadId)
        .then((answer) => {
          this.setUrls(answer.parts);
          for (const part of answer.uploaded) {
            const range = this.ranges[part.part_number - 1];
            if (range && partLength(range) === part.size && !this.etags.has(part.part_number)) {
              this.etags.set(part.part_number, part.etag);
            }
          }
        })
        .finally(() => {
          this.refreshing = null;
        });
    }
    return this.refreshing;
  }

  private async uploadMissing(parent: AbortSignal): Promise<void> {
    const queue = this.missing();
    const child = new AbortController();
    const onAbort = () => child.abort();
    parent.addEventListener("abort", onAbort, { once: true });
    let next = 0;
    let firstError: unknown = null;
    const worker = async () => {
      while (next < queue.length && !child.signal.aborted) {
        const range = queue[next++];
        try {
          await this.uploadPart(range, child.signal);
        } catch (error) {
          if (firstError === null && !isAbort(error)) firstError = error;
          child.abort();
        }
      }
    };
    const workers = Math.max(1, Math.min(this.o.concurrency, queue.length));
    await Promise.all(Array.from({ length: workers }, worker));
    parent.removeEventListener("abort", onAbort);
    if (parent.aborted) throw new AbortedError();
    if (firstError !== null) throw firstError;
  }

  private async uploadPart(range: PartRange, signal: AbortSignal): Promise<void> {
    const n = range.partNumber;
    const counts = { failures: 0, network: 0 };
    for (;;) {
      if (this.etags.has(n)) return;
      let error: unknown = null;
      const release = await this.limiter.acquire(signal);
      try {
        const known = this.urls.get(n);
        if (!known || this.o.now() - known.at > this.o.urlMaxAgeMs) await this.refreshUrls();
        if (this.etags.has(n)) return;
        const url = this.urls.get(n)?.url;
        if (!url) throw new Error(`the server gave no URL for part ${n}`);
        const etag = await this.o.transport.put(url, this.file.slice(range.start, range.end), {
          signal,
          onProgress: (loaded) => {
            const before = this.inflight.get(n) ?? 0;
            if (loaded > before) this.sent += loaded - before;
            this.inflight.set(n, Math.min(loaded, partLength(range)));
            this.meter.add(this.o.now(), this.sent);
            this.notify(false);
          },
        });
        const before = this.inflight.get(n) ?? 0;
        this.sent += Math.max(0, partLength(range) - before);
        this.inflight.delete(n);
        this.etags.set(n, etag);
        this.meter.add(this.o.now(), this.sent);
        if (counts.failures + counts.network > 0) this.retries--;
        this.notify();
        return;
      } catch (caught) {
        this.inflight.delete(n);
        error = caught;
      } finally {
        release();
      }
      if (signal.aborted || isAbort(error)) throw new AbortedError();
      if (counts.failures + counts.network === 0) this.retries++;
      this.notify();
      try {
        await this.afterFailure(error, n, counts, signal);
      } catch (fatal) {
        this.retries--;
        throw fatal;
      }
    }
  }

  /** Wait before the next try, or throw when there is no point in another. */
  private async afterFailure(error: unknown, partNumber: number | undefined,
                             counts: { failures: number; network: number }, signal: AbortSignal): Promise<void> {
    const disposition = classify(error, partNumber !== undefined);
    if (disposition === "fatal") throw error;
    if (disposition === "network") {
      if (!this.o.network.online()) {
        await this.waitOnline(signal);
        counts.network = 0;
        return;
      }
      counts.network++;
      await this.o.sleep(backoffDelay(counts.network, this.o.backoff, this.o.random), signal);
      return;
    }
    counts.failures++;
    if (counts.failures >= this.o.maxAttempts) throw error;
    await this.o.sleep(backoffDelay(counts.failures, this.o.backoff, this.o.random), signal);
    // an expired or refused URL: the next try asks the server for a fresh one
    if (disposition === "refresh" && partNumber !== undefined) this.urls.delete(partNumber);
  }

  private async waitOnline(signal: AbortSignal): Promise<void> {
    const previous = this.phase;
    this.offlineWaits++;
    this.setPhase("offline");
    try {
      await this.o.network.waitOnline(signal);
    } finally {
      this.offlineWaits--;
      if (this.offlineWaits === 0 && this.phase === "offline") this.setPhase(previous === "offline" ? "uploading" : previous);
    }
  }

  /** An API call, tried again after network failures (without limit) and server faults. */
  private async withRetries<T>(signal: AbortSignal, call: () => Promise<T>,
                               onFailure?: (error: unknown) => void): Promise<T> {
    const counts = { failures: 0, network: 0 };
    for (;;) {
      if (signal.aborted) throw new AbortedError();
      try {
        const result = await call();
        if (counts.failures + counts.network > 0) {
          this.retries--;
          this.notify();
        }
        return result;
      } catch (error) {
        if (signal.aborted || isAbort(error)) throw new AbortedError();
        onFailure?.(error);
        if (counts.failures + counts.network === 0) this.retries++;
        this.notify();
        try {
          await this.afterFailure(error, undefined, counts, signal);
        } catch (fatal) {
          this.retries--;
          throw fatal;
        }
      }
    }
  }

  private async complete(signal: AbortSignal): Promise<void> {
    const { api, store } = this.o;
    const jobSettingsId = await this.o.jobSettingsId?.();
    const parts = [...this.etags.entries()]
      .sort(([a], [b]) => a - b)
      .map(([part_number, etag]) => ({ part_number, etag }));
    let answerLost = false;
    try {
      this.jobId = await this.withRetries(signal,
        () => api.complete(this.uploadId as string, parts, jobSettingsId),
        (error) => {
          if (classify(error, false) !== "fatal") answerLost = true;
        });
    } catch (error) {
      if (error instanceof HttpError) {
        if (error.status === 400 && answerLost && /unknown upload/i.test(error.detail ?? "")) {
          store.remove(this.file);
          this.failure = { kind: "maybe_submitted" };
        } else if (error.status === 413 || error.status === 415) {
          store.remove(this.file); // the server has deleted the file
        }
      }
      throw error;
    }
    store.remove(this.file);
    this.setPhase("done");
  }
}
