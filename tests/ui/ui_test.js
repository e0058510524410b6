// Drives Praetor's web UI in headless Chromium: a service turns critical on screen without a
// reload, and a key is created, edited and deleted through the KV editor.
// Usage: node ui_test.js http://127.0.0.1:PORT   (prints UI-OK on success)
const { chromium } = require("playwright-core");
const base = process.argv[2];
const step = (s) => console.log("step: " + s);
const until = async (what, f, ms = 15000) => {
  const end = Date.now() + ms;
  for (;;) {
    if (await f()) return;
    if (Date.now() > end) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 100));
  }
};
const raw = async (key) => {
  const r = await fetch(`${base}/v1/kv/${key}?raw`);
  return r.status === 404 ? null : r.text();
};

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  try {
    const page = await browser.newPage();
    step("register web with a passing TTL check");
    await fetch(`${base}/v1/agent/service/register`, {
      method: "PUT",
      body: JSON.stringify({ Name: "web", Port: 80, Check: { CheckID: "web-ttl", TTL: "300s", Status: "passing" } }),
    });
    await page.goto(`${base}/ui/`);
    await page.waitForSelector('tr[data-service="web"] .overall .passing', { timeout: 15000 });
    step("the check fails: the page turns it critical by itself");
    await fetch(`${base}/v1/agent/check/fail/web-ttl`, { method: "PUT" });
    await page.waitForSelector('tr[data-service="web"] .overall .critical', { timeout: 15000 });
    step("instances of web show the check");
    await page.click('[data-open-service="web"]');
    await page.waitForSelector('#instances-table tr[data-instance="web"] .critical');
    step("nodes view lists this node");
    await page.click("#nav-nodes");
    await page.waitForSelector("#nodes-table tr[data-node] .passing");
    step("KV: create a key");
    await page.click("#nav-kv");
    await page.fill("#kv-new-key", "app/config");
    await page.fill("#kv-new-value", "v1");
    await page.click("#kv-create");
    await page.waitForSelector("#kv-value");
    await until("the key to be written", async () => (await raw("app/config")) === "v1");
    step("KV: edit it");
    await page.fill("#kv-value", "v2");
    await page.click("#kv-save");
    await until("the edit to be saved", async () => (await raw("app/config")) === "v2");
    step("KV: folders navigate");
    await page.click('[data-kv-prefix=""]');
    await page.waitForSelector('#kv-table tr[data-key="app/"]');
    await page.click('[data-kv-prefix="app/"]');
    await page.click('[data-kv-key="app/config"]');
    await page.waitForFunction(() => document.querySelector("#kv-value")?.value === "v2");
    step("KV: delete it");
    await page.click("#kv-delete");
    await until("the key to be deleted", async () => (await raw("app/config")) === null);
    await page.screenshot({ path: process.env.UI_SCREENSHOT || "/tmp/praetor-ui.png" });
    console.log("UI-OK");
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.log("ERROR: " + (e.stack || e));
  process.exit(1);
});
