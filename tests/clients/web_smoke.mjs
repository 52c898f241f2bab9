// Opens Wisp's web app at <base url>/ in Debian's headless chromium, as a person who is not signed
// in: the app sends them to its sign-in page. Reports what that page shows.
// Usage: node web_smoke.mjs <base url>
// Prints one JSON line: {hash, title, heading, fields, buttons, links, problems}; problems are the
// page's uncaught errors and console errors (a 401 from the "who is signed in?" probe is expected
// and not one).
import { launchChromium } from "./chromium.mjs";

const [base] = process.argv.slice(2);

const browser = await launchChromium();
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(30000);
  const problems = [];
  page.on("pageerror", (error) => problems.push(String(error)));
  page.on("console", (message) => {
    if (message.type() === "error" && !/status of 401/.test(message.text())) problems.push(message.text());
  });
  await page.goto(`${base}/`);
  const heading = page.getByRole("heading", { level: 1 });
  await heading.filter({ hasText: "Sign in" }).waitFor();
  const result = {
    hash: new URL(page.url()).hash,
    title: await page.title(),
    heading: await heading.innerText(),
    fields: {
      email: await page.getByLabel("E-mail address").count(),
      password: await page.getByLabel("Password", { exact: true }).count(),
    },
    buttons: await page.getByRole("button").allInnerTexts(),
    links: await page.locator("main").getByRole("link").allInnerTexts(),
    problems,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await browser.close();
}
