// Accessibility audit of Wisp's web app in Debian's headless chromium with axe-core (WCAG 2 A/AA
// rules: labelled controls, names of buttons and links, colour contrast, landmarks, ...), on the
// pages a visitor sees and, signed in with the given session cookie, on the pages a user sees.
// Usage: node a11y.mjs <base url> [<session token>]
// Prints one JSON line: {pages: {<hash>: [violation ids with their element counts]}, keyboard,
// control} (control: what the audit finds on a page given an unlabelled field on purpose).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

import { launchChromium } from "./chromium.mjs";

const [base, session] = process.argv.slice(2);
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const VISITOR = ["#/auth/login", "#/auth/signup", "#/auth/reset-password", "#/about"];
const USER = ["#/", "#/settings", "#/account"];

const browser = await launchChromium();
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  const pages = {};

  async function audit(hash) {
    await page.goto(`${base}/${hash}`);
    await page.locator("main h1").first().waitFor();
    await page.waitForLoadState("networkidle");
    await page.addScriptTag({ content: axeSource });
    const result = await page.evaluate(async () =>
      // eslint-disable-next-line no-undef
      axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }));
    pages[hash] = result.violations.map((v) => `${v.id} (${v.nodes.length}): ${v.nodes[0]?.target?.join(" ")}`);
  }

  for (const hash of VISITOR) await audit(hash);
  // keyboard: from the top of the sign-in page, Tab reaches the e-mail field, then the password
  await page.goto(`${base}/#/auth/login`);
  await page.locator("main h1").first().waitFor();
  const reached = [];
  for (let i = 0; i < 12; i++) {
    await page.keyboard.press("Tab");
    reached.push(await page.evaluate(() => {
      const el = document.activeElement;
      return el ? (el.getAttribute("name") || el.getAttribute("type") || el.tagName.toLowerCase()) : "";
    }));
  }
  if (session) {
    const url = new URL(base);
    await context.addCookies([{ name: "token", value: session, domain: url.hostname, path: "/" }]);
    for (const hash of USER) await audit(hash);
  }
  // a control that proves the audit can fail: the sign-in page with an unlabelled field added
  await page.goto(`${base}/#/auth/login`);
  await page.locator("main h1").first().waitFor();
  await page.evaluate(() => document.querySelector("main").appendChild(document.createElement("input")));
  await page.addScriptTag({ content: axeSource });
  const control = (await page.evaluate(async () => axe.run(document, { runOnly: { type: "rule", values: ["label"] } })))
    .violations.map((v) => v.id);
  process.stdout.write(`${JSON.stringify({ pages, keyboard: reached, control })}\n`);
} finally {
  await browser.close();
}
