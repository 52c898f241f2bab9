// A person clicks an OIDC provider's button, as Project-W's frontend offers it (a full-page
// navigation to /api/oidc/login/<provider>), in Debian's headless chromium: the provider's login
// form, its consent form, back through Wisp's callback to client_url. Then the page asks
// /api/users/info with the cookie the browser now holds, as the frontend's next call does.
// Usage: node oidc_browser.mjs <base url> <provider name, lower-cased> <login>
// Prints one JSON line: {landed, cookie, info: {status, body}}.
import { launchChromium } from "./chromium.mjs";

const [base, provider, login] = process.argv.slice(2);

const browser = await launchChromium();
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(30000);
  await page.goto(`${base}/api/oidc/login/${encodeURIComponent(provider)}`);
  // the provider's pages: a login form, then a consent form, each submitted once
  for (let step = 0; step < 4 && !page.url().startsWith(base); step++) {
    const form = page.locator("form").first();
    await form.waitFor();
    const loginField = form.locator('input[name="login"]');
    if (await loginField.count()) {
      await loginField.fill(login);
      await form.locator('input[name="password"]').fill("any password");
    }
    await Promise.all([page.waitForNavigation(), form.locator('button[type="submit"], input[type="submit"]').first().click()]);
  }
  await page.waitForURL((url) => url.toString().startsWith(base));
  const cookie = await page.evaluate(() => document.cookie);
  const info = await page.evaluate(async () => {
    const r = await fetch("/api/users/info");
    return { status: r.status, body: await r.json() };
  });
  console.log(JSON.stringify({ landed: page.url(), cookie, info }));
} finally {
  await browser.close();
}
