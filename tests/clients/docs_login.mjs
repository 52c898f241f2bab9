// Logs in from Swagger UI at /docs as a person does, in Debian's headless chromium driven by
// playwright-core: open POST /api/local-account/login, press "Try it out", fill in only username
// and password, press "Execute". Then, in the same page, runs GET /api/users/info the same way,
// which needs the session cookie the login set.
// Usage: node docs_login.mjs <base url> <e-mail address> <password>
// Prints one JSON line: {login: {status, sent, body}, info: {status, body}}; exit status 0 unless
// the page could not be driven.
import { launchChromium } from "./chromium.mjs";

const [base, email, password] = process.argv.slice(2);

const browser = await launchChromium();
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(30000);
  const sent = {};
  page.on("request", (request) => {
    const path = new URL(request.url()).pathname;
    if (path.startsWith("/api/")) sent[path] = request.postData();
  });

  // Opens an operation's panel, presses "Try it out", lets `fill` fill it in, presses "Execute"
  // and returns the status and body Swagger UI shows.
  async function tryOut(tag, operationId, fill) {
    await page.goto(`${base}/docs#/${tag}/${operationId}`);
    const op = page.locator(`#operations-${tag}-${operationId}`);
    await op.waitFor();
    const tryButton = op.locator("button.try-out__btn");
    if (!(await tryButton.count())) await op.locator(".opblock-summary-control").click();
    await tryButton.click();
    await fill(op);
    await op.locator("button.execute").click();
    const row = op.locator(".live-responses-table .response").first();
    await row.waitFor();
    const status = Number((await row.locator(".response-col_status").innerText()).trim());
    const body = (await row.locator(".response-col_description pre").first().innerText()).trim();
    return { status, body };
  }

  const login = await tryOut("local-account", "local-account-login", async (op) => {
    await op.locator('input[placeholder="username"]').fill(email);
    await op.locator('input[placeholder="password"]').fill(password);
  });
  login.sent = sent["/api/local-account/login"] ?? null;
  const info = await tryOut("users", "users-info", async () => {});
  process.stdout.write(`${JSON.stringify({ login, info })}\n`);
} finally {
  await browser.close();
}
