// The page of `pgsluice bench ui`: the run form, the live view fed by server-sent events, the Results pages.
'use strict';

const COLORS = { direct: '#6b7280', pgbouncer: '#2563eb', pgpool: '#ea580c', 'pgbouncer-pgpool': '#9333ea',
  pgsluice: '#16a34a', 'pgsluice-routed': '#0d9488' };
const PALETTE = ['#0891b2', '#db2777', '#ca8a04', '#4f46e5', '#65a30d', '#dc2626'];
const DASHES = { p50: '2 3', p95: '6 3', p99: '' };

function colorOf(name, names) {
  if (COLORS[name]) return COLORS[name];
  const i = Math.max(0, names.filter((n) => !COLORS[n]).indexOf(name));
  return PALETTE[i % PALETTE.length];
}

// --- small DOM helpers (text always goes in as text, never as HTML) ---
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}
const $ = (sel) => document.querySelector(sel);
const fmt = (v, digits = 2) => (v === undefined || v === null || Number.isNaN(v) ? '–' : Number(v).toFixed(digits));
const fmtInt = (v) => (v === undefined || v === null ? '–' : Math.round(v).toLocaleString('en-US'));

function showMessage(text, kind) {
  const m = $('#message');
  if (!text) { m.hidden = true; m.textContent = ''; return; }
  m.textContent = text;
  m.className = kind || 'info';
  m.hidden = false;
}

async function api(path, options) {
  const response = await fetch(path, Object.assign({ credentials: 'same-origin' }, options || {}));
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
  if (!response.ok) {
    const message = body && body.error ? body.error : `${response.status} ${response.statusText}: ${text.slice(0, 300)}`;
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return body;
}

// --- charts: plain SVG ---
const SVG_NS = 'http://www.w3.org/2000/svg';
function svgEl(tag, attrs) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

// series: [{name, color, dash, points: [[x, y], ...]}]
function drawChart(svg, series, options) {
  const W = 720, H = 220, L = 56, R = 12, T = 10, B = 26;
  while (svg.firstChild) svg.firstChild.remove();
  const all = series.flatMap((s) => s.points);
  svg.dataset.points = String(options && options.count !== undefined ? options.count : all.length);
  if (all.length === 0) {
    const t = svgEl('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'empty' });
    t.textContent = (options && options.empty) || 'no points yet';
    svg.append(t);
    return;
  }
  const xMin = Math.min(...all.map((p) => p[0])), xMax = Math.max(...all.map((p) => p[0]), xMin + 1);
  const yMax = Math.max(...all.map((p) => p[1]), 0) * 1.1 || 1;
  const x = (v) => L + ((v - xMin) / (xMax - xMin)) * (W - L - R);
  const y = (v) => T + (1 - v / yMax) * (H - T - B);
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4;
    svg.append(svgEl('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid' }));
    const t = svgEl('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end' });
    t.textContent = v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(v >= 10 ? 1 : 2);
    svg.append(t);
  }
  svg.append(svgEl('line', { x1: L, x2: W - R, y1: H - B, y2: H - B, class: 'axis' }));
  svg.append(svgEl('line', { x1: L, x2: L, y1: T, y2: H - B, class: 'axis' }));
  const ticks = Math.min(8, Math.round(xMax - xMin));
  for (let i = 0; i <= ticks; i++) {
    const v = xMin + ((xMax - xMin) * i) / (ticks || 1);
    const t = svgEl('text', { x: x(v), y: H - B + 15, 'text-anchor': 'middle' });
    t.textContent = `${Math.round(v)}s`;
    svg.append(t);
  }
  for (const s of series) {
    if (s.points.length === 0) continue;
    const d = s.points.map((p, i) => `${i ? 'L' : 'M'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ');
    const path = svgEl('path', { d, class: 'series', stroke: s.color, 'data-series': s.name });
    if (s.dash) path.setAttribute('stroke-dasharray', s.dash);
    const title = svgEl('title');
    title.textContent = s.name;
    path.append(title);
    svg.append(path);
    if (s.points.length === 1) svg.append(svgEl('circle', { cx: x(s.points[0][0]), cy: y(s.points[0][1]), r: 2.5, fill: s.color }));
  }
}

function legend(series) {
  return el('div', { class: 'legend' }, series.map((s) => {
    const swatch = el('i');
    swatch.style.background = s.color;
    return el('span', {}, swatch, s.name);
  }));
}

// --- live run ---
const live = { id: null, state: 'idle', request: null, points: [], log: [], outcome: null, error: null, result_id: null };

function resetLive(summary) {
  Object.assign(live, { id: summary.id, state: summary.state, request: summary.request, points: [], log: [],
    outcome: null, error: null, result_id: null });
}

function applySummary(summary) {
  if (summary.id !== live.id) resetLive(summary);
  live.state = summary.state;
  live.outcome = summary.outcome || null;
  live.error = summary.error || null;
  live.result_id = summary.result_id || null;
}

function targetsOfLive() {
  const names = [];
  for (const p of live.points) if (!names.includes(p.target)) names.push(p.target);
  return names;
}

function renderLive() {
  const state = $('#run-state');
  state.textContent = live.state;
  state.dataset.state = live.state;
  const r = live.request;
  $('#run-title').textContent = r ? `${live.id} · ${r.workload} · ${r.protocol} · ${r.users} users · ${r.targets.join(', ')}` : '';
  const last = live.points[live.points.length - 1];
  $('#live-rps').textContent = last ? fmtInt(last.rps) : '–';
  $('#live-p50').textContent = last ? `${fmt(last.p50_ms)} ms` : '–';
  $('#live-p95').textContent = last ? `${fmt(last.p95_ms)} ms` : '–';
  $('#live-p99').textContent = last ? `${fmt(last.p99_ms)} ms` : '–';
  $('#live-users').textContent = last ? fmtInt(last.users) : '–';
  $('#live-failures').textContent = last ? fmtInt(last.failures) : '–';
  const names = targetsOfLive();
  const throughput = names.map((n) => ({ name: n, color: colorOf(n, names),
    points: live.points.filter((p) => p.target === n).map((p) => [p.t, p.rps]) }));
  drawChart($('#chart-throughput'), throughput, { count: live.points.length });
  const latency = names.flatMap((n) => ['p50', 'p95', 'p99'].map((q) => ({ name: `${n} ${q}`, color: colorOf(n, names),
    dash: DASHES[q], points: live.points.filter((p) => p.target === n).map((p) => [p.t, p[`${q}_ms`]]) })));
  drawChart($('#chart-latency'), latency, { count: live.points.length });
  $('#legend-throughput').replaceChildren(legend(throughput));
  $('#legend-latency').replaceChildren(legend(throughput), el('span', { class: 'muted' }, 'dotted p50 · dashed p95 · solid p99'));
  renderOutcome();
  $('#run-log').textContent = live.log.join('\n');
}

function errorList(errors) {
  if (!errors || errors.length === 0) return null;
  return el('ul', { class: 'errors' }, errors.map((e) =>
    el('li', {}, el('b', {}, e.kind), ` × ${fmtInt(e.count)}: `, el('code', {}, e.message || ''))));
}

function renderOutcome() {
  const box = $('#run-outcome');
  box.replaceChildren();
  if (live.state === 'failed') {
    box.append(el('div', { class: 'failed' }, el('h3', {}, 'The run failed'), el('pre', { id: 'run-error' }, live.error || '')));
    return;
  }
  if (live.state !== 'finished' || !live.outcome) return;
  const rows = live.outcome.map((o) => el('tr', { class: o.failures > 0 || o.requests === 0 ? 'bad' : '' },
    el('td', {}, o.target), el('td', { class: 'num' }, fmtInt(o.requests)), el('td', { class: 'num' }, fmtInt(o.failures)),
    el('td', { class: 'num' }, fmt(o.rps, 1)), el('td', { class: 'num' }, fmt(o.p50_ms)),
    el('td', { class: 'num' }, fmt(o.p95_ms)), el('td', { class: 'num' }, fmt(o.p99_ms))));
  box.append(el('h3', {}, 'Finished'),
    el('table', { id: 'outcome-table' }, el('thead', {}, el('tr', {}, ['target', 'requests', 'failures', 'requests/s',
      'p50 ms', 'p95 ms', 'p99 ms'].map((h) => el('th', {}, h)))), el('tbody', {}, rows)));
  for (const o of live.outcome) {
    const list = errorList(o.errors);
    if (list) box.append(el('p', {}, `${o.target}: failures`), list);
  }
  if (live.result_id)
    box.append(el('p', {}, el('a', { id: 'run-result-link', href: `#/results/${encodeURIComponent(live.result_id)}` },
      `Open run ${live.result_id} on the Results page`)));
}

function connectEvents() {
  const source = new EventSource('/api/events');
  source.onopen = () => { $('#connection').textContent = 'live'; };
  source.onerror = () => { $('#connection').textContent = 'reconnecting…'; };
  const on = (name, handler) => source.addEventListener(name, (e) => { handler(JSON.parse(e.data)); renderLive(); });
  on('started', (s) => { resetLive(s); });
  on('point', (e) => { if (e.id === live.id) live.points.push(e.point); });
  on('log', (e) => { if (e.id === live.id) live.log.push(e.line); });
  on('stopping', applySummary);
  on('finished', (s) => {
    applySummary(s);
    const failures = (s.outcome || []).reduce((n, o) => n + o.failures, 0);
    showMessage(`Run ${s.id} finished${failures ? ` with ${fmtInt(failures)} failures` : ''}.`, failures ? 'error' : 'info');
  });
  on('failed', (s) => { applySummary(s); showMessage(`Run ${s.id} failed: ${s.error}`, 'error'); });
}

// --- the form ---
function formValues() {
  const targets = [...document.querySelectorAll('input[name=target]:checked')].map((c) => c.value);
  const custom = $('#custom-target').value.trim();
  if (custom) targets.push(custom);
  return { targets, workload: $('#workload').value, protocol: $('#protocol').value, users: $('#users').value,
    spawn_rate: $('#spawn-rate').value, run_time: $('#run-time').value, warmup: $('#warmup').value,
    wait_min: $('#wait-min').value, wait_max: $('#wait-max').value,
    read_ratio: $('#read-ratio').value };
}

async function loadOptions() {
  const o = await api('/api/options');
  const list = $('#target-list');
  list.replaceChildren();
  if (o.targets.length === 0)
    list.append(el('p', { class: 'muted' }, 'No local stack (pgsluice bench stack up) and no --target: enter one below.'));
  for (const t of o.targets) {
    list.append(el('label', { class: 'check', title: t.url + (t.problem ? ` — ${t.problem}` : '') },
      el('input', { type: 'checkbox', name: 'target', value: t.name, checked: o.targets.length === 1 }),
      ` ${t.name}`, t.running ? '' : el('span', { class: 'muted' }, ' (down)')));
  }
  $('#workload').replaceChildren(...o.workloads.map((w) => el('option', { value: w.name }, w.name)));
  $('#workload').value = o.defaults.workload;
  const describe = () => {
    const w = o.workloads.find((x) => x.name === $('#workload').value);
    $('#workload-description').textContent = w ? w.description : '';
  };
  $('#workload').onchange = describe;
  describe();
  $('#protocol').replaceChildren(...o.protocols.map((p) => el('option', { value: p }, p)));
  $('#protocol').value = o.defaults.protocol;
  $('#results-dir').textContent = o.results_dir;
  $('#users').max = o.max_users;
}

async function startRun(event) {
  event.preventDefault();
  try {
    const s = await api('/api/runs', { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(formValues()) });
    showMessage(`Run ${s.id} started.`, 'info');
  } catch (e) {
    showMessage(e.message, 'error');
  }
}

async function stopRun() {
  try {
    await api('/api/stop', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
    showMessage('Stopping: the results measured so far are saved.', 'info');
  } catch (e) {
    showMessage(e.message, 'error');
  }
}

// --- results ---
const groupLabel = (g) => `${g.workload} · ${g.protocol} · ${g.clients} users${g.connect_per_transaction ? ' · connect per transaction' : ''}`;
const groupKey = (g) => JSON.stringify([g.workload, g.protocol, g.clients, !!g.connect_per_transaction]);

async function showResults() {
  const tbody = $('#results-table tbody');
  const list = await api('/api/results');
  tbody.replaceChildren();
  if (list.length === 0) tbody.append(el('tr', {}, el('td', { colspan: 7, class: 'muted' }, 'No runs saved yet.')));
  for (const r of list) {
    if (r.error) {
      tbody.append(el('tr', { 'data-id': r.id, class: 'bad' }, el('td'), el('td', {}, r.id), el('td', { colspan: 5 }, r.error)));
      continue;
    }
    const best = Object.entries(r.best).map(([t, b]) => `${t} ${fmtInt(b.rps)}/s · ${fmt(b.p99_ms)} ms`).join('; ');
    tbody.append(el('tr', { 'data-id': r.id, class: r.failures > 0 ? 'bad' : '' },
      el('td', {}, el('input', { type: 'checkbox', class: 'compare-pick', value: r.id, onchange: updateCompareButton })),
      el('td', {}, el('a', { href: `#/results/${encodeURIComponent(r.id)}` }, r.id)),
      el('td', {}, r.workloads.join(', ')), el('td', { class: 'num' }, r.users.join(', ')),
      el('td', { class: 'num' }, `${fmt(r.run_time_s, 0)} s`), el('td', {}, best),
      el('td', { class: 'num' }, fmtInt(r.failures))));
  }
  updateCompareButton();
}

function pickedRuns() { return [...document.querySelectorAll('.compare-pick:checked')].map((c) => c.value); }
function updateCompareButton() { $('#compare').disabled = pickedRuns().length !== 2; }

function downloads(id) {
  const base = `/api/results/${encodeURIComponent(id)}`;
  return el('p', { class: 'downloads' }, 'Download: ',
    el('a', { class: 'download-json', href: `${base}/results.json`, download: `${id}-results.json` }, 'JSON'),
    el('a', { class: 'download-csv', href: `${base}/results.csv`, download: `${id}-results.csv` }, 'CSV'),
    el('a', { class: 'download-html', href: `${base}/report.html`, download: `${id}-report.html` }, 'HTML report'));
}

function summaryTable(run) {
  const rows = run.summary.map((s) => el('tr', { class: s.failures > 0 ? 'bad' : '' },
    el('td', {}, groupLabel(s.group)), el('td', {}, s.target), el('td', { class: 'num' }, fmtInt(s.requests)),
    el('td', { class: 'num' }, fmtInt(s.failures)), el('td', { class: 'num' }, fmt(s.requests_per_second, 1)),
    el('td', { class: 'num' }, fmt(s.latency_ms.p50)), el('td', { class: 'num' }, fmt(s.latency_ms.p95)),
    el('td', { class: 'num' }, fmt(s.latency_ms.p99)), el('td', { class: 'num' }, fmt(s.latency_ms.max))));
  return el('table', { class: 'summary' }, el('thead', {}, el('tr', {}, ['group', 'target', 'requests', 'failures',
    'requests/s', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms'].map((h) => el('th', {}, h)))), el('tbody', {}, rows));
}

function runMeta(run) {
  const c = run.config;
  return el('div', {},
    el('p', { class: 'muted' }, `started ${run.started_at} · ${c.workloads.join(', ')} · ${c.protocols.join(', ')} · `
      + `${c.clients.join(', ')} users · ${fmt(c.duration_s, 0)} s each · spawn rate ${c.ramp || 'all at once'}`),
    el('p', {}, 'Targets: ', c.targets.map((t) => `${t.name} (${t.url})`).join(', ')),
    run.notes.length ? el('ul', { class: 'notes' }, run.notes.map((n) => el('li', {}, n))) : null);
}

function runErrors(run) {
  const items = [];
  for (const r of run.results) {
    const errors = Object.entries(r.error_samples || {}).map(([kind, message]) =>
      ({ kind, message, count: (r.errors || {})[kind] || 0 }));
    if (errors.length) items.push(el('p', {}, `${r.target} (${groupLabel(r.group)}): failures`), errorList(errors));
  }
  return items.length ? el('div', { id: 'detail-errors' }, el('h3', {}, 'Failures'), items) : null;
}

function runCharts(run) {
  const out = [];
  const groups = new Map();
  for (const r of run.results) {
    if (r.repeat !== 0) continue;
    const k = groupKey(r.group);
    if (!groups.has(k)) groups.set(k, { group: r.group, results: [] });
    groups.get(k).results.push(r);
  }
  for (const { group, results } of groups.values()) {
    const names = results.map((r) => r.target);
    const series = results.map((r) => ({ name: r.target, color: colorOf(r.target, names),
      points: r.timeline.map((p) => [p.second + 1, p.requests]) }));
    const svg = svgEl('svg', { class: 'chart', viewBox: '0 0 720 220', role: 'img' });
    drawChart(svg, series, { empty: 'no timeline' });
    out.push(el('figure', {}, el('figcaption', {}, `Throughput · ${groupLabel(group)}`), svg, legend(series)));
  }
  return out;
}

async function showDetail(id) {
  const box = $('#run-detail');
  box.replaceChildren(el('p', { class: 'muted' }, 'loading…'));
  const run = await api(`/api/results/${encodeURIComponent(id)}`);
  box.replaceChildren(el('h2', {}, `Run ${run.id}`), runMeta(run), downloads(run.id), summaryTable(run), runErrors(run),
    ...runCharts(run));
}

async function showCompare(a, b) {
  const box = $('#compare-view');
  box.replaceChildren(el('p', { class: 'muted' }, 'loading…'));
  const [ra, rb] = await Promise.all([api(`/api/results/${encodeURIComponent(a)}`), api(`/api/results/${encodeURIComponent(b)}`)]);
  const side = (run) => el('div', { class: 'compare-side', 'data-id': run.id },
    el('h3', {}, el('a', { href: `#/results/${encodeURIComponent(run.id)}` }, run.id)), runMeta(run), summaryTable(run),
    downloads(run.id));
  const changes = [];
  for (const s of ra.summary) {
    const o = rb.summary.find((x) => x.target === s.target && groupKey(x.group) === groupKey(s.group));
    if (!o) continue;
    const pct = (now, before) => (before > 0 ? `${(((now - before) / before) * 100).toFixed(1)}%` : '–');
    changes.push(el('tr', {}, el('td', {}, groupLabel(s.group)), el('td', {}, s.target),
      el('td', { class: 'num' }, fmt(s.requests_per_second, 1)), el('td', { class: 'num' }, fmt(o.requests_per_second, 1)),
      el('td', { class: 'num' }, pct(s.requests_per_second, o.requests_per_second)),
      el('td', { class: 'num' }, fmt(s.latency_ms.p99)), el('td', { class: 'num' }, fmt(o.latency_ms.p99)),
      el('td', { class: 'num' }, pct(s.latency_ms.p99, o.latency_ms.p99))));
  }
  box.replaceChildren(el('h2', {}, `Compare ${a} with ${b}`),
    el('p', {}, el('a', { href: `/api/compare/${encodeURIComponent(a)}/${encodeURIComponent(b)}/report.html`,
      download: `compare-${a}-${b}.html` }, 'Download the comparison as HTML')),
    changes.length ? el('table', { id: 'compare-changes' }, el('thead', {}, el('tr', {}, ['group', 'target',
      `${a} req/s`, `${b} req/s`, 'change', `${a} p99`, `${b} p99`, 'change'].map((h) => el('th', {}, h)))),
    el('tbody', {}, changes)) : el('p', { class: 'muted' }, 'The two runs share no group and target.'),
    el('div', { class: 'side-by-side' }, side(ra), side(rb)));
}

// --- routing: #/run, #/results, #/results/ID, #/compare/A/B ---
async function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  const view = parts[0] === 'results' ? (parts[1] ? 'detail' : 'results') : parts[0] === 'compare' ? 'compare' : 'run';
  for (const v of document.querySelectorAll('.view')) v.hidden = v.id !== `view-${view}`;
  $('#nav-run').classList.toggle('active', view === 'run');
  $('#nav-results').classList.toggle('active', view !== 'run');
  try {
    if (view === 'results') await showResults();
    if (view === 'detail') await showDetail(parts[1]);
    if (view === 'compare') await showCompare(parts[1], parts[2]);
  } catch (e) {
    showMessage(e.message, 'error');
    const box = view === 'detail' ? $('#run-detail') : view === 'compare' ? $('#compare-view') : null;
    if (box) box.replaceChildren(el('p', { class: 'bad' }, e.message));
  }
}

window.addEventListener('hashchange', () => { showMessage(''); route(); });
document.addEventListener('DOMContentLoaded', () => {
  $('#run-form').addEventListener('submit', startRun);
  $('#stop').addEventListener('click', stopRun);
  $('#compare').addEventListener('click', () => { const [a, b] = pickedRuns(); location.hash = `#/compare/${a}/${b}`; });
  loadOptions().catch((e) => showMessage(`Cannot load the form: ${e.message}`, 'error'));
  renderLive();
  connectEvents();
  route();
});
