// The direct-upload routes through the app's API client (relative URLs, the session cookie, a 401
// ends the session), with its errors turned into the engine's.
import { api, ApiError } from "../api/client";
import { HttpError, NetworkError } from "./errors";
import type { StartUploadResponse, UploadApi, UploadPartsResponse } from "./types";

async function translate<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof ApiError) {
      if (error.status === 0) throw new NetworkError(error.text || "network error");
      throw new HttpError(error.status, typeof error.detail === "string" ? error.detail : null, error.detail);
    }
    throw error;
  }
}

export const uploadApi: UploadApi = {
  start: (request) =>
    translate(() => api("post", "/api/wisp/uploads", { json: request }) as Promise<StartUploadResponse>),
  parts: (uploadId) =>
    translate(() => api("get", "/api/wisp/uploads/{upload_id}/parts", { params: { upload_id: uploadId } }) as Promise<UploadPartsResponse>),
  complete: (uploadId, parts, jobSettingsId) =>
    translate(() => api("post", "/api/wisp/uploads/{upload_id}/complete", {
      params: { upload_id: uploadId },
      query: jobSettingsId === undefined ? {} : { job_settings_id: jobSettingsId },
      json: { parts },
    }) as Promise<number>),
  cancel: async (uploadId) => {
    await translate(() => api("delete", "/api/wisp/uploads/{upload_id}", { params: { upload_id: uploadId } }));
  },
};
