// The chat example's browser demo in real headless Chromium: two pages
// join a room that a TCP client is in, and every member sees every line.
//
// Run by `cargo test -p example-chat` (examples/chat/src/tests.rs), which
// starts the server and the TCP client: GAMEWIRE_PAGE_URL is the demo's
// address, GAMEWIRE_ROOM the room, GAMEWIRE_TCP_LINE what the TCP client
// says, GAMEWIRE_CHROMIUM the browser, and GAMEWIRE_SCREENSHOT, when set,
// where to save a picture of the first page.
import { test } from "node:test";
import assert from "node:assert/strict";
import { withChromium } from "./chromium.mjs";

const url = process.env.GAMEWIRE_PAGE_URL;
const room = process.env.GAMEWIRE_ROOM;
const tcpLine = process.env.GAMEWIRE_TCP_LINE;
const skip = url === undefined || room === undefined || tcpLine === undefined
  ? "run by `cargo test -p example-chat`, which starts the server and a TCP client"
  : false;

test("two browser pages and a TCP client chat in one room", { skip, timeout: 90_000 }, async () => {
  await withChromium({ width: 900, height: 560 }, async (browser) => {
    const problems = [];
    const open = async () => {
      const page = await browser.newPage();
      page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
      page.on("console", (message) => {
        if (message.type() === "error") problems.push(`console: ${message.text()}`);
      });
      await page.goto(url);
      const status = page.locator("#status");
      await status.filter({ hasText: /connected as user \d+/ }).waitFor();
      const user = Number((await status.textContent()).match(/\d+/)[0]);
      await page.fill("#room", room);
      await page.click("#join");
      await line(page, `you joined room ${room}`);
      return { page, user };
    };
    const line = (page, text) => page.locator("#log li", { hasText: text }).first().waitFor();

    const a = await open();
    const b = await open();
    assert.notEqual(a.user, b.user);
    await line(a.page, `user ${b.user} joined room ${room}`);

    await a.page.fill("#text", "hello from page A");
    await a.page.click("#send");
    await b.page.fill("#text", "hello from page B");
    await b.page.press("#text", "Enter");

    for (const [me, other, mine, theirs] of [
      [a, b, "hello from page A", "hello from page B"],
      [b, a, "hello from page B", "hello from page A"],
    ]) {
      await line(me.page, `[room ${room}] you: ${mine}`);
      await line(me.page, `[room ${room}] user ${other.user}: ${theirs}`);
      await line(me.page, `: ${tcpLine}`);
    }

    // The room list counts the TCP client and both pages.
    await b.page.click("#refresh");
    await b.page.locator(`#rooms li[data-room="${room}"]`, { hasText: "3 members" }).waitFor();

    if (process.env.GAMEWIRE_SCREENSHOT) {
      await a.page.click("#refresh");
      await a.page.locator(`#rooms li[data-room="${room}"]`, { hasText: "3 members" }).waitFor();
      await a.page.screenshot({ path: process.env.GAMEWIRE_SCREENSHOT });
    }
    assert.deepEqual(problems, []);
  });
});
