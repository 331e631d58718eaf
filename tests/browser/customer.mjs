// A customer, without an account, in a real browser (Debian's chromium, headless,
// driven by playwright-core): asks for a migration on /request (Authenticate on the
// old mailbox, the earliest window shown, the terms), then staff approve it in the
// console, and the customer follows it on /track at phone width: a wrong password
// refused, the bars moving to complete, pause and resume, the report downloaded,
// sign-out. Started by tests/e2e/browser.rs; screenshots go to $SCREENSHOTS.

import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import fs from "node:fs";
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
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: "en-US", acceptDownloads: true });
  const page = await phone.newPage();
  page.setDefaultTimeout(30_000);
  const shot = (name) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  const fitsPhone = async (what) => {
    const [scroll, width] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    assert.ok(scroll <= width, `${what} is ${scroll} px wide at ${width} px`);
  };

  step("the request form: Authenticate, the earliest window, the terms");
  await page.goto(`${base}/request`);
  assert.match(await page.locator(".hint", { hasText: "The earliest allowed" }).innerText(), /The earliest allowed: \d{4}-\d\d-\d\d/);
  await page.getByLabel("Company or project name").fill("Acme moves");
  await page.getByLabel("Your email address").fill("it@acme.example");
  await page.getByLabel("Old mailbox's address").fill(env("SRC_USER"));
  await page.locator("#source_password").fill("a wrong one");
  await page.getByLabel("Old provider's IMAP server").fill(`127.0.0.1:${env("SRC_PORT")}`);
  await page.getByLabel("Its connection security").selectOption("none");
  await page.getByRole("button", { name: "Authenticate" }).first().click();
  await page.locator("#source-result.bad").waitFor();
  await page.locator("#source_password").fill(env("SRC_PASSWORD"));
  await page.getByRole("button", { name: "Authenticate" }).first().click();
  await page.locator("#source-result.ok", { hasText: "It works" }).waitFor();
  await page.getByLabel(/New mailbox's address/).fill(env("DST_USER"));
  await page.locator("#destination_password").fill(env("DST_PASSWORD"));
  await page.locator("#window").fill(env("WINDOW"));
  await page.getByLabel("Your time zone").fill("UTC");
  await page.getByLabel(/I own these mailboxes/).check();
  await fitsPhone("/request");
  await shot("18-request-form");
  await Promise.all([page.waitForURL(`${base}/request`), page.getByRole("button", { name: "Send the request" }).click()]);
  await page.getByRole("heading", { name: "Request received" }).waitFor();
  const code = await page.locator("#project-id").innerText();
  const password = await page.locator("#project-password").innerText();
  assert.match(code, /^FY-[0-9A-Z]{4}-[0-9A-Z]{4}$/);
  assert.equal(password.length, 20);

  step("staff approve it on the project's page");
  const staff = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  staff.setDefaultTimeout(30_000);
  await staff.goto(`${base}/login`);
  await staff.getByLabel("Email").fill(env("ADMIN_EMAIL"));
  await staff.getByLabel("Password").fill(env("ADMIN_PASSWORD"));
  await Promise.all([staff.waitForURL(`${base}/`), staff.getByRole("button", { name: "Sign in" }).click()]);
  await staff.goto(`${base}/projects`);
  await staff.getByRole("link", { name: code }).click();
  await staff.getByText("awaiting approval").first().waitFor();
  await Promise.all([staff.waitForURL(`${base}/projects/${code}`), staff.getByRole("button", { name: /Approve/ }).click()]);
  await staff.locator(".flash.ok").waitFor();
  await staff.screenshot({ path: path.join(shots, "20-project-console.png"), fullPage: true });

  step("/track: a wrong password, then the project");
  await page.getByRole("link", { name: "Follow it" }).click();
  assert.equal(await page.getByLabel("Project ID").inputValue(), code, "the ID filled in");
  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("do not match").waitFor();
  await page.getByLabel("Password").fill(password);
  await Promise.all([page.waitForURL(`${base}/track/project`), page.getByRole("button", { name: "Sign in" }).click()]);
  await page.getByRole("heading", { name: "Acme moves" }).waitFor();
  await fitsPhone("/track/project");

  step("the bar moves to the end of the first copy without a reload");
  const marker = await page.evaluate(() => (window.ferryMarker = Math.random()));
  await page.locator('tbody [data-field="status"]', { hasText: "waiting for the MX change" }).waitFor({ timeout: 150_000 });
  assert.equal(await page.locator('tbody [data-field="bar"]').evaluate((b) => b.value), 100);
  assert.equal(await page.evaluate(() => window.ferryMarker), marker, "updated in place");

  step("the MX records to set, and the button that says they are");
  await page.reload();
  await page.getByRole("heading", { name: "Change your MX records now" }).waitFor();
  await shot("19-track-project");
  await Promise.all([page.waitForURL(`${base}/track/project`), page.getByRole("button", { name: /I have changed the MX records of new.example/ }).click()]);
  await page.locator(".flash.ok").waitFor();
  await page.locator('tbody [data-field="status"]', { hasText: "complete" }).waitFor({ timeout: 120_000 });

  step("the report as CSV");
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: /Download the report/ }).click()]);
  const csv = fs.readFileSync(await download.path(), "utf8");
  assert.match(csv, /^mailbox,destination,status/);
  assert.ok(csv.includes(`${env("SRC_USER")},${env("DST_USER")},complete`), csv);

  step("sign out");
  await Promise.all([page.waitForURL(/\/track\?signed_out=1$/), page.getByRole("button", { name: "Sign out" }).click()]);
  await page.goto(`${base}/track/project`);
  await page.waitForURL(`${base}/track`);

  const html = await page.content();
  assert.ok(!html.includes(env("SRC_PASSWORD")) && !html.includes(env("DST_PASSWORD")), "no password in a page");
  assert.deepEqual(errors, [], "no script error");
  console.log("ok");
} finally {
  await browser.close();
}
