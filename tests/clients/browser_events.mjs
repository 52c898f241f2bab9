// Follows GET /api/jobs/events with the browser's own EventSource, in Debian's headless chromium
// driven by playwright-core, from a page of the same origin (as a frontend served with Wisp is).
// Usage: node browser_events.mjs <base url> <session token> <seconds>
// Output and exit status as follow_events.mjs.
import { launchChromium } from "./chromium.mjs";

const [base, token, seconds] = process.argv.slice(2);
const print = (value) => process.stdout.write(`${JSON.stringify({ ...value, at: Date.now() / 1000 })}\n`);

const browser = await launchChromium();
const finish = async (code) => {
  await browser.close();
  process.exit(code);
};
setTimeout(() => {
  print({ timeout: true });
  finish(1);
}, Number(seconds) * 1000);

const context = await browser.newContext();
await context.addCookies([{ name: "token", value: token, url: base }]);
const page = await context.newPage();
await page.exposeFunction("report", async (value) => {
  print(value);
  if (value.event === "job_deleted" || value.failed) await finish(value.failed ? 1 : 0);
});
await page.goto(`${base}/`);
await page.evaluate(() => {
  const source = new EventSource("/api/jobs/events", { withCredentials: true });
  source.addEventListener("open", () => window.report({ open: true }));
  for (const name of ["job_created", "job_updated", "job_deleted"]) {
    source.addEventListener(name, (event) => window.report({ event: name, data: event.data }));
  }
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) window.report({ failed: "closed" });
  });
});
