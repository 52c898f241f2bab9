// The jobs routes (spec §3.5) for the store, through the app's API client.
import { api } from "../api/client";
import type { JobInfo, JobsApi } from "./store";

export const jobsApi: JobsApi = {
  count: (excludeFinished) =>
    api("get", "/api/jobs/count", { query: { exclude_finished: excludeFinished, exclude_downloaded: false } }) as Promise<number>,
  ids: (start, end, sortKey, descending, excludeFinished) =>
    api("get", "/api/jobs/get", {
      query: { start_index: start, end_index: end, sort_key: sortKey, descending, exclude_finished: excludeFinished, exclude_downloaded: false },
    }) as Promise<number[]>,
  info: async (ids) => (ids.length ? ((await api("get", "/api/jobs/info", { query: { job_ids: ids } })) as unknown as JobInfo[]) : []),
  abort: async (ids) => {
    await api("post", "/api/jobs/abort", { json: ids });
  },
  remove: async (ids) => {
    await api("delete", "/api/jobs/delete", { json: ids });
  },
};
