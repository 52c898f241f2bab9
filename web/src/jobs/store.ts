// The jobs list: which jobs are shown (filter, sort, page), their details, kept current by the
// event stream, and the bulk actions.
//
// The API sorts (creation time or file name) and can leave out finished jobs; everything else
// (a status group, a text search) needs the details of every job, so the store reads all of them
// then (in batches) and filters here. Without such a filter only the shown page is read.
import type { JobEvent } from "./events";
import type { components } from "../api/schema";
import { canAbort, isFinished, matchesStatus } from "./status";
import type { StatusFilter } from "./status";

/** A job as GET /api/jobs/info answers (the generated client's type). */
export type JobInfo = components["schemas"]["JobInfoResponse"];

export type SortKey = components["schemas"]["JobSortKey"];

export interface JobQuery {
  status: StatusFilter;
  text: string;
  sortKey: SortKey;
  descending: boolean;
  /** 0-based */
  page: number;
  pageSize: number;
}

export const DEFAULT_QUERY: JobQuery = {
  status: "all",
  text: "",
  sortKey: "creation_time",
  descending: true,
  page: 0,
  pageSize: 20,
};

export interface JobsApi {
  count(excludeFinished: boolean): Promise<number>;
  /** ids at positions start..end inclusive */
  ids(start: number, end: number, sortKey: SortKey, descending: boolean, excludeFinished: boolean): Promise<number[]>;
  info(ids: number[]): Promise<JobInfo[]>;
  abort(ids: number[]): Promise<void>;
  remove(ids: number[]): Promise<void>;
}

export interface JobsState {
  query: JobQuery;
  /** the jobs on the current page, in order */
  jobs: JobInfo[];
  /** jobs matching the filter (all pages) */
  total: number;
  loading: boolean;
  /** the last load failed with this; the list shows what it had */
  error: unknown;
  selected: ReadonlySet<number>;
}

export interface BulkResult {
  /** ids the action was sent for */
  done: number[];
  /** selected ids the action does not apply to (e.g. abort of a finished job) */
  skipped: number[];
}

/** Ids per `info` request (the API takes up to 1000; URLs stay short with fewer). */
export const INFO_BATCH = 100;

function textMatches(job: JobInfo, text: string): boolean {
  const needle = text.trim().toLowerCase();
  if (!needle) return true;
  return [job.file_name, String(job.id), job.runner_name ?? "", job.error_msg ?? ""]
    .some((field) => field.toLowerCase().includes(needle));
}

export interface StoreOptions {
  /** ms to gather events before acting on them */
  debounceMs?: number;
  setTimer?: (callback: () => void, ms: number) => unknown;
  clearTimer?: (timer: unknown) => void;
}

export class JobStore {
  private state: JobsState = {
    query: DEFAULT_QUERY,
    jobs: [],
    total: 0,
    loading: false,
    error: null,
    selected: new Set(),
  };
  private readonly listeners = new Set<(state: JobsState) => void>();
  private generation = 0;
  private reloadTimer: unknown = null;
  private refreshTimer: unknown = null;
  private readonly pendingUpdates = new Set<number>();
  private readonly o: Required<StoreOptions>;

  constructor(private readonly api: JobsApi, options: StoreOptions = {}) {
    this.o = {
      debounceMs: 250,
      setTimer: (callback, ms) => setTimeout(callback, ms),
      clearTimer: (timer) => clearTimeout(timer as ReturnType<typeof setTimeout>),
      ...options,
    };
  }

  get snapshot(): JobsState {
    return this.state;
  }

  subscribe(listener: (state: JobsState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private set(patch: Partial<JobsState>): void {
    this.state = { ...this.state, ...patch };
    for (const listener of this.listeners) listener(this.state);
  }

  /** Change the filter, sort or page, and load. A new filter or sort goes back to page 0. */
  setQuery(patch: Partial<JobQuery>): Promise<void> {
    const query = { ...this.state.query, ...patch };
    if (patch.page === undefined && (patch.status !== undefined || patch.text !== undefined ||
        patch.sortKey !== undefined || patch.descending !== undefined || patch.pageSize !== undefined)) {
      query.page = 0;
    }
    this.set({ query });
    return this.load();
  }

  private needsAll(query: JobQuery): boolean {
    return query.text.trim() !== "" || (query.status !== "all" && query.status !== "active");
  }

  private matches(job: JobInfo, query: JobQuery): boolean {
    return matchesStatus(job.step, query.status) && textMatches(job, query.text);
  }

  private async infoFor(ids: number[]): Promise<Map<number, JobInfo>> {
    const found = new Map<number, JobInfo>();
    for (let i = 0; i < ids.length; i += INFO_BATCH) {
      for (const job of await this.api.info(ids.slice(i, i + INFO_BATCH))) found.set(job.id, job);
    }
    return found;
  }

  /** Read the current page (or everything, for a filter the API cannot do) afresh. */
  async load(): Promise<void> {
    const generation = ++this.generation;
    const query = this.state.query;
    this.set({ loading: true });
    try {
      const excludeFinished = query.status === "active";
      const count = await this.api.count(excludeFinished);
      let jobs: JobInfo[];
      let total: number;
      if (this.needsAll(query)) {
        const ids = count > 0 ? await this.api.ids(0, count - 1, query.sortKey, query.descending, excludeFinished) : [];
        const infos = await this.infoFor(ids);
        const matching = ids.map((id) => infos.get(id)).filter((j): j is JobInfo => !!j && this.matches(j, query));
        total = matching.length;
        const start = query.page * query.pageSize;
        jobs = matching.slice(start, start + query.pageSize);
      } else {
        total = count;
        const start = query.page * query.pageSize;
        const ids = start < count
          ? await this.api.ids(start, Math.min(count, start + query.pageSize) - 1, query.sortKey, query.descending, excludeFinished)
          : [];
        const infos = await this.infoFor(ids);
        jobs = ids.map((id) => infos.get(id)).filter((j): j is JobInfo => !!j);
      }
      if (generation !== this.generation) return;
      // a page beyond the end (the last jobs of the last page were deleted): show the last page
      const lastPage = Math.max(0, Math.ceil(total / query.pageSize) - 1);
      if (query.page > lastPage) {
        this.set({ query: { ...query, page: lastPage } });
        return this.load();
      }
      const ids = new Set(jobs.map((j) => j.id));
      const selected = new Set([...this.state.selected].filter((id) => ids.has(id)));
      this.set({ jobs, total, loading: false, error: null, selected });
    } catch (error) {
      if (generation !== this.generation) return;
      this.set({ loading: false, error });
    }
  }

  // ---------------------------------------------------------------- live updates

  /** Feed one event of the stream. */
  handle(event: JobEvent): void {
    if (event.type === "job_updated" && this.state.jobs.some((j) => j.id === event.jobId)) {
      this.pendingUpdates.add(event.jobId);
      if (this.refreshTimer === null) {
        this.refreshTimer = this.o.setTimer(() => {
          this.refreshTimer = null;
          void this.refreshPending();
        }, this.o.debounceMs);
      }
      return;
    }
    if (event.type === "job_updated" && !this.needsAll(this.state.query) && this.state.query.status !== "active") {
      return; // a job on another page: nothing shown changes
    }
    // created, deleted, or an update that may move a job into or out of a filter
    this.scheduleReload();
  }

  scheduleReload(): void {
    if (this.reloadTimer !== null) return;
    this.reloadTimer = this.o.setTimer(() => {
      this.reloadTimer = null;
      void this.load();
    }, this.o.debounceMs);
  }

  private async refreshPending(): Promise<void> {
    const ids = [...this.pendingUpdates];
    this.pendingUpdates.clear();
    const generation = this.generation;
    let infos: Map<number, JobInfo>;
    try {
      infos = await this.infoFor(ids);
    } catch {
      this.scheduleReload();
      return;
    }
    if (generation !== this.generation) return;
    let leftFilter = false;
    const jobs = this.state.jobs.map((job) => {
      const fresh = infos.get(job.id);
      if (!fresh) return job;
      if (!this.matches(fresh, this.state.query)) leftFilter = true;
      return fresh;
    });
    this.set({ jobs });
    if (leftFilter || ids.some((id) => !infos.has(id))) this.scheduleReload();
  }

  dispose(): void {
    if (this.reloadTimer !== null) this.o.clearTimer(this.reloadTimer);
    if (this.refreshTimer !== null) this.o.clearTimer(this.refreshTimer);
    this.reloadTimer = this.refreshTimer = null;
    this.generation++;
    this.listeners.clear();
  }

  // ---------------------------------------------------------------- selection and bulk actions

  toggle(id: number, on?: boolean): void {
    const selected = new Set(this.state.selected);
    if (on ?? !selected.has(id)) selected.add(id);
    else selected.delete(id);
    this.set({ selected });
  }

  selectAll(on: boolean): void {
    this.set({ selected: on ? new Set(this.state.jobs.map((j) => j.id)) : new Set() });
  }

  private split(ids: Iterable<number>, eligible: (step: string) => boolean): BulkResult {
    const byId = new Map(this.state.jobs.map((j) => [j.id, j]));
    const result: BulkResult = { done: [], skipped: [] };
    for (const id of ids) {
      const job = byId.get(id);
      (job && eligible(job.step) ? result.done : result.skipped).push(id);
    }
    return result;
  }

  /** Abort the selected (or given) jobs that can be aborted; the others are left alone. */
  async abort(ids: Iterable<number> = this.state.selected): Promise<BulkResult> {
    const result = this.split(ids, canAbort);
    if (result.done.length) {
      await this.api.abort(result.done);
      this.scheduleReload();
    }
    return result;
  }

  /** Delete the selected (or given) finished jobs; unfinished ones are left alone. */
  async remove(ids: Iterable<number> = this.state.selected): Promise<BulkResult> {
    const result = this.split(ids, isFinished);
    if (result.done.length) {
      await this.api.remove(result.done);
      const gone = new Set(result.done);
      const selected = new Set([...this.state.selected].filter((id) => !gone.has(id)));
      this.set({ jobs: this.state.jobs.filter((j) => !gone.has(j.id)), selected });
      this.scheduleReload();
    }
    return result;
  }
}
