// Drives the web UI of an agent with ACLs on (default deny) in headless Chromium: without a
// token the ACL view is refused; with the management token typed into the header it lists
// the tokens and policies, creates a token with a policy and deletes it.
// Usage: node ui_acl_test.js http://127.0.0.1:PORT MANAGEMENT_SECRET   (prints UI-ACL-OK)
const { chromium } = require("playwright-core");
const [base, mgmt] = [process.argv[2], process.argv[3]];
const step = (s) => console.log("step: " + s);
const self = async (secret) => {
  const r = await fetch(`${base}/v1/acl/token/self`, { headers: { "X-Consul-Token": secret } });
  return r.status === 200 ? r.json() : null;
};

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  try {
    const page = await browser.newPage();
    step("register web with the management token");
    const reg = await fetch(`${base}/v1/agent/service/register`, {
      method: "PUT", headers: { "X-Consul-Token": mgmt }, body: JSON.stringify({ Name: "web", Port: 80 }),
    });
    if (reg.status !== 200) throw new Error("register: " + reg.status + " " + (await reg.text()));
    await page.goto(`${base}/ui/`);
    step("ACLs are on: the ACL view is offered, and refused without a token");
    await page.waitForSelector("#nav-acl:not([hidden])", { timeout: 15000 });
    await page.click("#nav-acl");
    await page.waitForSelector("p.err", { timeout: 15000 });
    const err = await page.textContent("p.err");
    if (!err.includes("403") || !err.includes("Permission denied")) throw new Error("unexpected: " + err);
    if (await page.$('tr[data-service="web"]')) throw new Error("anonymous sees web");
    step("with the management token the tokens and policies are listed");
    await page.fill("#token", mgmt);
    await page.dispatchEvent("#token", "change");
    await page.waitForSelector('#acl-tokens-table tr[data-accessor="00000000-0000-0000-0000-000000000002"]', { timeout: 15000 });
    await page.waitForSelector('#acl-policies-table tr[data-policy="global-management"]');
    step("create a token with a policy");
    await page.fill("#acl-new-desc", "ui-token");
    await page.fill("#acl-new-policies", "global-management");
    await page.click("#acl-create");
    await page.waitForSelector("#acl-new-secret", { timeout: 15000 });
    const secret = (await page.textContent("#acl-new-secret")).trim();
    const made = await self(secret);
    if (!made || made.Description !== "ui-token" || made.Policies[0].Name !== "global-management")
      throw new Error("token not created as asked: " + JSON.stringify(made));
    await page.waitForSelector(`#acl-tokens-table tr[data-accessor="${made.AccessorID}"] .policies >> text=global-management`);
    step("delete it");
    await page.click(`[data-delete-token="${made.AccessorID}"]`);
    await page.waitForSelector(`#acl-tokens-table tr[data-accessor="${made.AccessorID}"]`, { state: "detached", timeout: 15000 });
    if (await self(secret)) throw new Error("deleted token still resolves");
    step("the services view shows what the token may see");
    await page.click("#nav-services");
    await page.waitForSelector('tr[data-service="web"]', { timeout: 15000 });
    console.log("UI-ACL-OK");
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.log("ERROR: " + (e.stack || e));
  process.exit(1);
});
