// The one way the app talks to Wisp's API: a small fetch wrapper typed by `schema.d.ts`, which
// `npm run gen:api` generates from Wisp's own /openapi.json (tests/web/test_api_client.py fails
// when the two drift apart).
//
// Same origin, relative URLs ("api/..."): the page is always the document at the app's root (hash
// routing), so this works below any path prefix too. The session is the `token` cookie the login
// routes set; the browser sends it with every call.
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];

type Method = "get" | "post" | "delete" | "put" | "patch";

/** The paths that have an operation for `M`. */
export type PathsWith<M extends Method> = {
  [P in keyof paths]: paths[P][M] extends undefined | never ? never : P;
}[keyof paths];

type Operation<P extends keyof paths, M extends Method> = NonNullable<paths[P][M]>;

type QueryOf<O> = O extends { parameters: { query?: infer Q } } ? ([Q] extends [never] ? never : Q) : never;
type PathParamsOf<O> = O extends { parameters: { path?: infer Q } } ? ([Q] extends [never] ? never : Q) : never;
type JsonBodyOf<O> = O extends { requestBody?: { content: { "application/json": infer B } } } ? B : never;
type FormBodyOf<O> = O extends { requestBody?: { content: { "application/x-www-form-urlencoded": infer B } } } ? B : never;

/** The JSON of a 200 answer (`unknown` where the operation declares none). */
export type Ok<O> = O extends { responses: { 200: { content: { "application/json": infer R } } } } ? R : unknown;

export interface CallOptions<O> {
  query?: QueryOf<O>;
  params?: PathParamsOf<O>;
  json?: JsonBodyOf<O>;
  form?: FormBodyOf<O>;
  body?: BodyInit;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** A 401 is an answer here (a login form's wrong password), not "the session ended". */
  anonymous?: boolean;
}

/** One entry of a 422 answer (`HTTPValidationError.detail`). */
export interface ValidationIssue {
  loc: (string | number)[];
  msg: string;
  type: string;
}

/** An answer that was not 2xx, or no answer at all (`status` 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    /** `{detail}`'s value: a string, a list of validation issues, or null when the body had none. */
    readonly detail: string | ValidationIssue[] | null,
    /** The body as text when it was not JSON (a 500 from the platform, a proxy's error page). */
    readonly text: string = "",
  ) {
    super(typeof detail === "string" ? detail : `HTTP ${status}`);
    this.name = "ApiError";
  }
}

type UnauthorizedListener = () => void;
let onUnauthorized: UnauthorizedListener | null = null;

/** Called on every 401 of a call that is not `anonymous`: the session has ended. */
export function setUnauthorizedListener(listener: UnauthorizedListener | null): void {
  onUnauthorized = listener;
}

/** `/api/ldap/login/{idp_name}` with `{idp_name: "Corp"}` → `api/ldap/login/Corp` (relative). */
export function buildUrl(path: string, params?: Record<string, unknown>, query?: Record<string, unknown>): string {
  let url = path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(String(params?.[name] ?? "")));
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value === undefined || value === null) continue;
    // arrays repeat the key (job_ids=3&job_ids=7), as the API expects (spec §1.2)
    for (const item of Array.isArray(value) ? value : [value]) search.append(key, String(item));
  }
  const qs = search.toString();
  if (qs) url += `?${qs}`;
  return url.replace(/^\//, "");
}

function formBody(form: Record<string, unknown>): URLSearchParams {
  const body = new URLSearchParams();
  for (const [key, value] of Object.entries(form)) {
    if (value !== undefined && value !== null) body.append(key, String(value));
  }
  return body;
}

/** Reads an error answer into an ApiError (never throws). */
export async function toApiError(response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => "");
  try {
    const data: unknown = JSON.parse(text);
    if (data && typeof data === "object" && "detail" in data) {
      const detail = (data as { detail: unknown }).detail;
      if (typeof detail === "string") return new ApiError(response.status, detail);
      if (Array.isArray(detail)) return new ApiError(response.status, detail as ValidationIssue[]);
    }
    return new ApiError(response.status, null, typeof data === "string" ? data : "");
  } catch {
    return new ApiError(response.status, null, text);
  }
}

/**
 * Calls one operation and returns its JSON; throws ApiError otherwise.
 *
 * `api("get", "/api/users/info")`, `api("post", "/api/users/get_new_api_token", {query: {name}})`.
 */
export async function api<M extends Method, P extends PathsWith<M>>(
  method: M,
  path: P,
  options: CallOptions<Operation<P, M>> = {},
): Promise<Ok<Operation<P, M>>> {
  const headers: Record<string, string> = { Accept: "application/json", ...options.headers };
  let body: BodyInit | undefined = options.body;
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.json);
  } else if (options.form !== undefined) {
    body = formBody(options.form as Record<string, unknown>);
  }
  const url = buildUrl(path, options.params as Record<string, unknown>, options.query as Record<string, unknown>);
  let response: Response;
  try {
    response = await fetch(url, {
      method: method.toUpperCase(),
      headers,
      body,
      credentials: "include",
      signal: options.signal,
    });
  } catch (error) {
    if (error instanceof DOMException && error.name === "AbortError") throw error;
    throw new ApiError(0, null, String(error));
  }
  if (!response.ok) {
    const error = await toApiError(response);
    if (response.status === 401 && !options.anonymous) onUnauthorized?.();
    throw error;
  }
  const text = await response.text();
  return (text ? JSON.parse(text) : null) as Ok<Operation<P, M>>;
}

/** What went wrong, in words for people: a headline and, for a 422, one line per issue. */
export interface ErrorText {
  message: string;
  issues: string[];
}

export interface ErrorWords {
  network: string;
  status: (status: number) => string;
  invalid: string;
  unexpected: string;
}

function describeIssue(issue: ValidationIssue): string {
  // ["body", "password"] → "password"; ["query", "job_ids", 0] → "job_ids 0"; ["body"] → ""
  const where = (issue.loc ?? []).filter((part, i) => !(i === 0 && (part === "body" || part === "query" || part === "path")));
  const msg = String(issue.msg ?? "").replace(/^Value error, /, "");
  return where.length ? `${where.join(" ")}: ${msg}` : msg;
}

/** Any thrown value (an ApiError, a network failure, a bug) as text a person can read. */
export function describeError(error: unknown, words: ErrorWords): ErrorText {
  if (error instanceof ApiError) {
    if (error.status === 0) return { message: words.network, issues: [] };
    if (typeof error.detail === "string" && error.detail.trim()) return { message: error.detail, issues: [] };
    if (Array.isArray(error.detail)) return { message: words.invalid, issues: error.detail.map(describeIssue) };
    const text = error.text.trim();
    const short = text.length > 300 || text.startsWith("<") ? "" : text;
    return { message: short ? `${words.status(error.status)}: ${short}` : words.status(error.status), issues: [] };
  }
  if (error instanceof Error && error.message) return { message: `${words.unexpected}: ${error.message}`, issues: [] };
  return { message: words.unexpected, issues: [] };
}
