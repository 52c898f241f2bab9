// The browser side of the engine: the four API calls with fetch (cookie auth, same origin), and
// part PUTs with XMLHttpRequest (fetch cannot report upload progress).
import { AbortedError, HttpError, MissingEtagError, NetworkError } from "./errors";
import type {
  CompletedPart,
  PartTransport,
  PutOptions,
  StartUploadRequest,
  StartUploadResponse,
  UploadApi,
  UploadPartsResponse,
} from "./types";

export async function errorFromResponse(response: Response): Promise<HttpError> {
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const detail = body && typeof body === "object" && typeof (body as { detail?: unknown }).detail === "string"
    ? (body as { detail: string }).detail
    : null;
  return new HttpError(response.status, detail, body);
}

async function call<T>(fetcher: typeof fetch, url: string, init: RequestInit): Promise<T> {
  let response: Response;
  try {
    response = await fetcher(url, { credentials: "include", ...init });
  } catch (error) {
    if (error instanceof Error && error.name === "AbortError") throw new AbortedError();
    throw new NetworkError(error instanceof Error ? error.message : "network error");
  }
  if (!response.ok) throw await errorFromResponse(response);
  return (await response.json()) as T;
}

/** @param base what goes before `/api` (empty: same origin, the supported deployment) */
export function createUploadApi(base = "", fetcher: typeof fetch = (...args) => fetch(...args)): UploadApi {
  const root = `${base}/api/wisp/uploads`;
  const json = { "Content-Type": "application/json" };
  return {
    start: (request: StartUploadRequest) =>
      call<StartUploadResponse>(fetcher, root, { method: "POST", headers: json, body: JSON.stringify(request) }),
    parts: (uploadId: string) =>
      call<UploadPartsResponse>(fetcher, `${root}/${encodeURIComponent(uploadId)}/parts`, { method: "GET" }),
    complete: (uploadId: string, parts: CompletedPart[], jobSettingsId?: number) => {
      const query = jobSettingsId === undefined ? "" : `?job_settings_id=${jobSettingsId}`;
      return call<number>(fetcher, `${root}/${encodeURIComponent(uploadId)}/complete${query}`, {
        method: "POST",
        headers: json,
        body: JSON.stringify({ parts }),
      });
    },
    cancel: async (uploadId: string) => {
      await call<string>(fetcher, `${root}/${encodeURIComponent(uploadId)}`, { method: "DELETE" });
    },
  };
}

/**
 * PUTs with XMLHttpRequest. A transfer that makes no progress for `stallMs` is abandoned as a
 * network failure (a dropped Wi-Fi often leaves the connection hanging rather than failing).
 */
export function createXhrTransport(stallMs = 45_000): PartTransport {
  return {
    put: (url: string, body: Blob, { signal, onProgress }: PutOptions) =>
      new Promise<string>((resolve, reject) => {
        if (signal.aborted) {
          reject(new AbortedError());
          return;
        }
        const xhr = new XMLHttpRequest();
        let stalled = false;
        let watchdog: ReturnType<typeof setTimeout> | undefined;
        const arm = () => {
          clearTimeout(watchdog);
          watchdog = setTimeout(() => {
            stalled = true;
            xhr.abort();
          }, stallMs);
        };
        const finish = () => {
          clearTimeout(watchdog);
          signal.removeEventListener("abort", onAbort);
        };
        const onAbort = () => xhr.abort();
        signal.addEventListener("abort", onAbort, { once: true });
        xhr.open("PUT", url);
        xhr.upload.onprogress = (event) => {
          arm();
          onProgress(event.loaded);
        };
        xhr.onload = () => {
          finish();
          if (xhr.status >= 200 && xhr.status < 300) {
            const etag = xhr.getResponseHeader("ETag");
            if (etag) resolve(etag);
            else reject(new MissingEtagError());
          } else {
            // S3 answers XML; its <Code> is the useful part
            const code = /<Code>([^<]+)<\/Code>/.exec(xhr.responseText ?? "")?.[1] ?? null;
            reject(new HttpError(xhr.status, code));
          }
        };
        xhr.onerror = () => {
          finish();
          reject(new NetworkError());
        };
        xhr.ontimeout = xhr.onerror;
        xhr.onabort = () => {
          finish();
          reject(stalled ? new NetworkError("stalled") : new AbortedError());
        };
        arm();
        xhr.send(body);
      }),
  };
}
