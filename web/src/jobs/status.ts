// What a job's `step` (spec §5.2) means, and which actions it allows.

export type JobStep =
  | "not_queued"
  | "pending_runner"
  | "runner_assigned"
  | "runner_in_progress"
  | "aborting"
  | "success"
  | "failed"
  | "downloaded";

export const STEPS: readonly JobStep[] = [
  "pending_runner",
  "runner_assigned",
  "runner_in_progress",
  "aborting",
  "success",
  "downloaded",
  "failed",
  "not_queued",
];

const FINISHED = new Set<JobStep>(["success", "failed", "downloaded"]);
const ABORTABLE = new Set<JobStep>(["not_queued", "pending_runner", "runner_assigned", "runner_in_progress"]);

/** Finished jobs can be deleted (spec §3.5 delete). */
export function isFinished(step: string): boolean {
  return FINISHED.has(step as JobStep);
}

/** Abort is refused for finished and aborting jobs (spec §3.5 abort). */
export function canAbort(step: string): boolean {
  return ABORTABLE.has(step as JobStep);
}

export function hasTranscript(step: string): boolean {
  return step === "success" || step === "downloaded";
}

/** Filters the jobs list offers. `active` is the server's `exclude_finished`. */
export type StatusFilter = "all" | "active" | "new" | "done" | "failed";

export const STATUS_FILTERS: readonly StatusFilter[] = ["all", "active", "new", "done", "failed"];

export function matchesStatus(step: string, filter: StatusFilter): boolean {
  switch (filter) {
    case "all":
      return true;
    case "active":
      return !isFinished(step);
    case "new":
      return step === "success";
    case "done":
      return step === "success" || step === "downloaded";
    case "failed":
      return step === "failed";
  }
}
