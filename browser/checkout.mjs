// A customer's walk through payd's checkout page in Debian's headless Chromium, driven by
// api/tests/checkout.rs (which starts payd, sms-sim, channel-sim and the shop's return page,
// makes the orders, and checks the money afterwards through the API).
//
// Input: the WALK environment variable, JSON:
//   { balance_url, card_url, poor_url, expired_url, return_url, phone, sms_sim, channel_sim,
//     channel, card_number, shots }
// Output: one JSON line per step on stdout; a screenshot of each step in `shots`; exit 1 on
// the first failed expectation (its reason on stderr).

import { launch, recorder, expect, text, messages as delivered, code as deliveredCode, audit as auditPage, failed } from "./lib.mjs";

const walk = JSON.parse(process.env.WALK);
const step = recorder(walk.shots);
// How many messages reached `phone`, and the code in the first after `after` of them.
const messages = (phone) => delivered(walk.sms_sim, phone).then((d) => d.length);
const code = (phone, after) => deliveredCode(walk.sms_sim, phone, after);

async function signIn(page, prefix) {
  const before = await messages(walk.phone);
  await page.fill("#phone", walk.phone);
  await page.click("#send-code");
  await page.waitForSelector("#code");
  await step(page, `${prefix}-code-sent`);
  await page.fill("#code", await code(walk.phone, before));
  await page.click("#sign-in");
  await page.waitForSelector("#pay-card");
}

async function channel(settings) {
  const r = await fetch(`${walk.channel_sim}/_sim/channels/${walk.channel}`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(settings),
  });
  expect(r.ok, `channel-sim took ${JSON.stringify(settings)}`);
}

const browser = await launch();
try {
  // A phone-sized screen.
  const phone = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 1, isMobile: true, hasTouch: true };

  // 1. Balance: open the link, sign in with the code from sms-sim, pay, see the result,
  //    and a second tab paying the same order meets "already paid".
  const ctx = await browser.newContext(phone);
  const page = await ctx.newPage();
  const first = await page.goto(walk.balance_url);
  const headers = first.headers();
  expect(headers["content-security-policy"]?.includes("frame-ancestors 'none'"), "a CSP that forbids framing");
  expect(headers["x-frame-options"] === "DENY", "X-Frame-Options: DENY");
  expect(!headers["content-security-policy"]?.includes("unsafe-inline"), "no inline script or style allowed");
  expect((await text(page, "#amount")).includes("88.00"), "the order's amount");
  expect((await text(page, "#merchant")) === "Tea House", "the merchant's name");
  await step(page, "balance-order-opened", { csp: headers["content-security-policy"] });
  await signIn(page, "balance");
  expect((await text(page, ".who")).includes("韩梅梅"), "signed in as the customer");
  expect((await text(page, "#pay-balance")).includes("88.00"), "a balance button with the amount");
  await step(page, "balance-signed-in");

  const second = await ctx.newPage();
  await second.goto(walk.balance_url);
  await second.waitForSelector("#pay-balance");
  await step(second, "second-tab-ready");

  await page.click("#pay-balance");
  await page.waitForSelector("#result");
  expect((await text(page, "#result h1")) === "Paid", "the result says Paid");
  await step(page, "balance-paid");

  await second.click("#pay-balance");
  await second.waitForSelector("#error");
  const refused = await text(second, "#error");
  expect(refused.includes("already been paid"), `the second tab is told it is already paid (${refused})`);
  await step(second, "second-tab-already-paid", { error: refused });

  await page.click("#return");
  await page.waitForURL(walk.return_url);
  await step(page, "balance-returned-to-shop");

  // 2. Not enough money: a clear error, nothing charged, the order still open.
  await page.goto(walk.poor_url);
  await page.waitForSelector("#pay-balance");
  await page.click("#pay-balance");
  await page.waitForSelector("#error");
  const poor = await text(page, "#error");
  expect(poor.includes("Not enough money"), `insufficient funds is said plainly (${poor})`);
  await step(page, "insufficient-funds", { error: poor });

  // 3. An expired order.
  await page.goto(walk.expired_url);
  await page.waitForSelector("#result");
  expect((await text(page, "#result h1")).includes("expired"), "the order says it expired");
  await step(page, "expired-order");

  // 4. A new card through channel-sim, in a fresh browser: signs in again; a declined card
  //    is said so, then another try succeeds.
  const ctx2 = await browser.newContext(phone);
  const cardPage = await ctx2.newPage();
  await cardPage.goto(walk.card_url);
  await signIn(cardPage, "card");
  const fillCard = async () => {
    await cardPage.fill("#card_number", walk.card_number);
    await cardPage.fill("#exp_month", "12");
    await cardPage.fill("#exp_year", "2031");
    await cardPage.fill("#holder", "HAN MEIMEI");
  };
  await channel({ decline_rate: 1.0 });
  await fillCard();
  await step(cardPage, "card-filled");
  await cardPage.click("#pay-card");
  await cardPage.waitForSelector("#error");
  const declined = await text(cardPage, "#error");
  expect(declined.includes("declined"), `a decline is said plainly (${declined})`);
  await step(cardPage, "card-declined", { error: declined });
  await channel({ decline_rate: 0.0 });
  // The declined card was saved for this customer: pay with it now.
  const saved = cardPage.locator("button.card");
  expect((await saved.count()) === 1, "the card is offered as saved");
  await saved.first().click();
  await cardPage.waitForSelector("#result");
  expect((await text(cardPage, "#result h1")) === "Paid", "the card payment's result says Paid");
  await step(cardPage, "card-paid");
  await cardPage.click("#return");
  await cardPage.waitForURL(walk.return_url);
  await step(cardPage, "card-returned-to-shop");

  // 5. Accessibility: axe-core on each kind of page (its script injected past the CSP in
  //    a context of its own; the pages served to customers allow none).
  const axeCtx = await browser.newContext({ ...phone, bypassCSP: true });
  const axePage = await axeCtx.newPage();
  const report = [];
  const audit = (name) => auditPage(axePage, name, report);

  await axePage.goto(walk.poor_url);
  await audit("sign-in");
  await axePage.fill("#phone", walk.phone);
  const before = await messages(walk.phone);
  await axePage.click("#send-code");
  await axePage.waitForSelector("#code");
  await audit("code");
  await axePage.fill("#code", await code(walk.phone, before));
  await axePage.click("#sign-in");
  await axePage.waitForSelector("#pay-card");
  await audit("methods");
  await axePage.goto(walk.balance_url);
  await audit("paid");
  await axePage.goto(walk.expired_url);
  await audit("expired");
  console.log(JSON.stringify({ step: "axe", report }));
} catch (e) {
  await failed(browser, walk.shots, e);
} finally {
  await browser.close();
}
