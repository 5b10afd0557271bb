// Drives burnrate's dashboard in Debian's headless Chromium with playwright-core.
//
//   node dashboard.js SCENARIO
//
// Environment: BASE_URL (a running `burnrate serve`), TOKEN (its admin token), SINCE and
// UNTIL (the range the pages are opened with, RFC 3339), SHOTS (screenshot folder, for the
// `screenshots` scenario), CHROMIUM (default /usr/bin/chromium).
//
// Scenarios: pages, numbers, drilldown, login, screenshots. Each prints what it checked
// and exits non-zero on the first failure.

const { chromium } = require("playwright-core");
const assert = require("node:assert/strict");
const path = require("node:path");

const BASE = process.env.BASE_URL;
const TOKEN = process.env.TOKEN;
const RANGE = new URLSearchParams({ since: process.env.SINCE, until: process.env.UNTIL }).toString();

async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
}

/// A page whose console errors, uncaught exceptions and failed requests are collected.
async function watchedPage(context) {
  const page = await context.newPage();
  page.problems = [];
  page.on("console", (m) => { if (m.type() === "error" || m.type() === "warning") page.problems.push(`console ${m.type()}: ${m.text()}`); });
  page.on("pageerror", (e) => page.problems.push(`page error: ${e.message}`));
  page.on("requestfailed", (r) => page.problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on("response", (r) => { if (r.status() >= 400 && !r.url().includes("/ui/login")) page.problems.push(`HTTP ${r.status()} for ${r.url()}`); });
  return page;
}

async function signedIn(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await watchedPage(context);
  const response = await page.request.post(`${BASE}/ui/login`, { form: { token: TOKEN, next: "/ui" }, maxRedirects: 0 });
  assert.equal(response.status(), 303, "login answers with a redirect");
  return { context, page };
}

async function api(pathAndQuery, init = {}) {
  const response = await fetch(`${BASE}${pathAndQuery}`, {
    ...init,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json", ...(init.headers || {}) },
  });
  const body = await response.json();
  assert.equal(response.status, 200, `${pathAndQuery}: ${JSON.stringify(body)}`);
  return body;
}

async function query(spec) {
  return api("/api/v1/query", {
    method: "POST",
    body: JSON.stringify({ since: process.env.SINCE, until: process.env.UNTIL, ...spec }),
  });
}

/// Every page the dashboard has, with real ids taken from the API.
async function pagePaths() {
  const runs = await api(`/api/v1/runs?${RANGE}`);
  const tail = await api(`/api/v1/longtail?${RANGE}`);
  assert.ok(runs.top.length > 0, "the workload has runs");
  assert.ok(tail.members.length > 1, "the workload has tenants");
  const day = process.env.UNTIL.slice(0, 10);
  return [
    ["overview", `/ui?${RANGE}`],
    ["longtail", `/ui/longtail?${RANGE}&by=feature`],
    ["tenant", `/ui/tenants/${encodeURIComponent(tail.members[0].name)}?${RANGE}`],
    ["runs", `/ui/runs?${RANGE}`],
    ["run", `/ui/runs/${encodeURIComponent(runs.top[0].agent_run_id)}?${RANGE}`],
    ["anomalies", `/ui/anomalies?${RANGE}&day=${day}`],
    ["reports", `/ui/reports`],
    ["report", `/ui/reports/daily/${day}`],
  ];
}

const scenarios = {
  // Each page loads with status 200, without a console error, a failed request or an
  // uncaught exception, and the keyboard reaches its links.
  async pages(browser) {
    const { page } = await signedIn(browser);
    for (const [name, target] of await pagePaths()) {
      const response = await page.goto(`${BASE}${target}`);
      assert.equal(response.status(), 200, `${name}: status`);
      assert.deepEqual(page.problems, [], `${name}: problems`);
      assert.ok((await page.locator("h1").textContent()).length > 0, `${name}: heading`);
      // Keyboard: the first Tab lands on the skip link, the next ones on real links.
      await page.keyboard.press("Tab");
      assert.equal(await page.evaluate(() => document.activeElement.textContent), "Skip to content", `${name}: first tab stop`);
      await page.keyboard.press("Tab");
      assert.equal(await page.evaluate(() => document.activeElement.tagName), "A", `${name}: second tab stop`);
      // Numbers are right-aligned.
      const aligned = await page.$$eval("td.num", (cells) => cells.slice(0, 50).every((c) => getComputedStyle(c).textAlign === "right"));
      assert.ok(aligned, `${name}: numeric cells right-aligned`);
      console.log(`ok: ${name} (${target})`);
    }
  },

  // What the pages show equals what the query API answers for the same range.
  async numbers(browser) {
    const { page } = await signedIn(browser);
    const near = (shown, exact) => {
      const value = Number(shown.replace(/[$,]/g, ""));
      assert.ok(Math.abs(value - Number(exact)) <= 0.005 + 1e-9, `shown ${shown} vs exact ${exact}`);
    };

    const totals = (await query({ metrics: ["cost_usd", "requests"] })).rows[0];
    await page.goto(`${BASE}/ui?${RANGE}`);
    const spend = page.locator("#spend");
    assert.equal(await spend.getAttribute("data-value"), totals.cost_usd, "overview spend");
    near(await spend.textContent(), totals.cost_usd);
    assert.equal(Number(await page.locator("#calls").getAttribute("data-value")), totals.requests, "overview calls");
    console.log(`ok: overview spend ${totals.cost_usd} and ${totals.requests} calls`);

    const byTenant = (await query({ group_by: ["tenant_id"], metrics: ["cost_usd", "share_of_cost"] })).rows;
    await page.goto(`${BASE}/ui/longtail?${RANGE}`);
    const rows = await page.$$eval("#table tbody tr", (trs) => trs.map((tr) => ({
      name: tr.cells[0].textContent.trim(),
      cost: tr.cells[1].dataset.value,
      share: Number(tr.cells[2].dataset.value),
    })));
    assert.equal(rows.length, byTenant.length, "one long-tail row per tenant");
    for (const row of byTenant) {
      const shown = rows.find((r) => r.name === (row.tenant_id ?? "(not set)"));
      assert.ok(shown, `tenant ${row.tenant_id} shown`);
      assert.equal(shown.cost, row.cost_usd, `tenant ${row.tenant_id} cost`);
      assert.ok(Math.abs(shown.share - row.share_of_cost) < 1e-9, `tenant ${row.tenant_id} share`);
    }
    console.log(`ok: long tail of ${rows.length} tenants`);

    await page.goto(`${BASE}/ui/runs?${RANGE}`);
    const runs = await page.$$eval("#top-runs tbody tr", (trs) => trs.map((tr) => ({
      run: tr.cells[0].textContent.trim(),
      calls: Number(tr.cells[3].dataset.value),
      cost: tr.cells[7].dataset.value,
    })));
    assert.ok(runs.length > 0);
    const top = (await query({ group_by: ["agent_run_id"], filters: ["agent_run_id!="], metrics: ["cost_usd", "requests"], top: runs.length })).rows;
    assert.deepEqual(runs.map((r) => [r.run, r.cost, r.calls]), top.map((r) => [r.agent_run_id, r.cost_usd, r.requests]), "most expensive runs");
    console.log(`ok: ${runs.length} most expensive runs`);

    // Per feature: the histogram counts every run and the median equals the query API's.
    const features = (await query({ group_by: ["feature"], filters: ["agent_run_id!="], metrics: ["runs", "cost_per_run_p50", "cost_per_run_p99"] })).rows;
    const cards = await page.$$eval("article.card", (cards) => cards.map((c) => ({
      feature: c.dataset.feature,
      runs: Number(c.querySelector("tr td").dataset.value),
      median: c.querySelectorAll("tr")[1].querySelector("td").dataset.value,
      bars: [...c.querySelectorAll("svg.histogram rect title")].map((t) => Number(t.textContent.split(" ")[0])),
    })));
    for (const row of features) {
      const card = cards.find((c) => c.feature === (row.feature ?? "(not set)"));
      assert.ok(card, `feature ${row.feature} has a card`);
      assert.equal(card.runs, row.runs, `feature ${row.feature} runs`);
      assert.equal(card.median, row.cost_per_run_p50, `feature ${row.feature} median`);
      assert.equal(card.bars.reduce((a, b) => a + b, 0), row.runs, `feature ${row.feature} histogram counts every run`);
    }
    console.log(`ok: run distributions of ${features.length} features`);

    // A run's page: its cost is its tree's cost by the query API, and its calls add up.
    await page.goto(`${BASE}/ui/runs/${encodeURIComponent(runs[0].run)}?${RANGE}`);
    const tree = await page.$$eval("#tree li", (lis) => lis.map((li) => li.firstElementChild.textContent.trim()));
    const treeCost = (await query({ filters: [`agent_run_id=${tree.join(",")}`], metrics: ["cost_usd", "requests"] })).rows[0];
    assert.equal(await page.locator("#run-cost").getAttribute("data-value"), treeCost.cost_usd, "run cost");
    assert.equal(Number(await page.locator("#run-calls").getAttribute("data-value")), treeCost.requests, "run calls");
    assert.equal(await page.locator("#calls tbody tr").count(), treeCost.requests, "one row per call");
    console.log(`ok: run ${runs[0].run} with ${tree.length} runs in its tree`);

    // The tenant page's features add up to the tenant's spend.
    const tenant = byTenant[0].tenant_id;
    const perFeature = (await query({ group_by: ["feature"], filters: [`tenant_id=${tenant}`], metrics: ["cost_usd"] })).rows;
    await page.goto(`${BASE}/ui/tenants/${encodeURIComponent(tenant)}?${RANGE}`);
    const shownFeatures = await page.$$eval("#features tbody tr", (trs) => trs.map((tr) => [tr.cells[0].textContent.trim(), tr.cells[1].dataset.value]));
    assert.deepEqual(shownFeatures, perFeature.map((r) => [r.feature ?? "(not set)", r.cost_usd]), "tenant features");
    console.log(`ok: tenant ${tenant} by feature`);
  },

  // Clicks go one level down to the right page.
  async drilldown(browser) {
    const { page } = await signedIn(browser);
    await page.goto(`${BASE}/ui?${RANGE}`);
    const tenantLink = page.locator("#groups tbody a").first();
    const tenant = (await tenantLink.textContent()).trim();
    await tenantLink.click();
    await page.waitForLoadState();
    assert.equal(new URL(page.url()).pathname, `/ui/tenants/${encodeURIComponent(tenant)}`);
    assert.equal(await page.locator("h1").textContent(), `Tenant ${tenant}`);
    console.log(`ok: overview → tenant ${tenant}`);

    const featureLink = page.locator("#features tbody a").first();
    const feature = (await featureLink.textContent()).trim();
    await featureLink.click();
    await page.waitForLoadState();
    const url = new URL(page.url());
    assert.equal(url.pathname, "/ui/runs");
    assert.equal(url.searchParams.get("tenant"), tenant);
    assert.equal(url.searchParams.get("feature"), feature);
    console.log(`ok: tenant → runs of ${feature}`);

    const runLink = page.locator("#top-runs tbody a").first();
    const run = (await runLink.textContent()).trim();
    await runLink.click();
    await page.waitForLoadState();
    assert.equal(new URL(page.url()).pathname, `/ui/runs/${encodeURIComponent(run)}`);
    assert.equal(await page.locator("h1").textContent(), `Run ${run}`);
    assert.equal(await page.locator("#run-tenant").textContent(), tenant);
    console.log(`ok: runs → run ${run}`);

    await page.goto(`${BASE}/ui/longtail?${RANGE}&by=model`);
    // The Pareto chart's bars are links too, reachable by keyboard.
    const bars = page.locator("svg a");
    assert.ok((await bars.count()) > 0, "Pareto bars are links");
    assert.match(await bars.first().getAttribute("href"), /^\/ui\?/);
    const modelLink = page.locator("#table tbody a").first();
    const model = (await modelLink.textContent()).trim();
    await modelLink.click();
    await page.waitForLoadState();
    const overview = new URL(page.url());
    assert.equal(overview.pathname, "/ui");
    assert.equal(overview.searchParams.get("model"), model);
    const filtered = (await query({ filters: [`model=${model}`], metrics: ["cost_usd"] })).rows[0];
    assert.equal(await page.locator("#spend").getAttribute("data-value"), filtered.cost_usd);
    console.log(`ok: long tail → overview of model ${model}`);
  },

  // The login form and a fragment token sign in; the API refuses without the token; the
  // pause button pauses.
  async login(browser) {
    const context = await browser.newContext();
    const page = await watchedPage(context);
    await page.goto(`${BASE}/ui?${RANGE}`);
    assert.equal(new URL(page.url()).pathname, "/ui/login", "unsigned visitors go to the login page");
    await page.fill("#token", "not-the-token");
    await page.click("button[type=submit]");
    await page.waitForLoadState();
    assert.match(await page.locator("p[role=alert]").textContent(), /not the admin token/);
    await page.fill("#token", TOKEN);
    await page.click("button[type=submit]");
    await page.waitForURL((url) => url.pathname === "/ui");
    assert.equal(new URL(page.url()).searchParams.get("since"), process.env.SINCE, "back where the visitor was going");
    console.log("ok: login form");

    await page.click("header .logout button");
    await page.waitForURL((url) => url.pathname === "/ui/login");
    const cookies = await context.cookies();
    assert.ok(!cookies.some((c) => c.name === "burnrate_session" && c.value), "signed out");

    const fresh = await (await browser.newContext()).newPage();
    await fresh.goto(`${BASE}/ui/runs#token=${encodeURIComponent(TOKEN)}`);
    await fresh.waitForURL((url) => url.pathname === "/ui/runs");
    assert.equal(new URL(fresh.url()).hash, "", "the token leaves the address bar");
    console.log("ok: token in the URL fragment");

    for (const headers of [{}, { authorization: "Bearer wrong" }]) {
      for (const target of ["/api/v1/overview", "/api/v1/runs", "/api/v1/budgets", "/api/v1/prices"]) {
        const response = await fetch(`${BASE}${target}`, { headers });
        assert.equal(response.status, 401, `${target} without the token`);
      }
    }
    const query = await fetch(`${BASE}/api/v1/query`, { method: "POST", body: "{}" });
    assert.equal(query.status, 401);
    console.log("ok: the API refuses without the token");

    // Pause and resume a tenant from its page.
    const tail = await api(`/api/v1/longtail?${RANGE}`);
    const tenant = tail.members[1].name;
    await fresh.goto(`${BASE}/ui/tenants/${encodeURIComponent(tenant)}?${RANGE}`);
    await fresh.fill("input[name=reason]", "browser test");
    await fresh.click("#pause");
    await fresh.waitForSelector("#paused");
    const paused = await api("/api/v1/admin/tenants/paused");
    assert.ok(paused.paused.some((p) => p.tenant_id === tenant && p.reason === "browser test"), "paused through the page");
    await fresh.click("#resume");
    await fresh.waitForSelector("#pause");
    assert.ok(!(await api("/api/v1/admin/tenants/paused")).paused.some((p) => p.tenant_id === tenant), "resumed");
    console.log(`ok: pause and resume ${tenant}`);
  },

  // Screenshots of every page at 1280x800, with JavaScript's timers paused.
  async screenshots(browser) {
    const { context, page } = await signedIn(browser);
    await context.clock.install();
    await page.clock.pauseAt(Date.now() + 1000);
    for (const [name, target] of await pagePaths()) {
      await page.goto(`${BASE}${target}`);
      const file = path.join(process.env.SHOTS, `${name}.png`);
      await page.screenshot({ path: file });
      assert.deepEqual(page.problems, [], `${name}: problems`);
      console.log(`ok: ${file}`);
    }
  },
};

(async () => {
  const name = process.argv[2];
  const scenario = scenarios[name];
  if (!scenario) {
    console.error(`usage: node dashboard.js ${Object.keys(scenarios).join("|")}`);
    process.exit(2);
  }
  const browser = await launch();
  try {
    await scenario(browser);
    console.log(`scenario ${name}: passed`);
  } finally {
    await browser.close();
  }
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
