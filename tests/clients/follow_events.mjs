// Follows GET /api/jobs/events the way Project-W's web frontend does: with the `eventsource` npm
// package (the version its lock file pins), listening to job_created, job_updated and job_deleted.
// Usage: node follow_events.mjs <base url> <session token> <seconds>
// Prints one JSON line per event ({"event", "data", "at"}) and {"open": true} when connected; exits
// 0 after the first job_deleted, 1 when the time is up or the stream fails for good.
import { EventSource } from "eventsource";

const [base, token, seconds] = process.argv.slice(2);
const print = (value) => process.stdout.write(`${JSON.stringify({ ...value, at: Date.now() / 1000 })}\n`);

const source = new EventSource(`${base}/api/jobs/events`, {
  withCredentials: true,
  // Node's fetch has no cookie jar: send the session cookie as the browser would
  fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, Cookie: `token=${token}` } }),
});
source.addEventListener("open", () => print({ open: true }));
for (const name of ["job_created", "job_updated", "job_deleted"]) {
  source.addEventListener(name, (event) => {
    print({ event: name, data: event.data });
    if (name === "job_deleted") {
      source.close();
      process.exit(0);
    }
  });
}
source.addEventListener("error", (event) => {
  if (source.readyState === source.CLOSED) {
    print({ failed: String(event.message ?? event.code ?? "closed") });
    process.exit(1);
  }
});
setTimeout(() => {
  print({ timeout: true });
  process.exit(1);
}, Number(seconds) * 1000);
