// A staff member runs a migration from the console in a real browser (Debian's
// chromium, headless, driven by playwright-core). Started by tests/e2e/browser.rs,
// which starts Ferry and two Dovecot servers and passes their addresses in the
// environment. Exits non-zero, with the reason, when anything a person would see
// is wrong. Screenshots of each page go to $SCREENSHOTS.

import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import path from "node:path";

const env = (name) => {
  const value = process.env[name];
  assert.ok(value, `${name} is not set`);
  return value;
};
const base = env("FERRY_URL");
const shots = env("SCREENSHOTS");
const step = (what) => console.log(`- ${what}`);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
});
try {
  // A viewer in Paris: times are sent in UTC and shown in the viewer's zone.
  const page = await browser.newPage({
    viewport: { width: 1280, height: 900 },
    locale: "en-US",
    timezoneId: "Europe/Paris",
  });
  page.setDefaultTimeout(30_000);
  const shot = (name) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));

  step("sign in");
  await page.goto(`${base}/login`);
  await page.getByLabel("Email").fill(env("ADMIN_EMAIL"));
  await page.getByLabel("Password").fill(env("ADMIN_PASSWORD"));
  await shot("01-login");
  await Promise.all([page.waitForURL(`${base}/`), page.getByRole("button", { name: "Sign in" }).click()]);
  await shot("02-dashboard");

  step("fill the new-migration form");
  const nav = page.getByRole("navigation", { name: "Main" });
  await nav.getByRole("link", { name: "New migration" }).click();
  await page.waitForURL(`${base}/migrations/new`);
  const start = page.locator("#start");
  assert.equal(await page.locator('[id="window.time_zone"]').inputValue(), "Europe/Paris", "the viewer's time zone by default");
  assert.equal(await start.isDisabled(), true, "Start is disabled before authentication");
  const side = async (name, port, user, password) => {
    await page.locator(`[id="${name}.host"]`).fill("127.0.0.1");
    await page.locator(`[id="${name}.port"]`).fill(port);
    await page.locator(`[id="${name}.security"]`).selectOption("none");
    await page.locator(`[id="${name}.username"]`).fill(user);
    await page.locator(`[id="${name}.password"]`).fill(password);
  };
  await side("source", env("SRC_PORT"), env("SRC_USER"), "not-the-password");
  step("a wrong password: the reason, and Start stays disabled");
  await page.locator('[data-authenticate="source"]').click();
  const srcResult = page.locator('[data-result="source"]');
  await srcResult.getByText("Not authenticated (auth)").waitFor();
  await page.locator('[id="source.password"]').fill(env("SRC_PASSWORD"));
  step("show/hide the password");
  await page.locator('[data-toggle="source.password"]').click();
  assert.equal(await page.locator('[id="source.password"]').getAttribute("type"), "text");
  await page.locator('[data-toggle="source.password"]').click();
  assert.equal(await page.locator('[id="source.password"]').getAttribute("type"), "password");
  step("authenticate both sides");
  await page.locator('[data-authenticate="source"]').click();
  await srcResult.getByText(/Authenticated: \d+ folders, \d+ messages/).waitFor();
  assert.match(await srcResult.innerText(), /INBOX: \d+ messages/);
  await side("destination", env("DST_PORT"), env("DST_USER"), env("DST_PASSWORD"));
  await page.locator('[data-authenticate="destination"]').click();
  await page.locator('[data-result="destination"]').getByText(/Authenticated:/).waitFor();
  assert.equal(await start.isDisabled(), true, "Start waits for the terms");
  await page.getByLabel("The customer accepts the terms of the migration").check();
  assert.equal(await start.isDisabled(), false, "Start is enabled");
  await page.getByLabel("Start as soon as a slot is free").check();
  assert.equal(await page.locator('[id="window.date"]').isDisabled(), true, "the override disables the window's date");
  assert.equal(await page.locator('[id="window.time"]').isDisabled(), true, "and its time");
  // One pass: the MX of a test domain never changes.
  await page.getByLabel("Two passes: before and after the MX change").uncheck();
  await page.getByLabel("Requester's email").fill("not an address");
  await shot("03-new-migration-authenticated");

  step("a validation error shows beside its field, nothing typed is lost");
  await start.click();
  const emailError = page.locator('[data-error-for="requester_email"]');
  await emailError.waitFor({ state: "visible" });
  assert.match(await emailError.innerText(), /email|address/i);
  assert.equal(await page.evaluate(() => document.activeElement.id), "requester_email", "focus moves to the error");
  assert.equal(await page.getByLabel("Requester's email").getAttribute("aria-invalid"), "true");
  assert.equal(await page.locator('[id="source.password"]').inputValue(), env("SRC_PASSWORD"));
  assert.equal(await page.locator('[id="destination.username"]').inputValue(), env("DST_USER"));
  await shot("04-new-migration-error");

  step("start");
  await page.getByLabel("Requester's email").fill(env("DST_USER"));
  await Promise.all([page.waitForURL(/\/migrations\/\d+$/), start.click()]);
  const migrationUrl = page.url();

  step("the progress bars reach 100 % without a reload by hand");
  await page.waitForFunction(() => document.getElementById("overall")?.value === 100, null, { timeout: 90_000 });
  await page.locator("#status").getByText("completed").waitFor({ timeout: 90_000 });
  const folderBars = await page.locator("#folders progress").evaluateAll((bars) =>
    bars.map((b) => [b.getAttribute("aria-label"), b.value, b.max]));
  assert.ok(folderBars.length > 1, "a bar per folder");
  for (const [folder, value, max] of folderBars) {
    assert.equal(value, max, `${folder} is complete`);
  }
  const started = page.locator("#passes time[data-local]").first();
  assert.match(await started.innerText(), /GMT\+1|CET/, "a pass's start in the viewer's time zone");
  assert.match(await started.getAttribute("title"), / UTC$/, "the UTC time in the tooltip");
  await shot("05-migration-completed");

  step("synchronise: a second pass");
  await Promise.all([page.waitForURL(migrationUrl), page.getByRole("button", { name: "Synchronise now" }).click()]);
  await page.locator(".flash.ok").getByText("A catch-up copy starts now").waitFor();
  await page.locator("#passes").getByText("catch-up copy").waitFor({ timeout: 60_000 });
  await page.locator("#status").getByText("completed").waitFor({ timeout: 60_000 });
  assert.equal(await page.locator("#passes tbody tr").count(), 2, "two passes");
  await shot("06-migration-second-pass");

  step("the list, the outbox");
  await nav.getByRole("link", { name: "Migrations", exact: true }).click();
  await page.locator(`a[href="${new URL(migrationUrl).pathname}"]`).waitFor();
  await shot("07-migrations");
  await nav.getByRole("link", { name: "Outbox" }).click();
  await page.getByText(/is complete/).first().waitFor();
  await shot("08-outbox");

  step("the schedule and the dashboard");
  await nav.getByRole("link", { name: "Schedule" }).click();
  await page.getByRole("heading", { name: "Schedule" }).waitFor();
  await page.getByText("in your time zone (Europe/Paris)").waitFor();
  await shot("10-schedule");
  await nav.getByRole("link", { name: "Dashboard" }).click();
  await page.getByRole("heading", { name: "Running now" }).waitFor();
  await shot("11-dashboard");

  step("move a scheduled migration to another window");
  const scheduledUrl = `${base}${env("SCHEDULED_URL")}`;
  await page.goto(scheduledUrl);
  // Validation may still run; the page reloads itself when the status changes.
  await page.locator("#reschedule").waitFor({ timeout: 30_000 });
  await page.getByLabel("New window").fill(env("MOVE_DATE"));
  await page.locator('[id="window.time"]').fill(env("MOVE_TIME"));
  await Promise.all([page.waitForURL(scheduledUrl), page.getByRole("button", { name: "Move window" }).click()]);
  await page.locator(".flash.ok").getByText("Moved to the new window").waitFor();
  await shot("14-migration-moved");

  step("a failed migration: the password typed beside Retry makes it Store and retry");
  await page.goto(`${base}${env("FAILED_URL")}`);
  await page.locator("#retry-button").waitFor({ timeout: 30_000 });
  assert.equal((await page.locator("#retry-button").innerText()).trim(), "Retry");
  await page.getByLabel("New source password").fill(env("SRC_PASSWORD"));
  assert.equal((await page.locator("#retry-button").innerText()).trim(), "Store and retry");
  await page.getByText("A server refused the login.").waitFor();
  await Promise.all([page.waitForURL(`${base}${env("FAILED_URL")}`), page.locator("#retry-button").click()]);
  await page.locator(".flash.ok").getByText("New passwords stored (encrypted)").waitFor();

  step("import a list: rows typed, each problem in its cell, the ready row made");
  await page.goto(`${base}/migrations/import`);
  assert.equal(await page.locator(".flash").count(), 0, "Retry's message was shown once, not again here");
  const when = `${env("MOVE_DATE")}T${env("MOVE_TIME")} Europe/Paris`;
  const sides = `127.0.0.1:${env("SRC_PORT")};${env("SRC_USER")};${env("SRC_PASSWORD")};127.0.0.1:${env("DST_PORT")}`;
  await page.getByLabel("Or type the rows").fill([
    "source server;source email;source password;destination server;destination mailbox;destination password;window;source security;destination security",
    `${sides};lee@new.example;${env("DST_PASSWORD")};${when};none;none`,
    `${sides};bob@new.example;${env("DST_PASSWORD")};${when};none;none`,
  ].join("\n"));
  await page.getByLabel("Requester's email").fill("it@customer.example");
  await Promise.all([
    page.waitForURL(/\/migrations\/import\/\d+$/),
    page.getByRole("button", { name: "Preview" }).click(),
  ]);
  const importUrl = new URL(page.url()).pathname;
  await page.locator(".badge.ok", { hasText: "1 ready" }).waitFor();
  await page.getByText("bob@new.example already has a migration in progress").waitFor();
  assert.ok(!(await page.content()).includes(env("SRC_PASSWORD")), "no password in the preview");
  await shot("16-import-preview");
  await page.getByRole("button", { name: "Make the 1 ready migration(s)" }).click();
  await page.getByText("Made 1 migration(s)").waitFor();
  await page.getByRole("link", { name: /^migration #\d+$/ }).waitFor();

  step("a ticket: the list, its page with the preview, a reply, create the migrations");
  await nav.getByRole("link", { name: "Tickets" }).click();
  await page.getByRole("heading", { name: "Tickets" }).waitFor();
  await page.getByRole("link", { name: "Two mailboxes to move" }).click();
  await page.waitForURL(`${base}${env("TICKET_URL")}`);
  await page.locator(".badge.ok", { hasText: "1 ready" }).waitFor();
  await page.locator(".problems").getByText("the password is required").waitFor();
  assert.ok(!(await page.content()).includes(env("SRC_PASSWORD")), "no password in the ticket's preview");
  await shot("17-ticket");
  await page.getByLabel("Your answer to kim@customer.example").fill("Thank you Kim, we start with your mailbox. Zoe's row needs its password.");
  await Promise.all([page.waitForURL(`${base}${env("TICKET_URL")}`), page.getByRole("button", { name: "Send" }).click()]);
  await page.locator(".flash.ok").getByText("Your answer is on its way.").waitFor();
  await page.locator(".email.outgoing", { hasText: "Zoe's row needs its password" }).waitFor();
  await Promise.all([
    page.waitForURL(`${base}${env("TICKET_URL")}`),
    page.getByRole("button", { name: "Create the 1 migration(s)" }).click(),
  ]);
  await page.locator(".flash.ok").getByText("Made 1 migration(s); 1 row(s) not started.").waitFor();
  await page.getByRole("link", { name: /^#\d+$/ }).first().waitFor();
  await page.getByText("The migrations of this file were made").waitFor();
  await shot("18-ticket-migrations-made");
  const ticketUrl = env("TICKET_URL");

  step("settings: an error beside its field, then a change in force, then a reset");
  await nav.getByRole("link", { name: "Settings" }).click();
  await page.getByRole("heading", { name: "Test the email settings" }).waitFor();
  await shot("12-settings");
  const concurrent = page.getByLabel("Passes at once");
  await concurrent.fill("0");
  await page.getByLabel("Off-hours start").fill("21:30");
  await page.getByRole("button", { name: "Save settings" }).click();
  await page.getByText("Nothing was saved").waitFor();
  assert.equal(await concurrent.getAttribute("aria-invalid"), "true");
  assert.match(await page.locator('[data-error-for="capacity.max_concurrent"]').innerText(), /from 1 to 256/);
  assert.equal(await page.getByLabel("Off-hours start").inputValue(), "21:30", "what was typed is kept");
  await shot("13-settings-error");
  await concurrent.fill("6");
  await Promise.all([page.waitForURL(`${base}/settings`), page.getByRole("button", { name: "Save settings" }).click()]);
  await page.locator(".flash.ok").getByText("Saved and in force now: Off-hours start, Passes at once").waitFor();
  assert.equal(await concurrent.inputValue(), "6");
  await nav.getByRole("link", { name: "Schedule" }).click();
  await page.locator(".card .n", { hasText: / \/ 6$/ }).waitFor();
  await nav.getByRole("link", { name: "Settings" }).click();
  page.once("dialog", (d) => d.accept());
  await Promise.all([
    page.waitForURL(`${base}/settings`),
    page.locator('button[value="capacity.max_concurrent"]').click(),
  ]);
  await page.locator(".flash.ok").getByText("back to the value from ferry.toml").waitFor();
  assert.equal(await page.getByLabel("Passes at once").inputValue(), "4");

  step("on a phone: no page scrolls sideways, the navigation behind Menu");
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(migrationUrl);
  await shot("09-migration-phone");
  const menu = page.getByRole("button", { name: "Menu" });
  assert.equal(await page.locator("#main-nav").isVisible(), false, "the navigation is collapsed");
  await menu.click();
  assert.equal(await page.locator("#main-nav").isVisible(), true, "Menu opens it");
  assert.equal(await menu.getAttribute("aria-expanded"), "true");
  const phonePages = ["/", "/migrations", "/migrations/new", new URL(migrationUrl).pathname,
    env("SCHEDULED_URL"), "/schedule", "/outbox", "/audit", "/users", "/settings", "/account",
    env("CUSTOMER_PATH"), env("FAILED_URL"), "/migrations/import", importUrl, "/tickets", ticketUrl];
  for (const p of phonePages) {
    await page.goto(`${base}${p}`);
    const [scroll, width] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    assert.ok(scroll <= width, `${p} is ${scroll} px wide at ${width} px`);
    const badge = page.locator("#status");
    if (await badge.count()) {
      const box = await badge.boundingBox();
      assert.ok(box && box.x + box.width <= width, `${p}: the status is on screen`);
    }
  }
  await page.goto(`${base}${env("CUSTOMER_PATH")}`);
  await page.getByRole("heading", { name: "Your mail migration" }).waitFor();
  await shot("15-customer-page-phone");

  const html = await page.content();
  assert.ok(!html.includes(env("SRC_PASSWORD")) && !html.includes(env("DST_PASSWORD")), "no password in a page");
  assert.deepEqual(errors, [], "no script error");
  console.log("ok");
} finally {
  await browser.close();
}
