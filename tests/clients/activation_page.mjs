// Follows an activation link from a mail in Debian's headless chromium (driven by playwright-core)
// as a person does: opens it in Wisp's web app, reads what the page says, follows its link to the
// sign-in page, signs in there and reads who the app says is signed in. Finally asks the API, from
// that page, who is logged in.
// Usage: node activation_page.mjs <activation link> <e-mail address> <password>
// Prints one JSON line: {activated, offered, loggedIn, landed, info: {status, body}}; the texts are
// what the page shows. Exit status 0 unless the page could not be driven.
import { launchChromium } from "./chromium.mjs";

const [link, email, password] = process.argv.slice(2);

const browser = await launchChromium();
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(30000);
  await page.goto(link);
  const main = page.locator("main");
  await main.locator(".success, .error").first().waitFor();
  const activated = await main.locator(".success, .error").first().innerText();
  const next = main.getByRole("link", { name: /sign-in|continue/i });
  const offered = await next.innerText();
  await next.click();
  await page.getByLabel("E-mail address").fill(email);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  const who = page.getByText(/^Signed in as /);
  await who.waitFor();
  const loggedIn = await who.innerText();
  const info = await page.evaluate(async () => {
    const response = await fetch("api/users/info", { credentials: "include" });
    return { status: response.status, body: await response.json() };
  });
  process.stdout.write(`${JSON.stringify({ activated, offered, loggedIn, landed: new URL(page.url()).hash, info })}\n`);
} finally {
  await browser.close();
}
