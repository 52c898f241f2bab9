// Errors the upload engine tells apart: an HTTP answer, a dropped connection, an abort.

export class HttpError extends Error {
  readonly status: number;
  /** the `detail` of an error body when it is a string, else null */
  readonly detail: string | null;
  readonly body: unknown;

  constructor(status: number, detail: string | null, body: unknown = null) {
    super(detail ?? `HTTP ${status}`);
    this.name = "HttpError";
    this.status = status;
    this.detail = detail;
    this.body = body;
  }
}

/** The request never got an answer: offline, connection reset, DNS, a stalled transfer. */
export class NetworkError extends Error {
  constructor(message = "network error") {
    super(message);
    this.name = "NetworkError";
  }
}

/** S3 answered, but the browser cannot read the ETag header (the bucket's CORS must expose it). */
export class MissingEtagError extends Error {
  constructor() {
    super("the part was stored but its ETag header is not readable (CORS ExposeHeaders: ETag)");
    this.name = "MissingEtagError";
  }
}

export class AbortedError extends Error {
  constructor() {
    super("aborted");
    this.name = "AbortError";
  }
}

export function isAbort(error: unknown): boolean {
  return error instanceof AbortedError || (error instanceof Error && error.name === "AbortError");
}

/** Worth trying again: no answer, a timeout, throttling or a server fault. */
export function isTransient(error: unknown): boolean {
  if (error instanceof NetworkError) return true;
  if (error instanceof HttpError) {
    return error.status === 0 || error.status === 408 || error.status === 429 || error.status >= 500;
  }
  // fetch() rejects with a TypeError when the network is down
  return error instanceof TypeError;
}
