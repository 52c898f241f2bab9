// Test doubles for the upload engine: an in-memory S3 multipart upload behind fake API routes.
// Used by the unit tests only.
import { HttpError, NetworkError, AbortedError } from "./errors";
import { partCount } from "./parts";
import type { KeyValueStorage } from "./resumeStore";
import type { CompletedPart, PartTransport, PutOptions, UploadApi, UploadFile } from "./types";

export function makeFile(name: string, size: number, lastModified = 1_700_000_000_000, type = "audio/wav"): UploadFile {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = i % 251;
  const blob = new Blob([bytes]);
  return { name, size, lastModified, type, slice: (start?: number, end?: number) => blob.slice(start, end) };
}

export function memoryStorage(): KeyValueStorage & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return {
    data,
    getItem: (k) => data.get(k) ?? null,
    setItem: (k, v) => void data.set(k, v),
    removeItem: (k) => void data.delete(k),
  };
}

interface FakeUpload {
  size: number;
  partSize: number;
  parts: Map<number, { etag: string; size: number }>;
  completed: boolean;
  cancelled: boolean;
  /** URLs issued before this version answer 403, as expired pre-signed URLs do */
  urlVersion: number;
}

/** What a PUT does instead of storing: throw, or wait for something. */
export type PutHook = (partNumber: number, options: PutOptions) => Promise<void> | void;

export class FakeServer {
  readonly uploads = new Map<string, FakeUpload>();
  readonly calls: string[] = [];
  readonly puts: Array<{ uploadId: string; partNumber: number; version: number }> = [];
  partSize: number;
  /** hooks run before a PUT stores its part, keyed by part number ("*" for all) */
  readonly putHooks = new Map<number | "*", PutHook[]>();
  /** errors the next API calls throw, keyed by call name */
  readonly apiFailures = new Map<string, unknown[]>();
  inFlight = 0;
  maxInFlight = 0;
  private next = 1;

  constructor(partSize = 4) {
    this.partSize = partSize;
  }

  failPut(partNumber: number | "*", ...hooks: PutHook[]): void {
    this.putHooks.set(partNumber, [...(this.putHooks.get(partNumber) ?? []), ...hooks]);
  }

  failApi(name: "start" | "parts" | "complete" | "cancel", ...errors: unknown[]): void {
    this.apiFailures.set(name, [...(this.apiFailures.get(name) ?? []), ...errors]);
  }

  private maybeFail(name: string): void {
    const queue = this.apiFailures.get(name);
    if (queue && queue.length) throw queue.shift();
  }

  private urls(id: string, upload: FakeUpload, missingOnly: boolean) {
    const result = [];
    for (let n = 1; n <= partCount(upload.size, upload.partSize); n++) {
      if (missingOnly && upload.parts.has(n)) continue;
      result.push({ part_number: n, url: `fake://${id}/${n}?v=${upload.urlVersion}` });
    }
    return result;
  }

  private get(id: string): FakeUpload {
    const upload = this.uploads.get(id);
    if (!upload || upload.completed || upload.cancelled) throw new HttpError(400, "Unknown upload");
    return upload;
  }

  /** make every URL issued so far expire */
  expireUrls(): void {
    for (const upload of this.uploads.values()) upload.urlVersion++;
  }

  readonly api: UploadApi = {
    start: async (request) => {
      this.calls.push("start");
      this.maybeFail("start");
      const id = `up${this.next++}`;
      const upload: FakeUpload = { size: request.size, partSize: this.partSize, parts: new Map(), completed: false,
                                   cancelled: false, urlVersion: 0 };
      this.uploads.set(id, upload);
      return { upload_id: id, key: `uploads/1/${id}`, part_size: upload.partSize, parts: this.urls(id, upload, false) };
    },
    parts: async (id) => {
      this.calls.push("parts");
      this.maybeFail("parts");
      const upload = this.get(id);
      return {
        upload_id: id,
        key: `uploads/1/${id}`,
        part_size: upload.partSize,
        uploaded: [...upload.parts.entries()].map(([part_number, p]) => ({ part_number, etag: p.etag, size: p.size })),
        parts: this.urls(id, upload, true),
      };
    },
    complete: async (id, parts: CompletedPart[], jobSettingsId) => {
      this.calls.push(`complete:${jobSettingsId ?? "-"}`);
      this.maybeFail("complete");
      const upload = this.get(id);
      const expected = partCount(upload.size, upload.partSize);
      const ok = parts.length === expected &&
        parts.every((p, i) => p.part_number === i + 1 && upload.parts.get(p.part_number)?.etag === p.etag);
      if (!ok) throw new HttpError(400, "The upload could not be completed");
      upload.completed = true;
      return 100 + Number(id.slice(2));
    },
    cancel: async (id) => {
      this.calls.push("cancel");
      this.maybeFail("cancel");
      this.get(id).cancelled = true;
    },
  };

  readonly transport: PartTransport = {
    put: async (url, body, options) => {
      const match = /^fake:\/\/([^/]+)\/(\d+)\?v=(\d+)$/.exec(url);
      if (!match) throw new Error(`bad url ${url}`);
      const [, id, n, v] = match;
      const partNumber = Number(n);
      this.puts.push({ uploadId: id, partNumber, version: Number(v) });
      this.inFlight++;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      try {
        if (options.signal.aborted) throw new AbortedError();
        await Promise.resolve();
        options.onProgress(Math.floor(body.size / 2));
        const hook = this.putHooks.get(partNumber)?.shift() ?? this.putHooks.get("*")?.shift();
        if (hook) await hook(partNumber, options);
        const upload = this.uploads.get(id);
        if (!upload || upload.cancelled || upload.completed) throw new HttpError(404, "NoSuchUpload");
        if (Number(v) < upload.urlVersion) throw new HttpError(403, "AccessDenied");
        options.onProgress(body.size);
        const etag = `"etag-${id}-${partNumber}-${body.size}"`;
        upload.parts.set(partNumber, { etag, size: body.size });
        return etag;
      } finally {
        this.inFlight--;
      }
    },
  };
}

export const networkDrop: PutHook = () => {
  throw new NetworkError();
};

export const serverFault: PutHook = () => {
  throw new HttpError(500, "InternalError");
};

/** A PUT that hangs until it is aborted (a pause, a cancel). */
export const hangUntilAborted: PutHook = (_n, { signal }) =>
  new Promise<void>((_resolve, reject) => {
    signal.addEventListener("abort", () => reject(new AbortedError()), { once: true });
  });

export function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
