// A staff member imports a customer's contacts file from the console in a real
// browser: the file uploaded with its progress bar, the destination authenticated on
// the provider's CardDAV server, the migration started and followed until its bars
// reach the end. Started by tests/e2e/browser.rs with Ferry and a Radicale running.

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
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, locale: "en-US" });
  page.setDefaultTimeout(30_000);
  const shot = (name) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));

  step("sign in");
  await page.goto(`${base}/login`);
  await page.getByLabel("Email").fill(env("ADMIN_EMAIL"));
  await page.getByLabel("Password").fill(env("ADMIN_PASSWORD"));
  await Promise.all([page.waitForURL(`${base}/`), page.getByRole("button", { name: "Sign in" }).click()]);

  step("from the new-migration form to the contacts form");
  await page.goto(`${base}/migrations/new`);
  await Promise.all([
    page.waitForURL(`${base}/migrations/new-items`),
    page.getByRole("link", { name: "New contacts or calendars migration" }).click(),
  ]);

  step("a file that is not contacts: the reason beside the file");
  await page.locator("#file").setInputFiles({ name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("hello\n") });
  await page.locator('[data-error-for="file"]').getByText(/neither a vCard file/).waitFor();

  step("the contacts file: its progress bar fills and it is uploaded");
  await page.locator("#file").setInputFiles(env("VCF_PATH"));
  await page.locator("#upload-status").getByText(/Uploaded: people\.vcf \(vcf, /).waitFor({ timeout: 60_000 });
  assert.equal(await page.locator("#upload-bar").evaluate((b) => b.value), 100, "the bar is full");
  assert.ok(await page.locator('[id="source.upload_id"]').inputValue(), "the upload's id is kept");
  await shot("20-contacts-uploaded");

  step("the destination on the provider's server, authenticated");
  await page.locator('[id="destination.username"]').fill(env("DAV_USER"));
  await page.locator('[id="destination.password"]').fill(env("DAV_PASSWORD"));
  await page.locator('[data-authenticate="destination"]').click();
  await page.locator('[data-result="destination"]').getByText("Authenticated:").waitFor();

  step("start now: the migration's page, its bars to the end");
  await page.locator('[id="requester_email"]').fill("jane@new.example");
  await page.locator("#start_now").check();
  await page.locator("#terms").check();
  await Promise.all([page.waitForURL(/\/migrations\/\d+$/), page.locator("#start").click()]);
  try {
    await page.waitForFunction(() => document.getElementById("overall")?.value === 100, null, { timeout: 120_000 });
  } catch (e) {
    await shot("21-contacts-stuck");
    console.log(await page.locator("main").innerText());
    throw e;
  }
  await page.locator("#status").getByText("completed").waitFor({ timeout: 120_000 });
  await page.getByText("Imported — people.vcf").first().waitFor();
  await shot("21-contacts-completed");
  assert.deepEqual(errors, [], "no script error on any page");
  console.log("ok");
} finally {
  await browser.close();
}
