// Debian's chromium, headless, as every browser test here starts it (playwright-core cannot
// download a browser of its own on these machines). CHROMIUM overrides the executable.
import { chromium } from "playwright-core";

export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    // no background networking: this machine's closed network refuses those connections
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}
