// Drives the page of `pgsluice bench ui` in Debian's chromium (headless): a run from the form, the live chart, the refusal of a second start, Results, compare.
//
// Usage: node browser_test.js BASE_URL ARTIFACT_DIR   (run by tests/integration/bench_ui_test.cpp)
// Waits on DOM conditions only; exits non-zero with the step that failed.
'use strict';

const path = require('path');
const { chromium } = require('playwright-core');

const [base, artifacts] = process.argv.slice(2);
if (!base || !artifacts) {
  console.error('usage: node browser_test.js BASE_URL ARTIFACT_DIR');
  process.exit(2);
}

let step = 'start';
function check(condition, message) {
  if (!condition) throw new Error(message);
}
const textOf = (page, sel) => page.locator(sel).innerText();

async function fillShortRun(page, seconds) {
  await page.locator('input[name=target][value=direct]').check();
  await page.selectOption('#workload', 'select-only');
  await page.fill('#users', '2');
  await page.fill('#spawn-rate', '0');
  await page.fill('#run-time', `${seconds}s`);
  await page.fill('#warmup', '0s');
}

async function main() {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    const page = await context.newPage();
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));

    step = 'open the page';
    await page.goto(`${base}#/run`);
    await page.waitForSelector('input[name=target][value=direct]');
    await page.waitForFunction(() => document.querySelector('#connection').textContent === 'live');

    step = 'a bad form is refused with the server message';
    await fillShortRun(page, 3);
    await page.fill('#users', '-5');
    await page.click('#start');
    await page.waitForFunction(() => {
      const m = document.querySelector('#message');
      return !m.hidden && m.classList.contains('error') && m.textContent.includes('users must be a whole number');
    });

    step = 'a target that is down shows why';
    await page.fill('#users', '2');
    await page.locator('input[name=target][value=direct]').uncheck();
    await page.fill('#custom-target', 'down=postgresql://nobody@127.0.0.1:9/none');
    await page.click('#start');
    await page.waitForFunction(() => document.querySelector('#message').textContent.includes('is down'));
    await page.fill('#custom-target', '');

    step = 'start a run from the form';
    await fillShortRun(page, 4);
    await page.click('#start');
    await page.waitForFunction(() => document.querySelector('#run-state').dataset.state === 'running');
    const runId = (await textOf(page, '#run-title')).split(' · ')[0];
    check(/^\d{4}-\d\d-\d\dT/.test(runId), `run title does not start with the run id: ${runId}`);

    step = 'the live chart gets new points';
    await page.waitForFunction(() => Number(document.querySelector('#chart-throughput').dataset.points) >= 1);
    const first = Number(await page.locator('#chart-throughput').getAttribute('data-points'));
    await page.waitForFunction((n) => Number(document.querySelector('#chart-throughput').dataset.points) > n, first);
    check((await page.locator('#chart-throughput path.series').count()) >= 1, 'no line drawn in the throughput chart');
    check((await page.locator('#chart-latency path.series').count()) === 3, 'latency chart: expected p50, p95 and p99 lines');
    check(/\d/.test(await textOf(page, '#live-rps')), 'requests/s tile shows no number');
    check(/ms$/.test(await textOf(page, '#live-p99')), 'p99 tile shows no latency');

    step = 'a second start during the run is refused (another tab)';
    const other = await context.newPage();
    await other.goto(`${base}#/run`);
    await other.waitForSelector('input[name=target][value=direct]');
    // The other tab sees the run in progress too (events replayed from its start).
    await other.waitForFunction(() => document.querySelector('#run-state').dataset.state === 'running');
    await fillShortRun(other, 3);
    await other.click('#start');
    await other.waitForFunction(() => document.querySelector('#message').textContent.includes('a run is already in progress'));
    check(await other.locator('#message').evaluate((m) => m.classList.contains('error')), 'the refusal is not shown as an error');
    await other.screenshot({ path: path.join(artifacts, 'bench-ui-refused.png') });
    await other.close();
    await page.screenshot({ path: path.join(artifacts, 'bench-ui-live.png'), fullPage: true });

    step = 'the run finishes';
    await page.waitForFunction(() => document.querySelector('#run-state').dataset.state === 'finished', null, { timeout: 60000 });
    await page.waitForSelector('#outcome-table tbody tr');
    const requests = Number((await page.locator('#outcome-table tbody tr td').nth(1).innerText()).replace(/,/g, ''));
    check(requests > 0, `finished with ${requests} requests`);

    step = 'open it on the Results page';
    await page.click('#run-result-link');
    await page.waitForSelector('#run-detail h2');
    check((await textOf(page, '#run-detail h2')) === `Run ${runId}`, 'detail page shows another run');
    const summary = await textOf(page, '#run-detail table.summary tbody');
    check(summary.includes('direct') && summary.includes('select-only'), `summary table: ${summary}`);
    for (const [sel, expected] of [['a.download-json', '"pgsluice-bench-results"'], ['a.download-csv', 'workload,protocol,users'],
      ['a.download-html', '<svg']]) {
      const href = await page.locator(`#run-detail ${sel}`).getAttribute('href');
      const response = await page.request.get(new URL(href, base).href);
      check(response.ok(), `${sel} ${href}: HTTP ${response.status()}`);
      check((await response.text()).includes(expected), `${sel} ${href} lacks ${expected}`);
    }

    step = 'a second run, then compare the two side by side';
    await page.click('#nav-run');
    await fillShortRun(page, 3);
    await page.click('#start');
    await page.waitForFunction((id) => {
      const t = document.querySelector('#run-title').textContent;
      return !t.startsWith(id) && document.querySelector('#run-state').dataset.state === 'finished';
    }, runId, { timeout: 60000 });
    await page.click('#nav-results');
    await page.waitForSelector(`#results-table tr[data-id="${runId}"]`);
    const picks = page.locator('#results-table input.compare-pick');
    check((await picks.count()) >= 2, 'fewer than two runs listed');
    await picks.nth(0).check();
    await page.locator(`#results-table tr[data-id="${runId}"] input.compare-pick`).check();
    await page.click('#compare');
    await page.waitForSelector('#compare-view .compare-side');
    check((await page.locator('#compare-view .compare-side').count()) === 2, 'compare view: not two sides');
    check((await page.locator('#compare-changes tbody tr').count()) >= 1, 'compare view: no change row for direct');
    await page.screenshot({ path: path.join(artifacts, 'bench-ui-compare.png'), fullPage: true });

    step = 'the Results list';
    await page.click('#nav-results');
    await page.waitForSelector(`#results-table tr[data-id="${runId}"] a`);
    await page.screenshot({ path: path.join(artifacts, 'bench-ui-results.png'), fullPage: true });

    check(pageErrors.length === 0, `script errors on the page: ${pageErrors.join('; ')}`);
    console.log('browser test: all steps passed');
  } finally {
    await browser.close();
  }
}

main().catch(async (e) => {
  console.error(`browser test failed at step "${step}": ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
