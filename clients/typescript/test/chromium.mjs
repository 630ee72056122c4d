// Headless Chromium for the end-to-end tests: Debian's `chromium`
// (GAMEWIRE_CHROMIUM, else /usr/bin/chromium) in a fresh profile, driven by
// playwright-core, which downloads no browser of its own.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

// Chromium as the browser issue starts it: no sandbox (root in a
// container), no GPU, and no traffic of its own to a closed network.
const FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
];

/**
 * Runs `use(browser)` in a fresh headless Chromium of `viewport`, then
 * closes it and removes its profile, whatever happened.
 */
export async function withChromium(viewport, use) {
  const profile = await mkdtemp(join(tmpdir(), "gamewire-chromium-"));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.GAMEWIRE_CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: FLAGS,
    viewport,
  });
  try {
    return await use(browser);
  } finally {
    await browser.close();
    await rm(profile, { recursive: true, force: true });
  }
}
