// The admin page in headless Chromium: it refuses a wrong token, shows the
// sessions and rooms once given the right one, and kicks a user.
//
// Run by `cargo test -p gamewire-tests --test it admin` (tests/it/admin_page.rs),
// which starts a server with three clients: GAMEWIRE_ADMIN_URL is the page,
// GAMEWIRE_ADMIN_TOKEN the token, GAMEWIRE_KICK the user to kick,
// GAMEWIRE_CHROMIUM the browser, GAMEWIRE_SCREENSHOT (optional) where to
// save a picture of the page.
import { test } from "node:test";
import assert from "node:assert/strict";
import { withChromium } from "./chromium.mjs";

const url = process.env.GAMEWIRE_ADMIN_URL;
const token = process.env.GAMEWIRE_ADMIN_TOKEN;
const kick = process.env.GAMEWIRE_KICK;
const skip = url === undefined || token === undefined || kick === undefined
  ? "run by `cargo test -p gamewire-tests --test it admin`, which starts a server"
  : false;

test("the admin page lists sessions and rooms and kicks a user", { skip, timeout: 90_000 }, async () => {
  await withChromium({ width: 1000, height: 620 }, async (browser) => {
    const page = await browser.newPage();
    await page.goto(url);
    await page.fill("#token", "not-the-token");
    await page.click("#login button");
    await page.locator("#status", { hasText: "the token was refused" }).waitFor();

    await page.fill("#token", token);
    await page.click("#login button");
    await page.locator("#status", { hasText: /^up / }).waitFor();
    await page.locator("#connections", { hasText: "3" }).waitFor();
    await page.locator("#sessions tr").nth(2).waitFor();
    assert.equal(await page.locator("#sessions tr").count(), 3);
    assert.equal(await page.locator('#rooms tr[data-room="3"] td').nth(1).textContent(), "1, 2");
    assert.equal(await page.locator('#rooms tr[data-room="8"] td').nth(1).textContent(), "3");

    if (process.env.GAMEWIRE_SCREENSHOT) {
      await page.screenshot({ path: process.env.GAMEWIRE_SCREENSHOT });
    }
    await page.locator(`#sessions tr[data-user="${kick}"] button`).click();
    await page.locator(`#sessions tr[data-user="${kick}"]`).waitFor({ state: "detached" });
    await page.locator("#connections", { hasText: "2" }).waitFor();
  });
});
