// Follows an activation link from a mail in Debian's headless chromium (driven by playwright-core)
// as a person does: opens it, reads what the page says, then logs in with the form the page offers
// and reads what it says next. Finally asks the API, from that page, who is logged in.
// Usage: node activation_page.mjs <activation link> <e-mail address> <password>
// Prints one JSON line: {activated, offered, loggedIn, next, info: {status, body}}; the texts are
// what the page shows. Exit status 0 unless the page could not be driven.
import { launchChromium } from "./chromium.mjs";

const [link, email, password] = process.argv.slice(2);

const browser = await launchChromium();
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(30000);
  await page.goto(link);
  const result = page.locator("#result");
  await result.filter({ hasText: /\S/ }).waitFor();
  const activated = await result.innerText();
  const offered = await page.locator("#next").innerText();
  await page.getByLabel("E-mail address").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
  await result.filter({ hasText: /logged in|\d{3}:/ }).waitFor();
  const loggedIn = await result.innerText();
  const next = await page.locator("#next").innerText();
  const info = await page.evaluate(async () => {
    const response = await fetch("api/users/info", { credentials: "include" });
    return { status: response.status, body: await response.json() };
  });
  process.stdout.write(`${JSON.stringify({ activated, offered, loggedIn, next, info })}\n`);
} finally {
  await browser.close();
}
