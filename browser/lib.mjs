// What the browser walks share: Debian's Chromium started headless the way this machine
// needs, a step recorder with screenshots, expectations, the one-time codes sms-sim
// delivered, axe-core runs, and screenshots of every page when a walk fails.

import { chromium } from "playwright-core";
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

// Headless Chromium from Debian's package; without the background-networking flags its
// connections are refused by this machine's closed network.
export function launch() {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
}

// A step recorder: each step's screenshot in `shots`, numbered, and one JSON line on stdout.
export function recorder(shots) {
  mkdirSync(shots, { recursive: true });
  let n = 0;
  return async (page, name, extra = {}) => {
    n += 1;
    const file = `${shots}/${String(n).padStart(2, "0")}-${name}.png`;
    await page.screenshot({ path: file, fullPage: true });
    console.log(JSON.stringify({ step: name, url: page.url(), screenshot: file, ...extra }));
  };
}

export function expect(cond, what) {
  if (!cond) throw new Error(`expected: ${what}`);
}

// The text of the first element `selector` finds, whitespace collapsed.
export async function text(page, selector) {
  return ((await page.locator(selector).first().textContent()) ?? "").replace(/\s+/g, " ").trim();
}

// The messages sms-sim delivered to `phone`.
export async function messages(smsSim, phone) {
  const r = await fetch(`${smsSim}/_sim/messages?to=${encodeURIComponent(phone)}`);
  return (await r.json()).data;
}

// The six digits of the first message to `phone` after the first `after` (waits 10 s).
export async function code(smsSim, phone, after) {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const data = await messages(smsSim, phone);
    if (data.length > after) {
      const m = data[data.length - 1].text.match(/\b(\d{6})\b/);
      if (m) return m[1];
    }
    await new Promise((ok) => setTimeout(ok, 100));
  }
  throw new Error(`no code reached ${phone}`);
}

// Runs axe-core on `page` (of a context with bypassCSP: the pages allow no script) and adds
// its result to `report`; fails on a serious or critical violation.
export async function audit(page, name, report) {
  await page.addScriptTag({ content: axeSource });
  const r = await page.evaluate(async () => await window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = r.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  report.push({ page: name, violations: r.violations.map((v) => `${v.id}:${v.impact}`), serious: bad.length });
  expect(bad.length === 0, `no serious accessibility violation on ${name}: ${JSON.stringify(bad.map((v) => [v.id, v.nodes.map((n) => n.html)]))}`);
}

// After a failure: what each open page showed, screenshot and text.
export async function failed(browser, shots, error) {
  console.error(String(error?.stack ?? error));
  process.exitCode = 1;
  let n = 0;
  for (const c of browser.contexts()) {
    for (const p of c.pages()) {
      n += 1;
      const file = `${shots}/failed-${n}.png`;
      await p.screenshot({ path: file, fullPage: true }).catch(() => {});
      console.error(`failed page ${n}: ${p.url()} (${file}): ${(await p.textContent("body").catch(() => ""))?.replace(/\s+/g, " ").slice(0, 400)}`);
    }
  }
}
