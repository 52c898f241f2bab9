import { describe, expect, it } from "vitest";
import { JobEvents } from "./events";
import type { EventSourceLike, JobEvent } from "./events";
import { JobStore } from "./store";
import type { JobInfo, JobsApi } from "./store";
import { applicationDefaults } from "../settings/model";

class FakeSource implements EventSourceLike {
  readyState = 0;
  onopen: ((event: Event) => void) | null = null;
  onerror: ((event: Event) => void) | null = null;
  closed = false;
  private readonly listeners = new Map<string, Array<(event: MessageEvent) => void>>();
  constructor(readonly url: string) {}
  addEventListener(type: string, listener: (event: MessageEvent) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }
  close(): void {
    this.closed = true;
    this.readyState = 2;
  }
  open(): void {
    this.readyState = 1;
    this.onopen?.(new Event("open"));
  }
  emit(type: string, data: string): void {
    for (const l of this.listeners.get(type) ?? []) l({ data } as MessageEvent);
  }
  /** the response ended: the browser reconnects by itself */
  end(): void {
    this.readyState = 0;
    this.onerror?.(new Event("error"));
  }
  /** an HTTP error: the browser gives up */
  fail(): void {
    this.readyState = 2;
    this.onerror?.(new Event("error"));
  }
}

function eventsSetup() {
  const sources: FakeSource[] = [];
  const events: JobEvent[] = [];
  const statuses: string[] = [];
  const timers: Array<{ callback: () => void; ms: number }> = [];
  let resyncs = 0;
  let now = 0;
  const client = new JobEvents({
    onEvent: (e) => events.push(e),
    onResync: () => resyncs++,
    onStatus: (s) => statuses.push(s),
    factory: (url) => {
      const source = new FakeSource(url);
      sources.push(source);
      return source;
    },
    now: () => now,
    setTimer: (callback, ms) => timers.push({ callback, ms }),
    clearTimer: () => undefined,
  });
  return { client, sources, events, statuses, timers, resyncs: () => resyncs, advance: (ms: number) => (now += ms) };
}

describe("the event stream client", () => {
  it("passes job events on and keeps the wisp_position", () => {
    const { client, sources, events, resyncs } = eventsSetup();
    client.start();
    expect(sources[0].url).toBe("api/jobs/events");
    sources[0].open();
    expect(resyncs()).toBe(1); // a first connection replays nothing: read the list afresh
    sources[0].emit("job_created", "17");
    sources[0].emit("job_updated", "17");
    sources[0].emit("wisp_position", "41~p17:35~c3f9~o1764460800");
    expect(events).toEqual([{ type: "job_created", jobId: 17 }, { type: "job_updated", jobId: 17 }]);
    expect(client.lastPosition).toBe("41~p17:35~c3f9~o1764460800");
  });

  it("takes a response that ends as routine: the browser reconnects, nothing else happens", () => {
    const { client, sources, statuses, timers } = eventsSetup();
    client.start();
    sources[0].open();
    sources[0].end();
    sources[0].open();
    expect(sources).toHaveLength(1);
    expect(timers).toHaveLength(0);
    expect(statuses).toEqual(["connecting", "live"]);
  });

  it("opens a new EventSource at the last position when the browser gave up", () => {
    const { client, sources, timers, statuses, resyncs } = eventsSetup();
    client.start();
    sources[0].open();
    sources[0].emit("wisp_position", "41~c3f9~o1");
    sources[0].fail();
    expect(sources[0].closed).toBe(true);
    expect(statuses[statuses.length - 1]).toBe("reconnecting");
    expect(timers.map((t) => t.ms)).toEqual([2000]);
    timers[0].callback();
    expect(sources[1].url).toBe("api/jobs/events?last_event_id=41~c3f9~o1".replace("~c3f9~o1", encodeURIComponent("~c3f9~o1")));
    sources[1].fail();
    expect(timers.map((t) => t.ms)).toEqual([2000, 4000]);
    timers[1].callback();
    const before = resyncs();
    sources[2].open();
    expect(resyncs()).toBe(before); // the server replays from the position
    expect(statuses[statuses.length - 1]).toBe("live");
  });

  it("does not trust a position older than the server's log", () => {
    const { client, sources, timers, advance } = eventsSetup();
    client.start();
    sources[0].open();
    sources[0].emit("wisp_position", "41~c3f9~o1");
    advance(11 * 60 * 1000);
    sources[0].fail();
    timers[0].callback();
    expect(sources[1].url).toBe("api/jobs/events");
  });
});

function job(id: number, step: JobInfo["step"], extra: Partial<JobInfo> = {}): JobInfo {
  return {
    id, step, progress: 0, abort: false, creation_timestamp: "2026-01-01T00:00:00Z", file_name: `file${id}.wav`,
    finish_timestamp: null, runner_name: null, runner_id: null, runner_version: null, runner_git_hash: null,
    runner_source_code_url: null, downloaded: null, error_msg: null, settings: applicationDefaults(), ...extra,
  };
}

function storeSetup(jobs: JobInfo[]) {
  const db = new Map(jobs.map((j) => [j.id, j]));
  const calls: string[] = [];
  const api: JobsApi = {
    count: async (excludeFinished) => {
      calls.push(`count:${excludeFinished}`);
      return [...db.values()].filter((j) => !excludeFinished || !["success", "failed", "downloaded"].includes(j.step)).length;
    },
    ids: async (start, end, _key, descending, excludeFinished) => {
      calls.push(`ids:${start}-${end}`);
      const ids = [...db.values()]
        .filter((j) => !excludeFinished || !["success", "failed", "downloaded"].includes(j.step))
        .map((j) => j.id)
        .sort((a, b) => (descending ? b - a : a - b));
      return ids.slice(start, end + 1);
    },
    info: async (ids) => {
      calls.push(`info:${ids.join(",")}`);
      return ids.map((id) => db.get(id)).filter((j): j is JobInfo => !!j);
    },
    abort: async (ids) => void calls.push(`abort:${ids.join(",")}`),
    remove: async (ids) => {
      calls.push(`delete:${ids.join(",")}`);
      for (const id of ids) db.delete(id);
    },
  };
  const timers: Array<() => void> = [];
  const store = new JobStore(api, { setTimer: (cb) => timers.push(cb), clearTimer: () => undefined });
  const flush = async () => {
    while (timers.length) timers.shift()!();
    await new Promise((r) => setTimeout(r, 0));
  };
  return { db, calls, store, flush };
}

describe("the job store", () => {
  it("reads one page when the API can filter, newest first", async () => {
    const { store, calls } = storeSetup([1, 2, 3, 4, 5].map((id) => job(id, "success")));
    await store.setQuery({ pageSize: 2, page: 1 });
    expect(store.snapshot.jobs.map((j) => j.id)).toEqual([3, 2]);
    expect(store.snapshot.total).toBe(5);
    expect(calls).toEqual(["count:false", "ids:2-3", "info:3,2"]);
  });

  it("filters by status group and text over all jobs", async () => {
    const { store } = storeSetup([
      job(1, "failed", { error_msg: "out of memory" }), job(2, "success"), job(3, "downloaded"),
      job(4, "runner_in_progress"), job(5, "failed", { file_name: "meeting.mp3" }),
    ]);
    await store.setQuery({ status: "failed" });
    expect(store.snapshot.jobs.map((j) => j.id)).toEqual([5, 1]);
    await store.setQuery({ text: "memory" });
    expect(store.snapshot.jobs.map((j) => j.id)).toEqual([1]);
    await store.setQuery({ status: "done", text: "" });
    expect(store.snapshot.jobs.map((j) => j.id)).toEqual([3, 2]);
    await store.setQuery({ status: "active" });
    expect(store.snapshot.jobs.map((j) => j.id)).toEqual([4]);
  });

  it("re-reads a shown job on job_updated, and the list on job_created", async () => {
    const { store, db, calls, flush } = storeSetup([job(1, "runner_in_progress", { progress: 10 })]);
    await store.load();
    db.set(1, job(1, "runner_in_progress", { progress: 55 }));
    calls.length = 0;
    store.handle({ type: "job_updated", jobId: 1 });
    store.handle({ type: "job_updated", jobId: 1 });
    await flush();
    expect(calls).toEqual(["info:1"]);
    expect(store.snapshot.jobs[0].progress).toBe(55);
    db.set(2, job(2, "pending_runner"));
    calls.length = 0;
    store.handle({ type: "job_created", jobId: 2 });
    await flush();
    expect(store.snapshot.jobs.map((j) => j.id)).toEqual([2, 1]);
  });

  it("aborts and deletes only the selected jobs the action applies to", async () => {
    const { store, calls, flush } = storeSetup([job(1, "success"), job(2, "runner_in_progress"), job(3, "failed"), job(4, "aborting")]);
    await store.load();
    store.selectAll(true);
    const aborted = await store.abort();
    expect(aborted).toEqual({ done: [2], skipped: [4, 3, 1] });
    const deleted = await store.remove();
    expect(deleted).toEqual({ done: [3, 1], skipped: [4, 2] });
    expect(calls).toContain("abort:2");
    expect(calls).toContain("delete:3,1");
    await flush();
    expect(store.snapshot.jobs.map((j) => j.id)).toEqual([4, 2]);
    expect([...store.snapshot.selected].sort()).toEqual([2, 4]);
  });

  it("goes back to the last page when its jobs are gone", async () => {
    const { store, db } = storeSetup([1, 2, 3].map((id) => job(id, "success")));
    await store.setQuery({ pageSize: 2, page: 1 });
    expect(store.snapshot.jobs.map((j) => j.id)).toEqual([1]);
    db.delete(1);
    await store.load();
    expect(store.snapshot.query.page).toBe(0);
    expect(store.snapshot.jobs.map((j) => j.id)).toEqual([3, 2]);
  });
});
