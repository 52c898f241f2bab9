// Unfinished uploads kept in localStorage, so that selecting the same file again after a reload
// continues the upload instead of starting over. A file is recognised by name, size and
// last-modified time (the browser gives no path and reading the whole file to hash it would take
// as long as uploading it).

export interface ResumeRecord {
  uploadId: string;
  partSize: number;
  fileName: string;
  size: number;
  lastModified: number;
  /** epoch ms when the upload was started */
  startedAt: number;
}

export interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export const STORAGE_KEY = "wisp.uploads.v1";
/** S3's lifecycle rule drops unfinished uploads after two days; older records are useless. */
export const MAX_AGE_MS = 2 * 24 * 3600 * 1000;

export function fileKey(file: { name: string; size: number; lastModified: number }): string {
  return JSON.stringify([file.name, file.size, file.lastModified]);
}

function memoryStorage(): KeyValueStorage {
  const data = new Map<string, string>();
  return {
    getItem: (k) => data.get(k) ?? null,
    setItem: (k, v) => void data.set(k, v),
    removeItem: (k) => void data.delete(k),
  };
}

function defaultStorage(): KeyValueStorage {
  try {
    if (typeof localStorage !== "undefined") return localStorage;
  } catch {
    // storage disabled (privacy settings): uploads still work, only without resume after reload
  }
  return memoryStorage();
}

export class ResumeStore {
  private readonly storage: KeyValueStorage;

  constructor(storage?: KeyValueStorage, private readonly now: () => number = Date.now) {
    this.storage = storage ?? defaultStorage();
  }

  private read(): Record<string, ResumeRecord> {
    let all: Record<string, ResumeRecord> = {};
    try {
      const raw = this.storage.getItem(STORAGE_KEY);
      const parsed: unknown = raw ? JSON.parse(raw) : {};
      if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) all = parsed as Record<string, ResumeRecord>;
    } catch {
      all = {};
    }
    const fresh: Record<string, ResumeRecord> = {};
    for (const [key, record] of Object.entries(all)) {
      if (record && typeof record.uploadId === "string" && this.now() - record.startedAt < MAX_AGE_MS) {
        fresh[key] = record;
      }
    }
    return fresh;
  }

  private write(all: Record<string, ResumeRecord>): void {
    try {
      if (Object.keys(all).length === 0) this.storage.removeItem(STORAGE_KEY);
      else this.storage.setItem(STORAGE_KEY, JSON.stringify(all));
    } catch {
      // quota or disabled storage: resume after reload is lost, nothing else
    }
  }

  get(file: { name: string; size: number; lastModified: number }): ResumeRecord | null {
    return this.read()[fileKey(file)] ?? null;
  }

  put(record: ResumeRecord): void {
    const all = this.read();
    all[fileKey({ name: record.fileName, size: record.size, lastModified: record.lastModified })] = record;
    this.write(all);
  }

  remove(file: { name: string; size: number; lastModified: number }): void {
    const all = this.read();
    delete all[fileKey(file)];
    this.write(all);
  }

  /** every unfinished upload this browser knows, oldest first */
  list(): ResumeRecord[] {
    return Object.values(this.read()).sort((a, b) => a.startedAt - b.startedAt);
  }
}
