import { afterEach, describe, expect, it, vi } from "vitest";
import { en } from "../i18n/en";
import { api, ApiError, buildUrl, describeError, setUnauthorizedListener, toApiError } from "./client";

const words = en.errors;

function answer(status: number, body: string, type = "application/json") {
  return new Response(body, { status, headers: { "Content-Type": type } });
}

describe("describeError", () => {
  it("shows a {detail} string as it is", () => {
    expect(describeError(new ApiError(400, "Signup is disabled"), words)).toEqual({ message: "Signup is disabled", issues: [] });
  });

  it("lists each problem of a 422, without the body/query prefix and pydantic's 'Value error, '", async () => {
    const error = await toApiError(answer(422, JSON.stringify({
      detail: [
        { type: "value_error", loc: ["body", "password"], msg: "Value error, password too short", input: "x" },
        { type: "int_parsing", loc: ["query", "job_ids", 0], msg: "Input should be a valid integer", input: "a" },
        { type: "missing", loc: ["body"], msg: "Field required", input: null },
      ],
    })));
    expect(describeError(error, words)).toEqual({
      message: words.invalid,
      issues: ["password: password too short", "job_ids 0: Input should be a valid integer", "Field required"],
    });
  });

  it("names the status of a body that is not JSON, and keeps an HTML error page off the screen", async () => {
    expect(describeError(await toApiError(answer(500, "Internal Server Error", "text/plain")), words).message)
      .toBe("The server answered with status 500: Internal Server Error");
    expect(describeError(await toApiError(answer(502, "<html><body>Bad gateway</body></html>", "text/html")), words).message)
      .toBe("The server answered with status 502");
  });

  it("says the server cannot be reached when there was no answer, and explains bugs", () => {
    expect(describeError(new ApiError(0, null, "TypeError: Failed to fetch"), words).message).toBe(words.network);
    expect(describeError(new Error("boom"), words).message).toBe("Unexpected error: boom");
    expect(describeError(undefined, words).message).toBe(words.unexpected);
  });
});

describe("buildUrl", () => {
  it("is relative, fills path parameters and repeats array keys", () => {
    expect(buildUrl("/api/ldap/login/{idp_name}", { idp_name: "Corp LDAP" })).toBe("api/ldap/login/Corp%20LDAP");
    expect(buildUrl("/api/jobs/info", undefined, { job_ids: [3, 7], skip: undefined })).toBe("api/jobs/info?job_ids=3&job_ids=7");
  });
});

describe("api", () => {
  afterEach(() => {
    vi.unstubAllGlobals();
    setUnauthorizedListener(null);
  });

  it("sends forms and JSON with the cookie, and returns the parsed answer", async () => {
    const fetch = vi.fn(async () => answer(200, '"Success"'));
    vi.stubGlobal("fetch", fetch);
    await expect(api("post", "/api/local-account/login", { form: { username: "a@b.c", password: "pw", scope: "" }, anonymous: true }))
      .resolves.toBe("Success");
    const [url, init] = fetch.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe("api/local-account/login");
    expect(init.credentials).toBe("include");
    expect(String(init.body)).toBe("username=a%40b.c&password=pw&scope=");
  });

  it("reports a 401 as the end of the session, except for anonymous calls", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => answer(401, '{"detail":"Not authenticated"}')));
    const ended = vi.fn();
    setUnauthorizedListener(ended);
    await expect(api("get", "/api/users/info", { anonymous: true })).rejects.toMatchObject({ status: 401 });
    expect(ended).not.toHaveBeenCalled();
    await expect(api("get", "/api/users/get_all_token_info")).rejects.toMatchObject({ status: 401, message: "Not authenticated" });
    expect(ended).toHaveBeenCalledOnce();
  });
});
