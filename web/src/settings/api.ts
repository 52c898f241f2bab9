// Default settings and settings records (spec §3.5 submit_settings, default_settings).
import { api, ApiError } from "../api/client";
import { mapIssues } from "./errors";
import type { FieldErrors, Issue } from "./errors";
import type { JobSettings, SettingsForm } from "./model";
import { toRequest } from "./model";

export async function loadDefaultSettings(): Promise<JobSettings> {
  return (await api("get", "/api/jobs/default_settings")) as unknown as JobSettings;
}

export type SubmitResult = { ok: true; id: number } | { ok: false; errors: FieldErrors };

/** Store the form's settings (as the user's new default when asked); a 422 comes back per field. */
export async function submitSettings(form: SettingsForm, isNewDefault: boolean): Promise<SubmitResult> {
  try {
    const id = (await api("post", "/api/jobs/submit_settings", {
      query: { is_new_default: isNewDefault },
      json: toRequest(form) as never,
    })) as number;
    return { ok: true, id };
  } catch (error) {
    if (error instanceof ApiError && error.status === 422 && Array.isArray(error.detail)) {
      return { ok: false, errors: mapIssues(error.detail as Issue[]) };
    }
    throw error;
  }
}
