// fleet-edge's web console in a real browser: headless Chromium (Debian's chromium and
// chromium-driver) driven through WebDriver by selenium-webdriver, against a running fleet-edge.
//
//   FLEET_EDGE_MANAGEMENT_URL, FLEET_EDGE_ADMIN_TOKEN   the server (loadgen's console scenario
//                                                       and tests/integration/console.rs set them)
//   CONSOLE_MODE=functional (default) | perf
//   CONSOLE_EXPECT        functional: JSON facts the test seeded (agents, statuses, hosts, viewer token)
//   CONSOLE_BUNDLE_SHA256 functional: the SHA-256 of the diagnostics bundle the agent uploads
//                         when asked (then the suite downloads it and compares)
//   CONSOLE_SCREENSHOTS   a directory for overview.png and agents.png
//   CONSOLE_REPORT        perf: where to write the timings as JSON
//
// Prints one line per check and a closing "N passed, N failed"; exits 1 on any failure.
'use strict';
const fs = require('fs');
const path = require('path');
const { Builder, By, until } = require('selenium-webdriver');
const chrome = require('selenium-webdriver/chrome');
const logging = require('selenium-webdriver/lib/logging');

const BASE = (process.env.FLEET_EDGE_MANAGEMENT_URL || '').replace(/\/$/, '');
const TOKEN = process.env.FLEET_EDGE_ADMIN_TOKEN || '';
const MODE = process.env.CONSOLE_MODE || 'functional';
const SHOTS = process.env.CONSOLE_SCREENSHOTS || '';
const WAIT = 15000;
// The bundle the agent uploads when the suite requests diagnostics (its SHA-256, hex), and how
// long the agent may take to answer (a checkin, then 4 MiB and more through the upload API).
const BUNDLE_SHA256 = process.env.CONSOLE_BUNDLE_SHA256 || '';
const BUNDLE_WAIT = 120000;
let passed = 0;
let failed = 0;

function check(name, ok, detail) {
  if (ok) passed++; else failed++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail === undefined ? '' : ': ' + detail}`);
}

async function browser(width, height) {
  const options = new chrome.Options()
    .setChromeBinaryPath(process.env.CHROMIUM || '/usr/bin/chromium')
    .addArguments('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
      '--no-first-run', '--disable-extensions', '--disable-background-networking', '--disable-sync',
      '--disable-component-update', '--disable-default-apps', `--window-size=${width},${height}`);
  // Chromium's windows are at least 500 px wide: a phone's viewport is emulated.
  if (width < 500) options.setMobileEmulation({ deviceMetrics: { width, height, pixelRatio: 1, touch: true } });
  const prefs = new logging.Preferences();
  prefs.setLevel(logging.Type.BROWSER, logging.Level.ALL);
  options.setLoggingPrefs(prefs);
  const service = new chrome.ServiceBuilder(process.env.CHROMEDRIVER || '/usr/bin/chromedriver');
  return new Builder().forBrowser('chrome').setChromeOptions(options).setChromeService(service).build();
}

const text = async (driver, css) => (await driver.wait(until.elementLocated(By.css(css)), WAIT)).getText();
const waitFor = (driver, fn, what) => driver.wait(async () => { try { return await fn(); } catch (_) { return false; } }, WAIT, 'waiting for ' + what);
const pageIs = (driver, page) => waitFor(driver, async () => (await driver.executeScript('return document.body.dataset.page')) === page, 'page ' + page);
// Resolves once the agents table rendered again after `action` (a script) ran; the time in ms.
const timedRender = (driver, action) => driver.executeAsyncScript(`
  const done = arguments[arguments.length - 1];
  const before = performance.getEntriesByName('agents-rendered').length;
  const t0 = performance.now();
  (function () { ${action} })();
  (function poll() {
    if (performance.getEntriesByName('agents-rendered').length > before) requestAnimationFrame(() => done(performance.now() - t0));
    else setTimeout(poll, 1);
  })();`);

async function login(driver, token) {
  await driver.get(BASE + '/console/');
  const input = await driver.wait(until.elementLocated(By.css('#login:not([hidden]) #token')), WAIT);
  await input.sendKeys(token);
  await driver.findElement(By.css('#login button[type=submit]')).click();
  await pageIs(driver, 'overview');
}

async function logout(driver) {
  await driver.findElement(By.id('logout')).click();
  await driver.wait(until.elementLocated(By.css('#login:not([hidden])')), WAIT);
}

// Console messages other than the API answers the test provoked on purpose (a wrong token's
// 401, a 404 for uploads on a server without them): a CSP violation or a script error fails.
async function consoleErrors(driver, expected) {
  const entries = await driver.manage().logs().get(logging.Type.BROWSER);
  return entries.filter((e) => e.level.value >= logging.Level.WARNING.value)
    .filter((e) => !expected.some((re) => re.test(e.message)))
    .map((e) => e.message);
}

async function functional() {
  const facts = JSON.parse(process.env.CONSOLE_EXPECT || '{}');
  const driver = await browser(1280, 900);
  try {
    // Wrong token: refused, said on the page, no session.
    await driver.get(BASE + '/console/');
    await (await driver.wait(until.elementLocated(By.css('#login:not([hidden]) #token')), WAIT)).sendKeys('not-the-token-0000');
    await driver.findElement(By.css('#login button[type=submit]')).click();
    await waitFor(driver, async () => (await text(driver, '#login-error')).length > 0, 'the login error');
    check('a wrong token is refused', /wrong token/.test(await text(driver, '#login-error')));

    await login(driver, TOKEN);
    check('logged in with the admin token', (await text(driver, '#who')) === 'admin');
    const cookies = await driver.manage().getCookies();
    const session = cookies.find((c) => c.name === 'fleet_edge_session');
    check('the session cookie is HttpOnly, Secure, SameSite=Strict, with an expiry',
      session && session.httpOnly && session.secure && session.sameSite === 'Strict' && session.expiry > Date.now() / 1000,
      JSON.stringify(session && { httpOnly: session.httpOnly, secure: session.secure, sameSite: session.sameSite, expiry: session.expiry }));

    // Overview: agents by status as the API counts them.
    await driver.wait(until.elementLocated(By.id('by-status')), WAIT);
    const bars = await driver.executeScript(`return Object.fromEntries([...document.querySelectorAll('#by-status div')].map((d) => [d.querySelector('.badge').textContent, Number(d.querySelector('.n').textContent)]))`);
    check('overview shows agents by status', JSON.stringify(bars) === JSON.stringify(facts.by_status), JSON.stringify(bars));
    const older = await text(driver, '#overview-policies tbody');
    check('overview lists the policies with their revision', older.includes(facts.policy_name) && /\b1 5 1$/.test(older.trim()), older.replace(/\n/g, ' | '));
    check('overview shows server health', /HEALTHY/i.test(await text(driver, '#health')));
    // The 24-hour chart: the samples the server keeps (a previous run's and this start's), a
    // shape per status they hold, named in the key.
    const chart = await driver.executeScript(`const f = document.querySelector('#status-chart');
      return f && { samples: Number(f.dataset.samples), paths: [...f.querySelectorAll('svg path')].map((p) => p.getAttribute('class')),
        bars: [...f.querySelectorAll('svg path')].map((p) => (p.getAttribute('d').match(/M/g) || []).length), key: f.querySelector('figcaption').textContent }`);
    check('overview draws agents by status over 24 h', chart && chart.samples >= facts.history_samples &&
      facts.history_statuses.every((s) => chart.paths.includes('c-' + s) && chart.key.includes(s)) &&
      Math.max(...chart.bars) >= facts.history_samples - 1, JSON.stringify(chart));
    if (SHOTS) fs.writeFileSync(path.join(SHOTS, 'overview.png'), await driver.takeScreenshot(), 'base64');

    // Agents: every agent, then filtered by status and by tag.
    await driver.findElement(By.css('nav a[data-page=agents]')).click();
    await pageIs(driver, 'agents');
    await waitFor(driver, async () => (await text(driver, '#agent-count')) === `${facts.active} agents`, 'the agent count');
    const rows = await driver.findElements(By.css('#agents tbody tr'));
    check('the agents page lists the active agents', rows.length === facts.active, `${rows.length} rows`);
    const statuses = await driver.executeScript(`return [...document.querySelectorAll('#agents tbody tr td:nth-child(2)')].map((td) => td.textContent).sort()`);
    check('each agent shows its status', JSON.stringify(statuses) === JSON.stringify(facts.active_statuses), statuses.join(','));
    if (SHOTS) fs.writeFileSync(path.join(SHOTS, 'agents.png'), await driver.takeScreenshot(), 'base64');

    await driver.findElement(By.css('#filters select[name=status] option[value=degraded]')).click();
    await waitFor(driver, async () => (await text(driver, '#agent-count')) === '1 agents', 'the status filter');
    check('filtering by status', (await text(driver, '#agents tbody')).includes(facts.degraded_host));
    await driver.findElement(By.css('#filters select[name=status] option[value=""]')).click();
    await driver.findElement(By.css(`#filters select[name=tag] option[value="${facts.tag}"]`)).click();
    await waitFor(driver, async () => (await text(driver, '#agent-count')) === `${facts.tagged} agents`, 'the tag filter');
    check('filtering by tag', (await driver.findElements(By.css('#agents tbody tr'))).length === facts.tagged);
    const search = await driver.findElement(By.css('#filters input[name=q]'));
    await driver.findElement(By.css('#filters select[name=tag] option[value=""]')).click();
    await waitFor(driver, async () => (await text(driver, '#agent-count')) === `${facts.active} agents`, 'filters cleared');
    await search.sendKeys(facts.degraded_host, '\n');
    await waitFor(driver, async () => (await text(driver, '#agent-count')) === '1 agents', 'the search');
    check('searching by host name', (await text(driver, '#agents tbody')).includes(facts.degraded_host));

    // One agent: components, last message; request diagnostics.
    await driver.findElement(By.linkText(facts.degraded_host)).click();
    await pageIs(driver, 'agent');
    const details = await text(driver, '#agent-details');
    check('the agent page shows its last message', details.includes(facts.degraded_message), details.replace(/\n/g, ' | '));
    const comps = await text(driver, '#components');
    check('the agent page shows health per component', comps.includes('DEGRADED') && comps.includes(facts.degraded_unit_message), comps.replace(/\n/g, ' | '));
    await driver.findElement(By.id('diagnostics')).click();
    await waitFor(driver, async () => (await text(driver, '#agent-history')).includes('REQUEST_DIAGNOSTICS'), 'the diagnostics action in the history');
    check('diagnostics requested, in the agent\'s history', true);
    const uploads = await driver.findElements(By.id('uploads'));
    const missing = await driver.findElements(By.id('uploads-missing'));
    const none = await driver.findElements(By.id('uploads-none'));
    check('the diagnostics section shows the uploads (none yet, or that the server keeps none)', uploads.length + missing.length + none.length === 1);

    // Files page lists the request.
    await driver.findElement(By.css('nav a[data-page=files]')).click();
    await pageIs(driver, 'files');
    check('the files page lists the diagnostics request', (await text(driver, '#diagnostics-requests')).includes('REQUEST_DIAGNOSTICS'));
    // The agent answers (console.rs: it uploads its bundle and acks with the upload id): the
    // files page, reloaded until then, shows the bundle READY with a Download link, whose target,
    // fetched in the page's session, is the bundle's bytes.
    if (BUNDLE_SHA256) {
      const readyRow = async () => {
        await driver.navigate().refresh();
        await pageIs(driver, 'files');
        const links = await driver.findElements(By.css('#uploads tbody tr a[download]'));
        return links.length === 1 && (await text(driver, '#uploads tbody')).includes('READY') && links[0];
      };
      const link = await driver.wait(async () => { try { return await readyRow(); } catch (_) { return false; } },
        BUNDLE_WAIT, 'waiting for the uploaded bundle');
      check('the files page lists the uploaded bundle READY, for the agent', (await text(driver, '#uploads tbody')).includes(facts.degraded_id));
      const [href, name] = [await link.getAttribute('href'), await link.getAttribute('download')];
      check('the Download link names the bundle', /\.zip$/.test(name) && href.endsWith('/' + encodeURI(name)), `${name} ${href}`);
      const got = await driver.executeAsyncScript(`const done = arguments[arguments.length - 1];
        fetch(arguments[0], { credentials: 'same-origin' }).then(async (r) => {
          const bytes = await r.arrayBuffer();
          const sum = [...new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))].map((b) => b.toString(16).padStart(2, '0')).join('');
          done({ status: r.status, type: r.headers.get('content-type'), disposition: r.headers.get('content-disposition'), size: bytes.byteLength, sha256: sum });
        }, (e) => done({ error: String(e) }));`, href);
      check('the download is the uploaded bundle (its SHA-256)', got.status === 200 && got.size === facts.bundle_size && got.sha256 === BUNDLE_SHA256, JSON.stringify(got));
      check('the download says what it is (Kibana\'s Content-Disposition)', got.type === facts.bundle_mime &&
        got.disposition === `attachment; filename="${name}"`, `${got.type}; ${got.disposition}`);
    }

    // Policies: the compiled policy, highlighted.
    await driver.findElement(By.css('nav a[data-page=policies]')).click();
    await pageIs(driver, 'policies');
    await driver.findElement(By.linkText(facts.policy_name)).click();
    await pageIs(driver, 'policy');
    const keys = await driver.findElements(By.css('#policy-json span.k'));
    check('the compiled policy is shown highlighted', keys.length > 5 && (await text(driver, '#policy-json')).includes('"outputs"'), `${keys.length} keys`);

    // Enrollment token: create, see the quick start's command, copy it.
    await driver.findElement(By.css('nav a[data-page=policies]')).click();
    await pageIs(driver, 'policies');
    await (await driver.wait(until.elementLocated(By.id('token-name')), WAIT)).sendKeys('browser-test');
    await driver.findElement(By.id('create-token')).click();
    await waitFor(driver, async () => (await text(driver, '#install-command')).includes('--enrollment-token='), 'the install command');
    const command = await text(driver, '#install-command');
    check('a new token\'s install command is the quick start\'s', command.startsWith(`sudo elastic-agent install --url=${facts.fleet_url} --enrollment-token=`) && command.endsWith(facts.trust), command);
    check('the new token is listed', (await text(driver, '#tokens')).includes('browser-test'));
    await driver.findElement(By.id('copy-command')).click();
    await waitFor(driver, async () => (await text(driver, '#toast')) === 'Copied', 'the copy');
    check('the command is copied', true);

    // Unenroll an agent (confirmed), then it leaves the active list.
    await driver.get(BASE + '/console/#/agent/' + encodeURIComponent(facts.unenroll_id));
    await pageIs(driver, 'agent');
    await driver.findElement(By.id('unenroll')).click();
    await driver.wait(until.alertIsPresent(), WAIT);
    await driver.switchTo().alert().accept();
    await waitFor(driver, async () => (await text(driver, '#agent-history')).includes('UNENROLL'), 'the unenroll action');
    check('unenrolling an agent sends UNENROLL', true);

    await logout(driver);
    const after = await driver.executeAsyncScript(`const done = arguments[arguments.length - 1];
      fetch('/api/fleet/agents').then((r) => done(r.status), () => done(0));`);
    check('after logout the API refuses the browser', after === 401, String(after));

    // A viewer sees the fleet and cannot act.
    if (facts.viewer_token) {
      await login(driver, facts.viewer_token);
      check('a viewer logs in', (await text(driver, '#who')) === `${facts.viewer_name} (viewer)`);
      await driver.get(BASE + '/console/#/agent/' + encodeURIComponent(facts.unenroll_id));
      await pageIs(driver, 'agent');
      check('a viewer gets no action buttons', (await driver.findElements(By.id('unenroll'))).length === 0);
      const refused = await driver.executeAsyncScript(`const done = arguments[arguments.length - 1];
        fetch('/console/api/session').then((r) => r.json()).then((s) => fetch('/api/fleet/agents/${facts.unenroll_id}/unenroll',
          {method: 'POST', headers: {'X-CSRF-Token': s.csrf, 'kbn-xsrf': 'x', 'Content-Type': 'application/json'}, body: '{}'}))
          .then((r) => done(r.status), () => done(0));`);
      check('the API refuses a viewer\'s write', refused === 403, String(refused));
      await logout(driver);
    }

    // Framing refused, CSP on the page.
    const errors = await consoleErrors(driver, [/status of 401/, /status of 403/, /\/uploads .*status of 404/]);
    check('no console errors (the CSP holds, no script error)', errors.length === 0, errors.join(' / '));
  } finally {
    await driver.quit();
  }
  // A phone-sized screen: the agents table fits without sideways scrolling of the page.
  const phone = await browser(390, 844);
  try {
    await login(phone, TOKEN);
    await phone.get(BASE + '/console/#/agents');
    await pageIs(phone, 'agents');
    const [overflow, width] = await phone.executeScript('return [document.documentElement.scrollWidth - window.innerWidth, window.innerWidth]');
    check('usable on a phone-sized screen (no page overflow)', width === 390 && overflow <= 0, `${width}px wide, ${overflow}px overflow`);
    if (SHOTS) fs.writeFileSync(path.join(SHOTS, 'agents-phone.png'), await phone.takeScreenshot(), 'base64');
  } finally {
    await phone.quit();
  }
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

async function perf() {
  const agents = Number(process.env.FLEET_EDGE_AGENTS || 0);
  const driver = await browser(1280, 900);
  const report = { agents, first_render_ms: [], paging_ms: [], filter_ms: [] };
  try {
    await login(driver, TOKEN);
    // First render: a fresh page load of the agents page, navigation start to rendered table.
    for (let i = 0; i < 3; i++) {
      await driver.get(BASE + '/console/?fresh=' + i + '#/agents');
      await waitFor(driver, async () => (await driver.executeScript("return performance.getEntriesByName('agents-rendered').length")) > 0, 'the agents table');
      report.first_render_ms.push(await driver.executeScript("return performance.getEntriesByName('agents-rendered')[0].startTime"));
    }
    check(`the agents page shows all ${agents} agents`, (await text(driver, '#agent-count')) === `${agents} agents`);
    if (SHOTS) fs.writeFileSync(path.join(SHOTS, 'agents-10k.png'), await driver.takeScreenshot(), 'base64');
    for (let i = 0; i < 5; i++) report.paging_ms.push(await timedRender(driver, "document.getElementById('next').click()"));
    const filters = [
      "const s = document.querySelector('#filters select[name=status]'); s.value = 'online'; s.dispatchEvent(new Event('change'))",
      "const s = document.querySelector('#filters select[name=status]'); s.value = 'offline'; s.dispatchEvent(new Event('change'))",
      "const s = document.querySelector('#filters select[name=status]'); s.value = ''; s.dispatchEvent(new Event('change'))",
      "const q = document.querySelector('#filters input[name=q]'); q.value = 'loadgen-00012'; document.getElementById('filters').requestSubmit()",
      "const q = document.querySelector('#filters input[name=q]'); q.value = ''; document.getElementById('filters').requestSubmit()",
    ];
    for (const f of filters) report.filter_ms.push(await timedRender(driver, f));
    const errors = await consoleErrors(driver, [/console\/api\/session - .*status of 401/]);
    check('no console errors', errors.length === 0, errors.join(' / '));
  } finally {
    await driver.quit();
  }
  const round = (xs) => xs.map((x) => Math.round(x));
  report.first_render_ms = round(report.first_render_ms);
  report.paging_ms = round(report.paging_ms);
  report.filter_ms = round(report.filter_ms);
  const worst = (xs) => Math.max(...xs);
  report.summary = {
    first_render_median_ms: median(report.first_render_ms), first_render_max_ms: worst(report.first_render_ms),
    paging_median_ms: median(report.paging_ms), paging_max_ms: worst(report.paging_ms),
    filter_median_ms: median(report.filter_ms), filter_max_ms: worst(report.filter_ms),
  };
  report.goals = {
    first_render_le_1000ms: worst(report.first_render_ms) <= 1000,
    paging_and_filtering_le_300ms: worst(report.paging_ms.concat(report.filter_ms)) <= 300,
  };
  console.log(JSON.stringify(report));
  if (process.env.CONSOLE_REPORT) fs.writeFileSync(process.env.CONSOLE_REPORT, JSON.stringify(report, null, 2) + '\n');
  // The goals are reported, not enforced (like the load benchmark's): a busy machine is not a bug.
  console.log(`goals: first render ≤ 1 s ${report.goals.first_render_le_1000ms ? 'met' : 'NOT met'}, paging/filtering ≤ 300 ms ${report.goals.paging_and_filtering_le_300ms ? 'met' : 'NOT met'}`);
}

(async () => {
  if (!BASE || !TOKEN) throw new Error('FLEET_EDGE_MANAGEMENT_URL and FLEET_EDGE_ADMIN_TOKEN must be set');
  if (MODE === 'perf') await perf(); else await functional();
})().catch((e) => { failed++; console.log('FAIL ' + (e && e.stack || e)); })
  .finally(() => {
    console.log(`${passed} passed, ${failed} failed`);
    process.exitCode = failed ? 1 : 0;
  });
