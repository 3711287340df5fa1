// The operations page: reads the platform's HTTP API every few seconds and renders it. No build step; the chart
// library (uPlot) is served by the API itself from the assembly. Every value comes from the API as it is: the
// rendered cell carries the API's value in data-value (the browser tests compare them), the text is formatted.
// Text from the API (dead-letter samples are hostile input) is only ever set with textContent.
(function () {
  'use strict';

  const KEY = 'lambda-api-key';
  const params = new URLSearchParams(location.search);
  const refreshSeconds = Math.min(60, Math.max(1, Number(params.get('refresh')) || 5));
  const charts = new Map();
  let timer = null;
  let keysRequired = false;
  let generation = 0;

  const $ = (id) => document.getElementById(id);

  class Unauthorized extends Error {}

  async function api(path) {
    const headers = { Accept: 'application/json' };
    const key = sessionStorage.getItem(KEY);
    if (key) headers['X-Api-Key'] = key;
    const response = await fetch(path, { headers, cache: 'no-store' });
    if (response.status === 401) throw new Unauthorized('the API key was refused');
    if (!response.ok) {
      let detail = '';
      try { detail = (await response.json()).detail || ''; } catch { /* not JSON */ }
      throw new Error(`${path}: HTTP ${response.status}${detail ? ': ' + detail : ''}`);
    }
    return response.json();
  }

  // ---- formatting ----------------------------------------------------------------------------------------------
  const time = (iso) => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '–');
  const int = (n) => (n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US'));
  const fixed = (n, digits) => (n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }));
  const percent = (x) => (x === null || x === undefined ? '–' : (100 * x).toFixed(2) + ' %');
  const duration = (ms) => (ms < 1000 ? ms + ' ms' : (ms / 1000).toFixed(1) + ' s');
  const secondsSince = (iso) => (iso ? Math.max(0, (Date.now() - Date.parse(iso)) / 1000) : null);

  function cell(text, value, className) {
    const td = document.createElement('td');
    td.textContent = text;
    if (value !== undefined) td.dataset.value = value === null ? '' : String(value);
    if (className) td.className = className;
    return td;
  }

  function fill(tableId, rows, empty) {
    const body = $(tableId).tBodies[0];
    const fresh = document.createElement('tbody');
    if (rows.length === 0) {
      const tr = document.createElement('tr');
      const td = cell(empty);
      td.colSpan = $(tableId).tHead.rows[0].cells.length;
      td.className = 'empty';
      tr.appendChild(td);
      fresh.appendChild(tr);
    }
    for (const row of rows) fresh.appendChild(row);
    body.replaceWith(fresh);
  }

  function row(key, cells, className) {
    const tr = document.createElement('tr');
    if (key) tr.dataset.key = key;
    if (className) tr.className = className;
    for (const c of cells) tr.appendChild(c);
    return tr;
  }

  function kpi(id, text, value) {
    const el = $(id);
    el.textContent = text;
    el.dataset.value = value === null || value === undefined ? '' : String(value);
  }

  // ---- sections --------------------------------------------------------------------------------------------------
  function renderViews(views) {
    fill('views', views.views.map((v) => row(v.name, [
      cell(v.name, v.name),
      cell(v.bucket, v.bucket),
      cell(time(v.watermark), v.watermark),
      cell(time(v.newestRealtimeBucket), v.newestRealtimeBucket),
      cell(v.speedLagSeconds === null ? '–' : fixed(v.speedLagSeconds, 1), v.speedLagSeconds, 'num'),
    ])), 'no views');
    fill('partitions', views.speedPartitions.map((p) => row(String(p.partition), [
      cell(String(p.partition), p.partition, 'num'),
      cell(int(p.kafkaLag), p.kafkaLag, 'num'),
      cell(p.newestEventTime ? fixed(secondsSince(p.newestEventTime), 1) : '–', p.newestEventTime, 'num'),
      cell(int(p.nextOffset), p.nextOffset, 'num'),
      cell(time(p.flushedAt), p.flushedAt),
      cell(p.instance, p.instance),
    ])), 'the speed layer has not flushed yet');
  }

  function renderPipeline(pipeline) {
    fill('batch-runs', pipeline.batchRuns.slice(0, 20).map((r, i) => row(`${r.view}/${r.day}/${i}`, [
      cell(time(r.finishedAt), r.finishedAt),
      cell(r.view, r.view),
      cell(r.day, r.day),
      cell(int(r.rowsIn), r.rowsIn, 'num'),
      cell(int(r.rowsOut), r.rowsOut, 'num'),
      cell(duration(r.durationMs), r.durationMs, 'num'),
      cell(time(r.watermark), r.watermark),
      cell(r.watermarkHeld || '', r.watermarkHeld, 'wrap'),
      cell(r.instance, r.instance),
    ], r.watermarkHeld ? 'held' : '')), 'no batch run yet');
  }

  function renderOps(ops) {
    $('instance').textContent = ops.instance;
    $('rate-window').textContent = ops.ingest.windowSeconds;
    kpi('ingest-rate', fixed(ops.ingest.recordsPerSecond, 1), ops.ingest.recordsPerSecond);
    kpi('dlq-rate', fixed(ops.ingest.deadLettersPerSecond, 2), ops.ingest.deadLettersPerSecond);
    kpi('ingest-records', int(ops.ingest.records), ops.ingest.records);
    kpi('dlq-records', int(ops.ingest.deadLetters), ops.ingest.deadLetters);
    fill('dlq-top', ops.deadLetters.topReasons.map((t) => row(`${t.rule} ${t.path}`, [
      cell(t.rule, t.rule),
      cell(t.path, t.path),
      cell(int(t.records), t.records, 'num'),
      cell(t.example, t.example, 'wrap'),
    ])), 'no dead letters in the last hour');
    fill('dlq-samples', ops.deadLetters.samples.map((s) => {
      const value = cell(s.value, s.value, 'wrap sample');
      return row(`${s.partition}/${s.offset}`, [
        cell(time(s.flushedAt), s.flushedAt),
        cell(`${s.topic} ${s.partition}@${s.offset}`, `${s.partition}@${s.offset}`),
        cell(s.reason, s.reason, 'wrap'),
        value,
      ]);
    }), 'none');
    $('api-window').textContent = ops.api.windowSeconds;
    kpi('api-p50', fixed(ops.api.p50Ms, 2), ops.api.p50Ms);
    kpi('api-p95', fixed(ops.api.p95Ms, 2), ops.api.p95Ms);
    kpi('api-p99', fixed(ops.api.p99Ms, 2), ops.api.p99Ms);
    kpi('api-p999', fixed(ops.api.p999Ms, 2), ops.api.p999Ms);
    kpi('api-requests', int(ops.api.requests), ops.api.requests);
    drawIngest(ops.ingest);
  }

  function chart(id, container, options, data) {
    if (typeof uPlot === 'undefined') return;
    const width = Math.max(320, container.clientWidth - 8);
    const existing = charts.get(id);
    if (existing && existing.series.length === options.series.length) {
      existing.setSize({ width, height: options.height });
      existing.setData(data);
      return;
    }
    if (existing) existing.destroy();
    container.textContent = '';
    charts.set(id, new uPlot({ ...options, width }, data, container));
  }

  function drawIngest(ingest) {
    const step = ingest.stepSeconds;
    const xs = [];
    const records = [];
    const dead = [];
    for (const point of ingest.series) {
      xs.push(Date.parse(point.at) / 1000);
      records.push(point.records / step);
      dead.push(point.deadLetters / step);
    }
    const container = $('ingest-chart');
    container.dataset.points = String(xs.length);
    chart('ingest', container, {
      height: 200,
      series: [
        {},
        { label: 'records/s', stroke: '#1f4e79', width: 2 },
        { label: 'dead letters/s', stroke: '#b42318', width: 2, scale: 'dlq' },
      ],
      axes: [{}, { label: 'records/s' }, { side: 1, scale: 'dlq', label: 'dead letters/s', grid: { show: false } }],
      scales: { x: { time: true } },
    }, [xs, records, dead]);
  }

  function renderAccuracy(reports) {
    const root = $('accuracy');
    const withReports = reports.filter((r) => r.reports.length > 0);
    if (withReports.length === 0) return;
    const seen = new Set();
    for (const view of withReports) {
      seen.add(view.view);
      let box = root.querySelector(`[data-view="${CSS.escape(view.view)}"]`);
      if (!box) {
        root.querySelector('.empty')?.remove();
        box = document.createElement('div');
        box.className = 'accuracy-view';
        box.dataset.view = view.view;
        const title = document.createElement('h3');
        box.appendChild(title);
        const plot = document.createElement('div');
        plot.className = 'chart';
        box.appendChild(plot);
        const table = document.createElement('table');
        table.className = 'accuracy-measures';
        table.innerHTML = '<thead><tr><th>measure</th><th>kind</th><th class="num">buckets compared</th><th class="num">out of bound</th>'
          + '<th class="num">max rel. error</th><th class="num">mean rel. error</th><th class="num">bound</th><th class="num">top-k misses</th></tr></thead><tbody></tbody>';
        box.appendChild(table);
        root.appendChild(box);
      }
      const days = [...view.reports].reverse(); // oldest first
      const latest = view.reports[0];
      const title = box.querySelector('h3');
      title.textContent = `${view.view} — latest ${latest.day} `;
      const badge = document.createElement('span');
      badge.className = latest.warning ? 'badge warn' : 'badge ok';
      badge.textContent = latest.warning ? 'a count, sum, min or max differed' : 'within bounds';
      title.appendChild(badge);

      // Chart: max relative error (%) per approximate measure and day, with each measure's bound.
      const approximate = latest.measures.filter((m) => !m.exact);
      const xs = days.map((r) => Date.parse(r.day + 'T00:00:00Z') / 1000);
      const series = [{}];
      const data = [xs];
      const colors = ['#1f4e79', '#b54708', '#6941c6', '#067647', '#c11574'];
      approximate.forEach((m, i) => {
        series.push({ label: `${m.name} max %`, stroke: colors[i % colors.length], width: 2, points: { show: true } });
        data.push(days.map((r) => { const x = r.measures.find((y) => y.name === m.name); return x && x.maxRelativeError !== null ? 100 * x.maxRelativeError : null; }));
        series.push({ label: `${m.name} bound %`, stroke: colors[i % colors.length], dash: [4, 4], width: 1 });
        data.push(days.map(() => 100 * m.bound));
      });
      box.querySelector('.chart').dataset.points = String(xs.length);
      if (approximate.length > 0) {
        chart('accuracy:' + view.view, box.querySelector('.chart'), {
          height: 180,
          series,
          axes: [{}, { label: 'relative error %' }],
          scales: { x: { time: true } },
        }, data);
        // uPlot widens a time axis with one point to 1,000 days: three days either side of the one day instead.
        const plot = charts.get('accuracy:' + view.view);
        if (plot && xs.length === 1) plot.setScale('x', { min: xs[0] - 3 * 86400, max: xs[0] + 3 * 86400 });
      }

      const rows = latest.measures.map((m) => row(m.name, [
        cell(m.name, m.name),
        cell(m.kind + (m.exact ? ' (exact)' : ''), m.kind),
        cell(int(m.bucketsCompared), m.bucketsCompared, 'num'),
        cell(int(m.bucketsOutOfBound), m.bucketsOutOfBound, 'num'),
        cell(percent(m.maxRelativeError), m.maxRelativeError, 'num'),
        cell(percent(m.meanRelativeError), m.meanRelativeError, 'num'),
        cell(m.exact ? 'exact' : percent(m.bound), m.bound, 'num'),
        cell(int(m.topkMisses), m.topkMisses, 'num'),
      ], m.exact && m.bucketsOutOfBound > 0 ? 'warn' : ''));
      // Not the first tbody of the box: the chart's legend (a uPlot table) comes before it.
      const body = box.querySelector('table.accuracy-measures > tbody');
      const fresh = document.createElement('tbody');
      rows.forEach((r) => fresh.appendChild(r));
      body.replaceWith(fresh);
    }
    for (const box of [...root.querySelectorAll('.accuracy-view')]) {
      if (!seen.has(box.dataset.view)) box.remove();
    }
  }

  // ---- refresh loop ------------------------------------------------------------------------------------------------
  function status(text, isError) {
    const el = $('status');
    el.textContent = text;
    el.classList.toggle('error', Boolean(isError));
  }

  async function refresh() {
    const mine = ++generation;
    try {
      const [views, pipeline, ops] = await Promise.all([api('/v1/views'), api('/v1/pipeline'), api('/v1/ops')]);
      const accuracy = await Promise.all(views.views.map((v) => api(`/v1/views/${encodeURIComponent(v.name)}/accuracy?days=30`)));
      if (mine !== generation) return;
      renderViews(views);
      renderPipeline(pipeline);
      renderOps(ops);
      renderAccuracy(accuracy);
      $('main').hidden = false;
      $('key-form').hidden = true;
      document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
      status(`updated ${new Date().toISOString().slice(11, 19)}Z`);
    } catch (e) {
      if (e instanceof Unauthorized) {
        sessionStorage.removeItem(KEY);
        askForKey('The key was refused; enter another.');
        return;
      }
      status(String(e.message || e), true);
    }
  }

  function start() {
    $('refresh-seconds').textContent = refreshSeconds;
    $('forget-key').hidden = !keysRequired;
    clearInterval(timer);
    refresh();
    timer = setInterval(refresh, refreshSeconds * 1000);
  }

  function askForKey(message) {
    clearInterval(timer);
    $('main').hidden = true;
    $('key-form').hidden = false;
    $('key-error').textContent = message || '';
    status('API key needed');
    $('key').focus();
  }

  $('key-entry').addEventListener('submit', (event) => {
    event.preventDefault();
    const key = $('key').value.trim();
    if (!key) return;
    sessionStorage.setItem(KEY, key);
    $('key').value = '';
    start();
  });

  $('forget-key').addEventListener('click', () => {
    sessionStorage.removeItem(KEY);
    askForKey();
  });

  window.addEventListener('resize', () => {
    for (const [, plot] of charts) plot.setSize({ width: Math.max(320, plot.root.parentElement.clientWidth - 8), height: plot.height });
  });

  // Whether keys are required is public (a 401 says the same); asking first keeps the console free of 401s.
  fetch('/ops/auth', { cache: 'no-store' })
    .then((r) => r.json())
    .then((auth) => {
      keysRequired = auth.keysRequired;
      if (keysRequired && !sessionStorage.getItem(KEY)) askForKey(); else start();
    })
    .catch((e) => status(String(e.message || e), true));
})();
