import { describe, expect, it } from "vitest";
import { backoffDelay } from "./backoff";
import { FileUpload } from "./engine";
import type { NetworkMonitor, UploadOptions } from "./engine";
import { HttpError, NetworkError } from "./errors";
import { Limiter } from "./limiter";
import { UploadManager } from "./manager";
import { SpeedMeter } from "./meter";
import { mediaType } from "./mime";
import { partCount, partRange, partRanges } from "./parts";
import { ResumeStore, STORAGE_KEY } from "./resumeStore";
import { deferred, FakeServer, hangUntilAborted, makeFile, memoryStorage, networkDrop, serverFault } from "./testing";
import type { UploadFile } from "./types";

const online: NetworkMonitor = { online: () => true, waitOnline: async () => undefined };

function setup(partSize = 4) {
  const server = new FakeServer(partSize);
  const storage = memoryStorage();
  const store = new ResumeStore(storage);
  const delays: number[] = [];
  const options = (extra: Partial<UploadOptions> = {}): UploadOptions => ({
    api: server.api,
    transport: server.transport,
    store,
    contentType: "audio/wav",
    network: online,
    sleep: async (ms) => void delays.push(ms),
    random: () => 1,
    notifyEveryMs: 0,
    ...extra,
  });
  return { server, storage, store, delays, options };
}

function upload(file: UploadFile, options: UploadOptions) {
  return new FileUpload(file, options);
}

describe("part splitting", () => {
  it("cuts a file into part_size slices, the last one shorter", () => {
    expect(partRanges(10, 4)).toEqual([
      { partNumber: 1, start: 0, end: 4 },
      { partNumber: 2, start: 4, end: 8 },
      { partNumber: 3, start: 8, end: 10 },
    ]);
    expect(partCount(8, 4)).toBe(2);
    expect(partRanges(8, 4).map((r) => r.end - r.start)).toEqual([4, 4]);
    expect(partCount(1, 16 * 1024 * 1024)).toBe(1);
  });

  it("handles sizes beyond 2^32 without losing bytes", () => {
    const size = 50 * 1024 ** 3 + 123; // 50 GiB and a bit
    const partSize = Math.ceil(size / 10_000 / 1024 ** 2) * 1024 ** 2;
    const ranges = partRanges(size, partSize);
    expect(ranges.length).toBeLessThanOrEqual(10_000);
    expect(ranges.reduce((sum, r) => sum + (r.end - r.start), 0)).toBe(size);
    expect(ranges[ranges.length - 1].end).toBe(size);
  });

  it("refuses part numbers outside the file", () => {
    expect(() => partRange(10, 4, 0)).toThrow(RangeError);
    expect(() => partRange(10, 4, 4)).toThrow(RangeError);
    expect(() => partCount(10, 0)).toThrow(RangeError);
  });
});

describe("backoff", () => {
  it("doubles from the base up to the cap, with jitter in the upper half", () => {
    const policy = { baseMs: 100, maxMs: 1000 };
    expect([1, 2, 3, 4, 5, 6].map((a) => backoffDelay(a, policy, () => 1))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(backoffDelay(3, policy, () => 0)).toBe(200);
  });
});

describe("a whole upload", () => {
  it("sends the parts in parallel, completes with every ETag in order and forgets the id", async () => {
    const { server, options, storage } = setup(4);
    const progress: number[] = [];
    const u = upload(makeFile("talk.wav", 18), options({ concurrency: 3, jobSettingsId: async () => 7 }));
    u.subscribe((s) => progress.push(s.bytesDone));
    await u.start();
    const s = u.snapshot();
    expect(s.phase).toBe("done");
    expect(s.jobId).toBe(101);
    expect(s.failure).toBeNull();
    expect(server.calls).toEqual(["start", "complete:7"]);
    expect(server.puts.map((p) => p.partNumber).sort()).toEqual([1, 2, 3, 4, 5]);
    expect(server.maxInFlight).toBe(3);
    expect(storage.data.has(STORAGE_KEY)).toBe(false);
    // progress only grows and ends at the size
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(progress[progress.length - 1]).toBe(18);
  });

  it("keeps the upload id while it runs, keyed by name, size and lastModified", async () => {
    const { server, options, store } = setup(4);
    const gate = deferred();
    server.failPut(2, () => gate.promise);
    const file = makeFile("talk.wav", 10);
    const u = upload(file, options());
    const done = u.start();
    await new Promise((r) => setTimeout(r, 0));
    expect(store.get(file)).toMatchObject({ uploadId: "up1", partSize: 4, fileName: "talk.wav", size: 10 });
    expect(store.get({ ...file, lastModified: file.lastModified + 1 })).toBeNull();
    gate.resolve();
    await done;
    expect(store.get(file)).toBeNull();
  });

  it("shares one limiter between files", async () => {
    const { server, options } = setup(1);
    const limiter = new Limiter(2);
    const a = upload(makeFile("a.wav", 6), options({ limiter, concurrency: 4 }));
    const b = upload(makeFile("b.wav", 6, 2), options({ limiter, concurrency: 4 }));
    await Promise.all([a.start(), b.start()]);
    expect(server.maxInFlight).toBe(2);
    expect(a.snapshot().phase).toBe("done");
    expect(b.snapshot().phase).toBe("done");
  });
});

describe("retries", () => {
  it("tries a failed part again after a growing delay", async () => {
    const { server, options, delays } = setup(4);
    server.failPut(2, serverFault, serverFault);
    const u = upload(makeFile("talk.wav", 12), options({ backoff: { baseMs: 100, maxMs: 10_000 } }));
    await u.start();
    expect(u.snapshot().phase).toBe("done");
    expect(server.puts.filter((p) => p.partNumber === 2)).toHaveLength(3);
    expect(delays).toEqual([100, 200]);
    expect(u.snapshot().retrying).toBe(false);
  });

  it("gives up after maxAttempts server faults and says why", async () => {
    const { server, options } = setup(4);
    server.failPut(1, serverFault, serverFault, serverFault);
    const u = upload(makeFile("talk.wav", 4), options({ maxAttempts: 3 }));
    await u.start();
    const s = u.snapshot();
    expect(s.phase).toBe("failed");
    expect(s.failure).toEqual({ kind: "http", status: 500, detail: "InternalError" });
    expect(server.calls).not.toContain("complete:-");
  });

  it("fails at once on an error that a retry cannot fix", async () => {
    const { server, options } = setup(4);
    server.failApi("start", new HttpError(415, "The file must have an audio/* or video/* content type"));
    const u = upload(makeFile("notes.wav", 4), options());
    await u.start();
    expect(u.snapshot().failure).toEqual({ kind: "http", status: 415,
      detail: "The file must have an audio/* or video/* content type" });
    expect(server.puts).toHaveLength(0);
  });

  it("carries on through any number of network failures", async () => {
    const { server, options, delays } = setup(4);
    server.failPut(1, ...Array.from({ length: 12 }, () => networkDrop));
    const u = upload(makeFile("talk.wav", 8), options({ maxAttempts: 3, backoff: { baseMs: 100, maxMs: 1000 } }));
    await u.start();
    expect(u.snapshot().phase).toBe("done");
    expect(delays).toHaveLength(12);
    expect(Math.max(...delays)).toBe(1000);
  });

  it("waits for the network while the browser is offline, then continues", async () => {
    const { server, options, delays } = setup(4);
    let isOnline = true;
    const back = deferred();
    const phases: string[] = [];
    const network: NetworkMonitor = { online: () => isOnline, waitOnline: () => back.promise };
    server.failPut(2, () => {
      isOnline = false;
      throw new NetworkError();
    });
    const u = upload(makeFile("talk.wav", 12), options({ network, concurrency: 1 }));
    u.subscribe((s) => phases.push(s.phase));
    const done = u.start();
    await new Promise((r) => setTimeout(r, 0));
    expect(u.snapshot().phase).toBe("offline");
    isOnline = true;
    back.resolve();
    await done;
    expect(u.snapshot().phase).toBe("done");
    expect(phases).toContain("offline");
    expect(phases.slice(phases.indexOf("offline"))).toContain("uploading");
    expect(delays).toEqual([]); // no backoff: it went on when the network came back
  });

  it("retries the API calls too (start, complete)", async () => {
    const { server, options } = setup(4);
    server.failApi("start", new NetworkError(), new HttpError(503, null));
    server.failApi("complete", new HttpError(502, null));
    const u = upload(makeFile("talk.wav", 4), options());
    await u.start();
    expect(u.snapshot().phase).toBe("done");
    expect(server.calls).toEqual(["start", "start", "start", "complete:-", "complete:-"]);
  });

  it("asks for fresh URLs when S3 refuses an expired one", async () => {
    const { server, options } = setup(4);
    server.failPut(1, () => server.expireUrls());
    const u = upload(makeFile("talk.wav", 8), options({ concurrency: 1 }));
    await u.start();
    expect(u.snapshot().phase).toBe("done");
    expect(server.calls).toEqual(["start", "parts", "complete:-"]);
    expect(server.puts.map((p) => [p.partNumber, p.version])).toEqual([[1, 0], [1, 1], [2, 1]]);
  });

  it("renews URLs older than urlMaxAgeMs before using them", async () => {
    const { server, options } = setup(4);
    let now = 0;
    server.failPut(1, () => {
      now += 61 * 60 * 1000;
    });
    const u = upload(makeFile("talk.wav", 8), options({ concurrency: 1, now: () => now }));
    await u.start();
    expect(u.snapshot().phase).toBe("done");
    expect(server.calls).toEqual(["start", "parts", "complete:-"]);
  });

  it("says the job was probably created when complete's answer was lost", async () => {
    const { server, options, store } = setup(4);
    const file = makeFile("talk.wav", 4);
    const original = server.api.complete;
    server.api.complete = async (...args) => {
      await original(...args); // the server completes it...
      throw new NetworkError(); // ...and the answer never arrives
    };
    const u = upload(file, options());
    await u.start();
    expect(u.snapshot().failure).toEqual({ kind: "maybe_submitted" });
    expect(store.get(file)).toBeNull();
  });
});

describe("resume after a reload", () => {
  it("continues a remembered upload from what /parts says is missing", async () => {
    const { server, options, store } = setup(4);
    const file = makeFile("talk.wav", 12);
    // the first page: parts 1 and 3 arrive, part 2 hangs, then the tab is closed
    server.failPut(2, hangUntilAborted);
    const first = upload(file, options());
    const firstRun = first.start();
    await new Promise((r) => setTimeout(r, 0));
    first.pause(); // what a closed tab amounts to: the PUT of part 2 never finishes
    await firstRun;
    expect([...server.uploads.get("up1")!.parts.keys()].sort()).toEqual([1, 3]);
    expect(store.get(file)?.uploadId).toBe("up1");

    // a new page, the same file selected again
    server.calls.length = 0;
    server.puts.length = 0;
    const second = upload(makeFile("talk.wav", 12), options({ jobSettingsId: () => 3 }));
    await second.start();
    const s = second.snapshot();
    expect(s.phase).toBe("done");
    expect(s.resumed).toBe(true);
    expect(s.resumedBytes).toBe(8);
    expect(server.calls).toEqual(["parts", "complete:3"]);
    expect(server.puts.map((p) => p.partNumber)).toEqual([2]);
    expect(store.get(file)).toBeNull();
  });

  it("starts afresh when the server no longer knows the remembered upload", async () => {
    const { server, options, store } = setup(4);
    const file = makeFile("talk.wav", 8);
    store.put({ uploadId: "gone", partSize: 4, fileName: file.name, size: file.size,
                lastModified: file.lastModified, startedAt: Date.now() });
    const u = upload(file, options());
    await u.start();
    expect(u.snapshot()).toMatchObject({ phase: "done", resumed: false });
    expect(server.calls).toEqual(["parts", "start", "complete:-"]);
  });

  it("starts afresh (and cancels the old one) when the stored parts do not fit the file", async () => {
    const { server, options, store } = setup(4);
    const file = makeFile("talk.wav", 8);
    server.uploads.set("old", { size: 8, partSize: 4, completed: false, cancelled: false, urlVersion: 0,
                                parts: new Map([[1, { etag: '"x"', size: 3 }]]) });
    store.put({ uploadId: "old", partSize: 4, fileName: file.name, size: file.size,
                lastModified: file.lastModified, startedAt: Date.now() });
    const u = upload(file, options());
    await u.start();
    expect(u.snapshot().phase).toBe("done");
    expect(server.calls).toEqual(["parts", "cancel", "start", "complete:-"]);
    expect(server.uploads.get("old")!.cancelled).toBe(true);
  });

  it("forgets records older than the two days S3 keeps unfinished uploads", () => {
    const storage = memoryStorage();
    let now = 1_000;
    const store = new ResumeStore(storage, () => now);
    store.put({ uploadId: "a", partSize: 4, fileName: "a.wav", size: 1, lastModified: 1, startedAt: now });
    expect(store.list()).toHaveLength(1);
    now += 2 * 24 * 3600 * 1000 + 1;
    expect(store.list()).toHaveLength(0);
    storage.setItem(STORAGE_KEY, "not json");
    expect(store.list()).toEqual([]);
  });
});

describe("pause, resume and cancel", () => {
  it("pause stops the parts in flight; resume sends them again and completes", async () => {
    const { server, options } = setup(4);
    server.failPut(1, hangUntilAborted);
    server.failPut(2, hangUntilAborted);
    const phases: string[] = [];
    const u = upload(makeFile("talk.wav", 12), options({ concurrency: 2 }));
    u.subscribe((s) => {
      if (phases[phases.length - 1] !== s.phase) phases.push(s.phase);
    });
    const run = u.start();
    await new Promise((r) => setTimeout(r, 0));
    expect(u.snapshot().bytesDone).toBe(4); // half of parts 1 and 2 in flight
    expect(u.pause()).toBe(true);
    await run;
    expect(u.snapshot().phase).toBe("paused");
    expect(u.snapshot().bytesDone).toBe(0); // in-flight bytes are dropped
    expect(server.calls).toEqual(["start"]);
    const putsBefore = server.puts.length;

    await u.resume();
    expect(u.snapshot().phase).toBe("done");
    expect(server.calls).toEqual(["start", "complete:-"]); // same upload, no new start
    expect(server.puts.slice(putsBefore).map((p) => p.partNumber).sort()).toEqual([1, 2, 3]);
    expect(phases).toEqual(["starting", "uploading", "paused", "uploading", "completing", "done"]);
  });

  it("resume after a failure continues the same upload", async () => {
    const { server, options } = setup(4);
    server.failPut(2, serverFault, serverFault);
    const u = upload(makeFile("talk.wav", 8), options({ maxAttempts: 2 }));
    await u.start();
    expect(u.snapshot().phase).toBe("failed");
    await u.resume();
    expect(u.snapshot().phase).toBe("done");
    expect(server.calls.filter((c) => c === "start")).toHaveLength(1);
  });

  it("cancel drops the upload on the server and in the store", async () => {
    const { server, options, store } = setup(4);
    server.failPut(1, hangUntilAborted);
    const file = makeFile("talk.wav", 4);
    const u = upload(file, options());
    const run = u.start();
    await new Promise((r) => setTimeout(r, 0));
    await u.cancel();
    await run;
    expect(u.snapshot().phase).toBe("cancelled");
    expect(server.calls).toEqual(["start", "cancel"]);
    expect(store.get(file)).toBeNull();
  });
});

describe("UploadManager", () => {
  it("runs a few files at a time, rejects what is not audio or video, and ignores duplicates", async () => {
    const server = new FakeServer(4);
    const manager = new UploadManager({
      api: server.api,
      transport: server.transport,
      store: new ResumeStore(memoryStorage()),
      parallelFiles: 2,
      engine: { network: online, sleep: async () => undefined, notifyEveryMs: 0 },
    });
    let maxActive = 0;
    manager.subscribe(() => {
      const active = manager.items.filter((e) => ["starting", "uploading", "completing"].includes(e.snapshot.phase));
      maxActive = Math.max(maxActive, active.length);
    });
    const files = [makeFile("a.mp3", 9, 1, ""), makeFile("b.wav", 9, 2), makeFile("c.webm", 9, 3, ""),
                   makeFile("notes.pdf", 9, 4, "application/pdf")];
    const result = manager.add([...files, files[0]], async () => 5);
    expect(result.added.map((e) => e.snapshot.fileName)).toEqual(["a.mp3", "b.wav", "c.webm"]);
    expect(result.rejected.map((f) => f.name)).toEqual(["notes.pdf"]);
    expect(result.duplicates.map((f) => f.name)).toEqual(["a.mp3"]);
    for (let i = 0; i < 50 && manager.items.some((e) => e.snapshot.phase !== "done"); i++) {
      await new Promise((r) => setTimeout(r, 0));
    }
    expect(manager.items.map((e) => e.snapshot.phase)).toEqual(["done", "done", "done"]);
    expect(manager.items.map((e) => e.snapshot.jobId)).toEqual([101, 102, 103]);
    expect(maxActive).toBe(2);
  });
});

describe("helpers", () => {
  it("guesses a media type from the name when the browser gives none", () => {
    expect(mediaType({ name: "a.M4A", type: "" })).toBe("audio/mp4");
    expect(mediaType({ name: "a.bin", type: "video/mp4" })).toBe("video/mp4");
    expect(mediaType({ name: "a.txt", type: "text/plain" })).toBeNull();
  });

  it("measures speed over the window and the time left", () => {
    const meter = new SpeedMeter(10_000);
    expect(meter.speed()).toBeNull();
    meter.add(0, 0);
    meter.add(1000, 1000);
    meter.add(2000, 3000);
    expect(meter.speed()).toBe(1500);
    expect(meter.secondsLeft(3000)).toBe(2);
    meter.add(30_000, 3000); // nothing for a while: the window forgets the old burst
    expect(meter.speed()).toBe(0);
    expect(meter.secondsLeft(10)).toBeNull();
  });
});
