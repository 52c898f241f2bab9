// Many files at once: a few uploads run at a time (each one is an open S3 upload, and the server
// allows a user a limited number), and their part PUTs share one limiter.
import { FileUpload } from "./engine";
import type { UploadOptions, UploadSnapshot } from "./engine";
import { Limiter } from "./limiter";
import { mediaType } from "./mime";
import { fileKey, ResumeStore } from "./resumeStore";
import type { ResumeRecord } from "./resumeStore";
import type { PartTransport, UploadApi, UploadFile } from "./types";

export interface ManagedUpload {
  key: string;
  upload: FileUpload;
  snapshot: UploadSnapshot;
}

export interface ManagerOptions {
  api: UploadApi;
  transport: PartTransport;
  store?: ResumeStore;
  /** files uploading at once (default 3) */
  parallelFiles?: number;
  /** part PUTs in flight over all files (default 6) */
  parallelParts?: number;
  /** passed on to each FileUpload (tests: sleep, clock, network) */
  engine?: Partial<UploadOptions>;
}

export interface AddResult {
  added: ManagedUpload[];
  /** files that are neither audio nor video by type or name */
  rejected: UploadFile[];
  /** files already in the list (a paused or failed one is resumed instead) */
  duplicates: UploadFile[];
}

const ACTIVE = new Set(["starting", "uploading", "offline", "completing"]);

export class UploadManager {
  readonly store: ResumeStore;
  private readonly limiter: Limiter;
  private readonly entries: ManagedUpload[] = [];
  private readonly listeners = new Set<() => void>();
  private readonly parallelFiles: number;

  constructor(private readonly options: ManagerOptions) {
    this.store = options.store ?? new ResumeStore();
    this.limiter = new Limiter(options.parallelParts ?? 6);
    this.parallelFiles = options.parallelFiles ?? 3;
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }

  get items(): readonly ManagedUpload[] {
    return this.entries;
  }

  /**
   * Queue files. `jobSettingsId` is asked when a file's parts are all in (once per file; share
   * one promise for a batch).
   */
  add(files: Iterable<UploadFile>, jobSettingsId?: () => Promise<number | undefined>): AddResult {
    const result: AddResult = { added: [], rejected: [], duplicates: [] };
    for (const file of files) {
      const contentType = mediaType(file);
      if (contentType === null) {
        result.rejected.push(file);
        continue;
      }
      const key = fileKey(file);
      const existing = this.entries.find((e) => e.key === key && !["done", "cancelled"].includes(e.snapshot.phase));
      if (existing) {
        result.duplicates.push(file);
        if (existing.snapshot.phase === "failed" || existing.snapshot.phase === "paused") void existing.upload.resume();
        continue;
      }
      const upload = new FileUpload(file, {
        ...this.options.engine,
        api: this.options.api,
        transport: this.options.transport,
        store: this.store,
        limiter: this.limiter,
        contentType,
        jobSettingsId,
      });
      const entry: ManagedUpload = { key, upload, snapshot: upload.snapshot() };
      upload.subscribe((snapshot) => {
        const phaseChanged = snapshot.phase !== entry.snapshot.phase;
        entry.snapshot = snapshot;
        if (phaseChanged) this.pump();
        this.changed();
      });
      this.entries.push(entry);
      result.added.push(entry);
    }
    this.pump();
    this.changed();
    return result;
  }

  /** Start waiting uploads while fewer than `parallelFiles` are busy. */
  private pump(): void {
    let active = this.entries.filter((e) => ACTIVE.has(e.snapshot.phase)).length;
    for (const entry of this.entries) {
      if (active >= this.parallelFiles) break;
      if (entry.snapshot.phase === "waiting") {
        active++;
        entry.snapshot = { ...entry.snapshot, phase: "starting" };
        void entry.upload.start();
      }
    }
  }

  pauseAll(): void {
    for (const entry of this.entries) entry.upload.pause();
  }

  /** Continue paused and failed uploads (queued behind the ones running). */
  resumeAll(): void {
    for (const entry of this.entries) this.requeue(entry);
    this.pump();
    this.changed();
  }

  resume(entry: ManagedUpload): void {
    this.requeue(entry);
    this.pump();
    this.changed();
  }

  private requeue(entry: ManagedUpload): void {
    // start() continues a paused or failed upload where it stopped
    if (entry.snapshot.phase === "paused" || entry.snapshot.phase === "failed") {
      entry.snapshot = { ...entry.snapshot, phase: "waiting" };
    }
  }

  /** Drop finished, failed and cancelled uploads from the list. */
  clearFinished(): void {
    for (let i = this.entries.length - 1; i >= 0; i--) {
      if (["done", "cancelled", "failed"].includes(this.entries[i].snapshot.phase)) this.entries.splice(i, 1);
    }
    this.changed();
  }

  /** Unfinished uploads remembered from earlier visits that are not in this page's list. */
  remembered(): ResumeRecord[] {
    const here = new Set(this.entries.map((e) => e.key));
    return this.store
      .list()
      .filter((r) => !here.has(fileKey({ name: r.fileName, size: r.size, lastModified: r.lastModified })));
  }

  /** Give up a remembered upload without its file: S3 drops its parts. */
  async forget(record: ResumeRecord): Promise<void> {
    this.store.remove({ name: record.fileName, size: record.size, lastModified: record.lastModified });
    this.changed();
    await this.options.api.cancel(record.uploadId).catch(() => undefined);
  }
}
