// Drives Wisp's web app (web/, served at `/` by the local stack) in Debian's headless chromium as a
// person does, one flow per run. Each step is bounded in time and ends with a screenshot in `out`.
// Usage: node web_flows.mjs '<json>' with {flow: "user"|"admin"|"banner"|"upload"|"account"|"diarize", base, out, ...flow fields}.
// Prints one JSON line per step: {step, ok, ms, screenshot, data?, error?}; stops at the first failure.
// Exit status 0 unless a step failed or the browser could not be driven.
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { launchChromium } from "./chromium.mjs";

const config = JSON.parse(process.argv[2]);
const STEP_MS = config.step_ms ?? 60000;

let counter = 0;
async function step(page, name, work, ms = STEP_MS) {
  const started = Date.now();
  const shot = join(config.out, `${String(++counter).padStart(2, "0")}-${config.flow}-${name}.png`);
  let timer;
  try {
    const data = await Promise.race([
      work(),
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`step timed out after ${ms} ms`)), ms); }),
    ]);
    await page.screenshot({ path: shot, fullPage: true }).catch(() => undefined);
    console.log(JSON.stringify({ step: name, ok: true, ms: Date.now() - started, screenshot: shot, data }));
    return data;
  } catch (error) {
    await page.screenshot({ path: shot, fullPage: true }).catch(() => undefined);
    console.log(JSON.stringify({ step: name, ok: false, ms: Date.now() - started, screenshot: shot, error: String(error?.stack ?? error) }));
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

const app = (hash) => `${config.base}/#${hash}`;

async function signIn(page, email, password, admin = false) {
  await page.goto(app(admin ? "/auth/admin" : "/auth/login"));
  await page.getByLabel("E-mail address").fill(email);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByRole("button", { name: admin ? "Sign in as administrator" : "Sign in", exact: true }).click();
  await page.getByText(`Signed in as ${email}`).waitFor();
}

async function activationLink(email, waitMs = 30000) {
  const deadline = Date.now() + waitMs;
  while (Date.now() < deadline) {
    const text = await readFile(config.mailbox, "utf8").catch(() => "");
    // the mails are appended whole; the last link after this address's To: line is ours
    const at = text.lastIndexOf(email);
    const match = at >= 0 ? /(http\S+\/#\/local\/activate\?token=\S+)/.exec(text.slice(at)) : null;
    if (match) return match[1];
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`no activation mail for ${email} in ${config.mailbox}`);
}

async function userFlow(browser) {
  const context = await browser.newContext({ acceptDownloads: true });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: config.base });
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  const { email, password } = config;

  await step(page, "sign-up", async () => {
    await page.goto(app("/auth/signup"));
    await page.getByLabel("E-mail address").fill(email);
    await page.getByLabel("Password", { exact: true }).fill(password);
    await page.getByLabel("Repeat the password").fill(password);
    await page.getByRole("button", { name: "Create account" }).click();
    await page.getByText("Your account is created.").waitFor();
  });

  await step(page, "activate", async () => {
    const link = await activationLink(email);
    await page.goto(link);
    await page.getByText("Your e-mail address is confirmed.").waitFor();
    return { link: link.replace(/token=.*/, "token=…") };
  });

  await step(page, "sign-in", () => signIn(page, email, password));

  // stand-in for the upload page (web/src/upload has no page yet): the same two calls from the page
  const jobId = await step(page, "submit-job-through-the-api", async () => {
    const audio = (await readFile(config.audio)).toString("base64");
    return page.evaluate(async (b64) => {
      const settings = await fetch("api/jobs/submit_settings", {
        method: "POST", credentials: "include", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ model: "tiny.en", language: "en" }),
      });
      if (!settings.ok) throw new Error(`submit_settings: ${settings.status} ${await settings.text()}`);
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const form = new FormData();
      form.append("audio_file", new File([bytes], "interview.wav", { type: "audio/wav" }));
      const r = await fetch(`api/jobs/submit_job?job_settings_id=${await settings.json()}`, { method: "POST", credentials: "include", body: form });
      if (!r.ok) throw new Error(`submit_job: ${r.status} ${await r.text()}`);
      return r.json();
    }, audio);
  });

  await step(page, "job-succeeds", async () => {
    for (;;) {
      const [info] = await page.evaluate(async (id) => (await fetch(`api/jobs/info?job_ids=${id}`, { credentials: "include" })).json(), jobId);
      if (info.step === "success") return { step: info.step };
      if (info.step === "failed") throw new Error(`job failed: ${info.error_msg}`);
      await page.waitForTimeout(500);
    }
  }, config.job_ms ?? 240000);

  const words = await step(page, "read-transcript", async () => {
    await page.goto(app(`/jobs/${jobId}/transcript`));
    await page.locator("ol.segments li").first().waitFor();
    const text = await page.locator("ol.segments").innerText();
    const count = await page.locator("ol.segments .word").count();
    return { text, segments: await page.locator("ol.segments li").count(), words: count };
  });

  await step(page, "search", async () => {
    await page.getByLabel("Search in the text").fill(config.search);
    await page.locator(".transcript-tools .matches").filter({ hasText: /\d+ of \d+/ }).waitFor();
    return {
      status: await page.locator(".transcript-tools .matches").innerText(),
      marked: await page.locator("ol.segments .word.match, ol.segments mark").count(),
    };
  });

  await step(page, "copy-text", async () => {
    await page.getByLabel("Search in the text").fill("");
    await page.getByRole("button", { name: "Copy text" }).click();
    await page.getByRole("button", { name: "Copied" }).waitFor();
    return { clipboard: await page.evaluate(() => navigator.clipboard.readText()) };
  });

  const sync = await step(page, "play-in-sync", async () => {
    // this tab did not upload the file: open it again, as a person would
    await page.getByLabel(/Open the recording/).setInputFiles(config.audio);
    await page.locator("audio").waitFor();
    await page.waitForFunction(() => document.querySelector("audio").readyState >= 1);
    const target = page.locator("ol.segments .word.playable").nth(Math.min(words.words - 1, 5));
    const clickedStart = Number(await target.getAttribute("data-start"));
    await target.click();
    await page.locator("ol.segments .word.is-spoken").first().waitFor();
    const first = await page.evaluate(() => ({
      time: document.querySelector("audio").currentTime,
      word: document.querySelector(".word.is-spoken")?.textContent,
      index: document.querySelector(".word.is-spoken")?.getAttribute("data-word"),
      segment: document.querySelector(".word.is-spoken")?.getAttribute("data-seg"),
    }));
    await page.waitForTimeout(1500);
    const later = await page.evaluate(() => ({
      time: document.querySelector("audio").currentTime,
      paused: document.querySelector("audio").paused,
      word: document.querySelector(".word.is-spoken")?.textContent,
      index: document.querySelector(".word.is-spoken")?.getAttribute("data-word"),
      segment: document.querySelector(".word.is-spoken")?.getAttribute("data-seg"),
      currentSegments: document.querySelectorAll("li.is-current").length,
    }));
    await page.evaluate(() => document.querySelector("audio").pause());
    return { clickedStart, first, later };
  });

  const downloads = {};
  for (const format of ["SRT", "VTT"]) {
    downloads[format] = await step(page, `download-${format.toLowerCase()}`, async () => {
      const [download] = await Promise.all([
        page.waitForEvent("download"),
        page.getByRole("button", { name: `Download as ${format}` }).click(),
      ]);
      const path = join(config.out, download.suggestedFilename());
      await download.saveAs(path);
      return { name: download.suggestedFilename(), head: (await readFile(path, "utf8")).slice(0, 200) };
    });
  }

  await step(page, "sign-out", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    return { info: await page.evaluate(async () => (await fetch("api/users/info", { credentials: "include" })).status) };
  });
  await writeFile(join(config.out, `${config.flow}-result.json`), JSON.stringify({ jobId, sync, downloads }));
  await context.close();
}

async function adminFlow(browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  page.on("dialog", (dialog) => void dialog.accept());

  await step(page, "admin-sign-in", () => signIn(page, config.admin_email, config.admin_password, true));

  const listed = await step(page, "runners", async () => {
    await page.getByRole("link", { name: "Administration" }).click();
    await page.locator("table.runners tbody tr").first().waitFor();
    return page.locator("table.runners tbody tr").evaluateAll((rows) => rows.map((row) => ({
      id: Number(row.getAttribute("data-runner")),
      cells: [...row.querySelectorAll("td")].map((td) => td.innerText.trim()),
    })));
  });

  const created = await step(page, "create-runner", async () => {
    await page.getByRole("button", { name: "Create a runner" }).click();
    const token = await page.getByTestId("runner-token").innerText();
    const id = Number(/Runner (\d+) is created/.exec(await page.locator(".success").first().innerText())[1]);
    await page.locator(`tr[data-runner="${id}"]`).waitFor();
    return { id, tokenLength: token.trim().length, state: await page.locator(`tr[data-runner="${id}"] .state`).innerText() };
  });

  await step(page, "invalidate-runner", async () => {
    await page.getByRole("button", { name: `Invalidate runner ${created.id}` }).click();
    await page.locator(`tr[data-runner="${created.id}"]`).waitFor({ state: "detached" });
    return { message: await page.locator("p.success").innerText() };
  });

  await step(page, "post-banner", async () => {
    await page.getByRole("link", { name: "Site banners" }).click();
    await page.getByLabel("Text (HTML)").fill(config.banner_html);
    await page.getByLabel("Urgency").fill("150");
    await page.getByRole("button", { name: "Add banner" }).click();
    await page.locator(".banner-list li").first().waitFor();
    // the layout shows it at once on every page, too
    await page.locator("body > #app .banner.important, .banner.important").first().waitFor();
    return { listed: await page.locator(".banner-list li").count() };
  });

  await step(page, "mail-all-users", async () => {
    await page.getByRole("link", { name: "Mail to all users" }).click();
    await page.getByLabel("Subject").fill(config.mail_subject);
    await page.getByLabel("Message").fill("The service is down for maintenance tonight.");
    await page.getByRole("button", { name: "Send to all users" }).click();
    await page.getByText("The mail is sent.").waitFor();
  });

  await writeFile(join(config.out, `${config.flow}-result.json`), JSON.stringify({ listed, created }));
  await context.close();
}

async function bannerFlow(browser) {
  // a user (signed in, then signed out) sees the banner an admin posted
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  await step(page, "user-sees-banner", async () => {
    await signIn(page, config.email, config.password);
    const banner = page.locator(".banner", { hasText: config.banner_text }).first();
    await banner.waitFor();
    return { text: await banner.innerText(), class: await banner.getAttribute("class") };
  });
  await step(page, "about-lists-banner", async () => {
    await page.goto(app("/about"));
    await page.locator("ul.notices li", { hasText: config.banner_text }).waitFor();
  });
  await context.close();
}

// ---------------------------------------------------------------- upload, live jobs list, tokens

/** Upload throughput of the page (bytes/s, CDP throttling), so that progress, pause and the
 * dropped connection can be watched; null lifts it. `offline` drops the connection. */
async function throttle(cdp, bytesPerSecond, offline = false) {
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions", {
    offline, latency: 0, downloadThroughput: -1, uploadThroughput: bytesPerSecond ?? -1,
  });
}

async function uploadState(page, name) {
  return page.evaluate((label) => {
    const bar = document.querySelector(`progress[aria-label="${label}"]`);
    const row = bar?.closest("li.upload");
    return {
      pct: bar ? Number(bar.getAttribute("value")) : null,
      phase: row ? [...row.classList].find((c) => c.startsWith("phase-"))?.slice(6) : null,
      status: row?.querySelector(".upload-status")?.textContent ?? "",
    };
  }, `Upload of ${name}`);
}

/** Waits until the upload's state satisfies `ok`; returns the states seen (deduplicated). */
async function watchUpload(page, name, ok, ms = 60000) {
  const seen = [];
  const deadline = Date.now() + ms;
  for (;;) {
    const state = await uploadState(page, name);
    const last = seen[seen.length - 1];
    if (!last || last.pct !== state.pct || last.phase !== state.phase) seen.push(state);
    if (ok(state)) return seen;
    if (state.phase === "failed") throw new Error(`upload failed: ${state.status}`);
    if (Date.now() > deadline) throw new Error(`upload state not reached; seen ${JSON.stringify(seen.slice(-5))}`);
    await page.waitForTimeout(100);
  }
}

async function chooseSettings(page) {
  const panel = page.locator(".upload-panel");
  await panel.getByLabel("Model", { exact: true }).waitFor({ state: "attached" });
  const details = panel.locator("details").first();
  if (!(await details.evaluate((d) => d.open))) await panel.getByText("Settings for these files").click();
  await panel.getByLabel("Model", { exact: true }).selectOption("tiny.en");
  await panel.getByLabel("Language", { exact: true }).selectOption("en");
}

/** The server's view of the upload this browser remembers (localStorage), by GET …/parts. */
async function rememberedUpload(page) {
  return page.evaluate(async () => {
    const records = Object.values(JSON.parse(localStorage.getItem("wisp.uploads.v1") ?? "{}"));
    if (records.length !== 1) return { records: records.length };
    const { uploadId, lastModified } = records[0];
    const r = await fetch(`api/wisp/uploads/${encodeURIComponent(uploadId)}/parts`, { credentials: "include" });
    const answer = r.ok ? await r.json() : null;
    return { records: 1, uploadId, lastModified, status: r.status, uploaded: answer?.uploaded?.length ?? 0 };
  });
}

async function uploadFlow(browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  // confirm() of revoke, and the "uploads are still running" question of the reload: yes
  page.on("dialog", (dialog) => void dialog.accept());
  const cdp = await context.newCDPSession(page);
  const bps = config.upload_bps ?? 4_000_000;
  const name = config.audio.split("/").pop();
  const { email, password } = config;

  await step(page, "upload-sign-in", () => signIn(page, email, password));

  const progress = await step(page, "upload-progress", async () => {
    await throttle(cdp, bps);
    await chooseSettings(page);
    await page.getByLabel("Audio or video files").setInputFiles(config.audio);
    const seen = await watchUpload(page, name, (s) => s.phase === "uploading" && s.pct >= 8);
    const status = (await uploadState(page, name)).status;
    return { seen, status };
  });

  const paused = await step(page, "pause-and-resume", async () => {
    const row = page.locator("li.upload", { hasText: name });
    await row.getByRole("button", { name: "Pause", exact: true }).click();
    await watchUpload(page, name, (s) => s.phase === "paused", 10000);
    const atPause = await uploadState(page, name);
    await page.waitForTimeout(1000);
    const stillPaused = await uploadState(page, name);
    await row.getByRole("button", { name: "Resume", exact: true }).click();
    const seen = await watchUpload(page, name, (s) => s.phase === "uploading" && s.pct > Math.max(atPause.pct, progress.seen.at(-1).pct) + 5);
    return { atPause, stillPaused, after: seen.at(-1) };
  });

  const before = await step(page, "part-stored-before-reload", async () => {
    // reload only once S3 holds a part, so that there is something to continue from
    for (;;) {
      const remembered = await rememberedUpload(page);
      if (remembered.uploaded >= 1) return { ...remembered, state: await uploadState(page, name) };
      if ((await uploadState(page, name)).phase !== "uploading") throw new Error(`not uploading: ${JSON.stringify(remembered)}`);
      await page.waitForTimeout(200);
    }
  });

  const resumed = await step(page, "reload-and-choose-the-file-again", async () => {
    await page.reload();
    await page.getByText("Unfinished uploads from earlier visits").waitFor();
    const listed = await page.locator(".upload-panel .remembered li").innerText();
    await throttle(cdp, bps);
    await chooseSettings(page);
    await page.getByLabel("Audio or video files").setInputFiles(config.audio);
    const seen = await watchUpload(page, name, (s) => s.phase === "uploading" && /Continued an earlier upload/.test(s.status));
    // a marker that lives as long as this document: the jobs list below must update without a reload
    await page.evaluate(() => { window.__wispDocument = "kept"; });
    return { listed, first: seen.at(-1), remembered: await rememberedUpload(page) };
  });

  const offline = await step(page, "connection-drops-and-comes-back", async () => {
    // what context.setOffline does (DevTools' offline emulation: requests fail, navigator.onLine
    // turns false, "offline" fires), but in the session that throttles, so that the upload
    // speed stays the same once the network is back
    await watchUpload(page, name, (s) => s.phase === "uploading" && s.pct >= resumed.first.pct + 3);
    const sending = await uploadState(page, name);
    await throttle(cdp, bps, true);
    // Chromium lets the bodies in flight go unthrottled when it goes offline and fails their
    // answers: S3 may hold those parts while the page counts them as failed
    await watchUpload(page, name, (s) => s.phase === "offline", 20000);
    const until = Date.now() + 1500;
    const during = await watchUpload(page, name, () => Date.now() > until, 5000);
    const whileOffline = { ...during.at(-1), onLine: await page.evaluate(() => navigator.onLine) };
    await throttle(cdp, bps);
    // back: it carries on by itself (sending what S3 lacks, after asking which parts it has)
    const seen = await watchUpload(page, name, (s) => s.phase !== "offline", 30000);
    return { sending, whileOffline, during, after: seen.at(-1) };
  });

  const finished = await step(page, "upload-completes", async () => {
    await throttle(cdp, null);
    const seen = await watchUpload(page, name, (s) => /Job \d+ created/.test(s.status), 90000);
    const jobId = Number(/Job (\d+) created/.exec(seen.at(-1).status)[1]);
    return { jobId, last: seen.at(-1), remembered: await page.evaluate(() => localStorage.getItem("wisp.uploads.v1")) };
  }, 100000);
  const jobId = finished.jobId;

  const live = await step(page, "job-goes-live-to-success", async () => {
    const row = page.locator("ul.jobs li.job", { hasText: `#${jobId} ` });
    await row.waitFor();
    const seen = [];
    for (;;) {
      const badge = await row.locator(".badge").innerText();
      const text = await row.locator(":scope > p").first().innerText();
      if (!seen.length || seen.at(-1).badge !== badge) seen.push({ badge, text });
      if (badge === "Ready") break;
      if (badge === "Failed") throw new Error(`job failed: ${await row.innerText()}`);
      await page.waitForTimeout(100);
    }
    return { seen, sameDocument: await page.evaluate(() => window.__wispDocument === "kept") };
  }, config.job_ms ?? 180000);

  const words = await step(page, "open-transcript-of-the-upload", async () => {
    await page.locator("ul.jobs li.job", { hasText: `#${jobId} ` }).getByRole("link", { name: "Open transcript" }).click();
    await page.locator("ol.segments li").first().waitFor();
    // the tab still holds the uploaded file: the player is there without choosing it again
    await page.locator("audio").waitFor();
    return {
      hash: await page.evaluate(() => location.hash),
      text: await page.locator("ol.segments").innerText(),
      words: await page.locator("ol.segments .word").count(),
      sameDocument: await page.evaluate(() => window.__wispDocument === "kept"),
    };
  });

  const sync = await step(page, "play-uploaded-recording-in-sync", async () => {
    await page.waitForFunction(() => document.querySelector("audio").readyState >= 1);
    const target = page.locator("ol.segments .word.playable").nth(Math.min(words.words - 1, 3));
    const clickedStart = Number(await target.getAttribute("data-start"));
    await target.click();
    await page.locator("ol.segments .word.is-spoken").first().waitFor();
    const read = () => page.evaluate(() => ({
      time: document.querySelector("audio").currentTime,
      paused: document.querySelector("audio").paused,
      duration: document.querySelector("audio").duration,
      index: document.querySelector(".word.is-spoken")?.getAttribute("data-word"),
      segment: document.querySelector(".word.is-spoken")?.getAttribute("data-seg"),
    }));
    const first = await read();
    await page.waitForTimeout(1500);
    const later = await read();
    await page.evaluate(() => document.querySelector("audio").pause());
    return { clickedStart, first, later };
  });

  let secret = "";
  const token = await step(page, "create-api-token", async () => {
    await page.getByRole("link", { name: "Account", exact: true }).click();
    await page.getByLabel("Name of the new token").fill(config.token_name);
    await page.getByRole("button", { name: "Create token" }).click();
    secret = (await page.locator("code.secret").innerText()).trim();
    await page.locator("table tbody tr", { hasText: config.token_name }).waitFor();
    const info = await page.evaluate(async (bearer) => {
      const r = await fetch("api/users/info", { credentials: "omit", headers: { Authorization: `Bearer ${bearer}` } });
      return { status: r.status, body: await r.json() };
    }, secret);
    return { secretLength: secret.length, info: { status: info.status, email: info.body?.email } };
  });

  await step(page, "revoke-api-token", async () => {
    await page.getByRole("button", { name: `Revoke: ${config.token_name}` }).click();
    await page.locator("table tbody tr", { hasText: config.token_name }).waitFor({ state: "detached" });
    const status = await page.evaluate(async (bearer) => (await fetch("api/users/info",
      { credentials: "omit", headers: { Authorization: `Bearer ${bearer}` } })).status, secret);
    // shown once: after a reload of the page the secret is nowhere
    await page.reload();
    await page.getByLabel("Name of the new token").waitFor();
    const shownAgain = (await page.content()).includes(secret);
    return { status, shownAgain, session: await page.evaluate(async () => (await fetch("api/users/info", { credentials: "include" })).status) };
  });

  await step(page, "upload-flow-sign-out", async () => {
    await page.getByRole("button", { name: "Sign out", exact: true }).click();
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    return { info: await page.evaluate(async () => (await fetch("api/users/info", { credentials: "include" })).status) };
  });
  await writeFile(join(config.out, `${config.flow}-result.json`), JSON.stringify({ progress, paused, offline, before, resumed, finished, live, sync, token }));
  await context.close();
}

// ---------------------------------------------------------------- job settings and the account page

/** POST /api/local-account/login from the page without keeping its cookie: the status only. */
async function loginStatus(page, email, password) {
  return page.evaluate(async ([username, secret]) => (await fetch("api/local-account/login", {
    method: "POST", credentials: "omit", body: new URLSearchParams({ username, password: secret }),
  })).status, [email, password]);
}

async function accountFlow(browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  const { email, password, new_password: newPassword, new_email: newEmail } = config;

  await step(page, "account-sign-in", () => signIn(page, email, password));

  const settings = await step(page, "save-default-settings", async () => {
    await page.goto(app("/settings"));
    await page.getByLabel("Model", { exact: true }).selectOption("tiny.en");
    await page.getByLabel("Language", { exact: true }).selectOption("en");
    await page.getByRole("button", { name: "Save as my default" }).click();
    await page.getByText("Saved as your default settings.").waitFor();
    await page.reload();
    await page.getByRole("button", { name: "Save as my default" }).waitFor();
    return {
      model: await page.getByLabel("Model", { exact: true }).inputValue(),
      language: await page.getByLabel("Language", { exact: true }).inputValue(),
    };
  });

  const wrong = await step(page, "change-password-wrong-current", async () => {
    await page.goto(app("/account"));
    const card = page.locator("section", { has: page.getByRole("heading", { name: "Change password" }) });
    await card.getByLabel("Current password").fill("Not-The-Password-1!");
    await card.getByLabel("New password").fill(newPassword);
    await card.getByLabel("Repeat the password").fill(newPassword);
    await card.getByRole("button", { name: "Change password" }).click();
    const error = card.locator(".error, [role=alert]").first();
    await error.waitFor();
    return { error: await error.innerText() };
  });

  const changed = await step(page, "change-password", async () => {
    const card = page.locator("section", { has: page.getByRole("heading", { name: "Change password" }) });
    await card.getByLabel("Current password").fill(password);
    await card.getByLabel("New password").fill(newPassword);
    await card.getByLabel("Repeat the password").fill(newPassword);
    await card.getByRole("button", { name: "Change password" }).click();
    await card.getByText("Your password is changed.").waitFor();
    return {
      oldPassword: await loginStatus(page, email, password),
      newPassword: await loginStatus(page, email, newPassword),
      session: await page.evaluate(async () => (await fetch("api/users/info", { credentials: "include" })).status),
    };
  });

  const emailChange = await step(page, "change-email", async () => {
    const card = page.locator("section", { has: page.getByRole("heading", { name: "Change e-mail address" }) });
    await card.getByLabel("New e-mail address").fill(newEmail);
    await card.getByLabel("Current password").fill(newPassword);
    await card.getByRole("button", { name: "Change address" }).click();
    await card.getByText("We sent a confirmation link to the new address.").waitFor();
    const link = await activationLink(newEmail);
    await page.goto(link);
    await page.getByText("Your e-mail address is confirmed.").waitFor();
    await page.goto(app("/account"));
    await page.reload();
    const facts = page.locator("dl.facts");
    await facts.getByText(newEmail, { exact: true }).waitFor();
    return { link: link.replace(/token=.*/, "token=…"), facts: await facts.innerText() };
  });

  const deleted = await step(page, "delete-account", async () => {
    const card = page.locator("section", { has: page.getByRole("heading", { name: "Delete account" }) });
    const button = card.getByRole("button", { name: "Delete my account" });
    const disabledBefore = await button.isDisabled();
    await card.getByLabel("Type your e-mail address to confirm").fill(newEmail);
    await button.click();
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    return {
      disabledBefore,
      hash: await page.evaluate(() => location.hash),
      info: await page.evaluate(async () => (await fetch("api/users/info", { credentials: "include" })).status),
    };
  });

  const gone = await step(page, "sign-in-fails-after-deletion", async () => {
    await page.getByLabel("E-mail address").fill(newEmail);
    await page.getByLabel("Password", { exact: true }).fill(newPassword);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    const error = page.locator(".error, [role=alert]").first();
    await error.waitFor();
    return {
      error: await error.innerText(),
      newEmail: await loginStatus(page, newEmail, newPassword),
      oldEmail: await loginStatus(page, email, newPassword),
    };
  });
  await writeFile(join(config.out, `${config.flow}-result.json`), JSON.stringify({ settings, wrong, changed, emailChange, deleted, gone }));
  await context.close();
}

// ---------------------------------------------------------------- speaker labels

async function diarizeFlow(browser) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  const name = config.audio.split("/").pop();
  const { email, password } = config;

  await step(page, "diarize-sign-in", () => signIn(page, email, password));

  const submitted = await step(page, "upload-asking-for-speaker-labels", async () => {
    await chooseSettings(page);
    const panel = page.locator(".upload-panel");
    const fieldset = panel.locator("fieldset", { has: page.getByText("Speaker labels (diarization)", { exact: true }) });
    await fieldset.getByLabel("Label who speaks").check();
    // the speaker bounds appear, left empty: as many speakers as there are
    const bounds = [await fieldset.getByLabel(/^Fewest speakers/).inputValue(), await fieldset.getByLabel(/^Most speakers/).inputValue()];
    await panel.getByLabel("Audio or video files").setInputFiles(config.audio);
    const seen = await watchUpload(page, name, (s) => /Job \d+ created/.test(s.status));
    return { jobId: Number(/Job (\d+) created/.exec(seen.at(-1).status)[1]), bounds };
  });
  const jobId = submitted.jobId;

  const finished = await step(page, "diarized-job-succeeds", async () => {
    const row = page.locator("ul.jobs li.job", { hasText: `#${jobId} ` });
    await row.waitFor();
    for (;;) {
      const badge = await row.locator(".badge").innerText();
      if (badge === "Ready") break;
      if (badge === "Failed") throw new Error(`job failed: ${await row.innerText()}`);
      await page.waitForTimeout(200);
    }
    await row.getByRole("button", { name: "Details" }).click();
    return { settings: await row.locator("dl.job-details dd").first().innerText() };
  }, config.job_ms ?? 240000);

  const shown = await step(page, "transcript-shows-speakers", async () => {
    await page.locator("ul.jobs li.job", { hasText: `#${jobId} ` }).getByRole("link", { name: "Open transcript" }).click();
    await page.locator("ol.segments li").first().waitFor();
    const segments = await page.locator("ol.segments li").evaluateAll((items) => items.map((li) => ({
      speaker: li.querySelector("span.speaker")?.textContent ?? null,
      text: li.querySelector("p")?.textContent ?? "",
    })));
    return { hash: await page.evaluate(() => location.hash), segments };
  });

  await writeFile(join(config.out, `${config.flow}-result.json`), JSON.stringify({ submitted, finished, shown }));
  await context.close();
}

const FLOWS = { user: userFlow, admin: adminFlow, banner: bannerFlow, upload: uploadFlow, account: accountFlow, diarize: diarizeFlow };
const browser = await launchChromium();
let status = 0;
try {
  await FLOWS[config.flow](browser);
} catch {
  status = 1;
} finally {
  await browser.close();
}
process.exit(status);
