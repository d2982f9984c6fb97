// Merchant staff in payd's console, in Debian's headless Chromium, driven by
// api/tests/console.rs (which starts payd and sms-sim, makes the merchants, their staff and
// payments, and checks the results through the API).
//
// Input: the WALK environment variable, JSON:
//   { base, merchant_id, refunder_phone, viewer_phone, admin_phone, sms_sim, out_trade_no,
//     foreign_payment, shots }
// Output: one JSON line per step on stdout; a screenshot of each step in `shots`; the day's
// CSV saved as `shots/daily.csv`; exit 1 on the first failed expectation.

import { launch, recorder, expect, text, messages as delivered, code as deliveredCode, audit as auditPage, failed } from "./lib.mjs";

const walk = JSON.parse(process.env.WALK);
const step = recorder(walk.shots);
// How many messages reached `phone`, and the code in the first after `after` of them.
const messages = (phone) => delivered(walk.sms_sim, phone).then((d) => d.length);
const code = (phone, after) => deliveredCode(walk.sms_sim, phone, after);

async function signIn(page, phone, name) {
  await page.goto(`${walk.base}/console`);
  await page.fill("#merchant_id", walk.merchant_id);
  await page.fill("#phone", phone);
  const before = await messages(phone);
  await page.click("#send-code");
  await page.waitForSelector("#code");
  await step(page, `${name}-code-sent`);
  await page.fill("#code", await code(phone, before));
  await page.click("#sign-in");
  await page.waitForSelector("#payments");
}

const browser = await launch();
try {
  const desk = { viewport: { width: 1280, height: 900 }, acceptDownloads: true };

  // 1. A refunder signs in, finds the payment by out_trade_no, refunds part of it.
  const ctx = await browser.newContext(desk);
  const page = await ctx.newPage();
  const first = await page.goto(`${walk.base}/console`);
  expect(first.headers()["x-frame-options"] === "DENY", "X-Frame-Options: DENY");
  expect(first.headers()["content-security-policy"]?.includes("frame-ancestors 'none'"), "a CSP that forbids framing");
  await step(page, "sign-in");
  await signIn(page, walk.refunder_phone, "refunder");
  expect((await text(page, "#who")).includes("refunder"), "signed in as a refunder");
  await step(page, "payments-today", { rows: await page.locator("#payments tbody tr").count() });
  await page.fill("#out_trade_no", walk.out_trade_no);
  await page.click("#search");
  await page.waitForSelector("#payments");
  const rows = page.locator("#payments tbody tr");
  expect((await rows.count()) === 1, "one payment for that out_trade_no");
  await step(page, "found-by-out-trade-no");
  await rows.first().locator("a").click();
  await page.waitForSelector("#refund-form");
  expect((await text(page, "#out_trade_no")) === walk.out_trade_no, "the payment's page");
  await step(page, "payment");
  await page.fill("#refund-amount", "30.00");
  await page.fill("#reason", "one cup returned");
  await page.click("#refund");
  await page.waitForSelector("#refunds tbody tr");
  const refunded = await text(page, "#refunded");
  expect(refunded.includes("30.00"), `refunded 30.00 (${refunded})`);
  await step(page, "refunded", { refunded });

  // 2. Another merchant's payment is not found.
  const foreign = await page.goto(`${walk.base}/console/payments/${walk.foreign_payment}`);
  expect(foreign.status() === 404, `another merchant's payment is 404 (${foreign.status()})`);
  await step(page, "foreign-payment-not-found");

  // 3. The day's report as CSV.
  await page.goto(`${walk.base}/console/reports`);
  await page.waitForSelector("#download-daily");
  await step(page, "reports");
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download-daily")]);
  const csvPath = `${walk.shots}/daily.csv`;
  await download.saveAs(csvPath);
  console.log(JSON.stringify({ step: "daily-csv", file: csvPath, date: await text(page, "#report-date") }));

  // 4. A refunder cannot set the webhook endpoint (admin only).
  await page.goto(`${walk.base}/console/webhooks`);
  expect((await page.locator("#set-webhook").count()) === 0, "no webhook form for a refunder");
  await step(page, "webhooks-not-admin");

  // 5. Accessibility of each kind of console page (axe-core, in a context with CSP bypassed).
  const axeCtx = await browser.newContext({ ...desk, bypassCSP: true });
  const axePage = await axeCtx.newPage();
  const report = [];
  const audit = (name) => auditPage(axePage, name, report);

  await axePage.goto(`${walk.base}/console`);
  await audit("sign-in");
  await signIn(axePage, walk.refunder_phone, "axe");
  await audit("payments");
  await axePage.fill("#out_trade_no", walk.out_trade_no);
  await axePage.click("#search");
  await axePage.locator("#payments tbody tr a").first().click();
  await axePage.waitForSelector("#payment");
  await audit("payment");
  await axePage.goto(`${walk.base}/console/reports`);
  await audit("reports");
  await axePage.goto(`${walk.base}/console/settlements`);
  await audit("settlements");
  console.log(JSON.stringify({ step: "axe", report }));

  // 6. A viewer: no refund button, and a refund posted anyway is refused.
  const vctx = await browser.newContext(desk);
  const viewer = await vctx.newPage();
  await signIn(viewer, walk.viewer_phone, "viewer");
  expect((await text(viewer, "#who")).includes("viewer"), "signed in as a viewer");
  await viewer.fill("#out_trade_no", walk.out_trade_no);
  await viewer.click("#search");
  await viewer.locator("#payments tbody tr a").first().click();
  await viewer.waitForSelector("#payment");
  expect((await viewer.locator("#refund").count()) === 0, "no refund button for a viewer");
  await step(viewer, "viewer-payment-without-refund");
  const csrf = await viewer.locator('input[name="csrf"]').first().inputValue();
  const forced = await viewer.request.post(`${viewer.url()}/refund`, {
    form: { csrf, amount: "1.00" },
    headers: { origin: walk.base },
    maxRedirects: 0,
  });
  expect(forced.status() === 403, `a viewer's refund is refused 403 (${forced.status()})`);
  console.log(JSON.stringify({ step: "viewer-refund-refused", status: forced.status() }));

  // 7. An admin makes a new API secret key (shown once).
  const actx = await browser.newContext(desk);
  const admin = await actx.newPage();
  await signIn(admin, walk.admin_phone, "admin");
  await admin.goto(`${walk.base}/console/webhooks`);
  await admin.waitForSelector("#rotate-secret-key");
  await step(admin, "admin-webhooks-and-keys");
  await admin.click("#rotate-secret-key");
  await admin.waitForSelector("#new-secret");
  const secret = await text(admin, "#new-secret");
  expect(/^sk_[0-9a-f]{64}$/.test(secret), "a new secret key is shown");
  console.log(JSON.stringify({ step: "admin-new-secret-key", secret }));
} catch (e) {
  await failed(browser, walk.shots, e);
} finally {
  await browser.close();
}
