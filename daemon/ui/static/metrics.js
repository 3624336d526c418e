// Charts of PromQL queries when the metrics engine serves Prometheus's API
// on this listener; otherwise of the capture engine's res samples. The
// timeline's changes are drawn on every chart; the URL holds the query
// and the range, so a view can be shared.
import { api, checkFilter, el, params, setParams, showFilterError } from './app.js';
import { Chart } from './chart.js';

const RANGES = [['15m', 15 * 60e3], ['1h', 3600e3], ['6h', 6 * 3600e3], ['24h', 24 * 3600e3]];

// Presets: cAdvisor's panels (CPU, memory, network, filesystem) for the
// host and the containers.
const PROM = [
  { title: 'Host CPU (cores busy)', unit: '', q: 'sum by (mode) (rate(node_cpu_seconds_total{mode!="idle"}[1m]))' },
  { title: 'Host memory available', unit: 'bytes', q: 'node_memory_MemAvailable_bytes' },
  { title: 'Host network (bytes/s)', unit: 'bytes', q: 'sum by (device) (rate(node_network_receive_bytes_total[1m]))' },
  { title: 'Host filesystem free', unit: 'bytes', q: 'node_filesystem_avail_bytes' },
  { title: 'Container CPU (cores)', unit: '', q: 'sum by (name) (rate(container_cpu_usage_seconds_total[1m]))' },
  { title: 'Container memory (working set)', unit: 'bytes', q: 'container_memory_working_set_bytes' },
  { title: 'Container network (bytes/s)', unit: 'bytes', q: 'sum by (name) (rate(container_network_receive_bytes_total[1m]))' },
  { title: 'Container filesystem writes (bytes/s)', unit: 'bytes', q: 'sum by (name) (rate(container_fs_writes_bytes_total[1m]))' },
];
// One container's panels, cAdvisor's page for it.
const containerPanels = (n) => {
  const sel = `{name=${JSON.stringify(n)}}`;
  return [
    { title: `${n}: CPU (cores)`, unit: '', q: `sum(rate(container_cpu_usage_seconds_total${sel}[1m]))` },
    { title: `${n}: memory (working set)`, unit: 'bytes', q: `container_memory_working_set_bytes${sel}` },
    { title: `${n}: network (bytes/s)`, unit: 'bytes', q: `sum(rate(container_network_receive_bytes_total${sel}[1m]))` },
    { title: `${n}: filesystem writes (bytes/s)`, unit: 'bytes', q: `sum(rate(container_fs_writes_bytes_total${sel}[1m]))` },
  ];
};
const RES = [
  { title: 'cgroup CPU (cores)', unit: '', kind: 'capture.cgroup_sample', field: 'data.cpu_delta_s', agg: 'rate' },
  { title: 'cgroup memory (working set)', unit: 'bytes', kind: 'capture.cgroup_sample', field: 'data.working_set', agg: 'avg' },
  { title: 'process CPU (cores)', unit: '', kind: 'capture.sample', field: 'data.cpu_delta_s', agg: 'rate' },
  { title: 'process memory (RSS)', unit: 'bytes', kind: 'capture.sample', field: 'data.rss', agg: 'avg' },
];

export async function mount(main, q, info) {
  // The daemon says whether its listener serves Prometheus's API (the
  // metrics engine is linked); asking /api/v1 blindly would log a 404.
  // ?source=res shows the res samples even where Prometheus's API is.
  const prom = !!(info && info.prometheus) && q.get('source') !== 'res';
  main.dataset.source = prom ? 'prometheus' : 'res';
  const range = el('select', { 'aria-label': 'time range' }, RANGES.map(([k]) => el('option', { value: k, selected: k === (q.get('range') || '1h') }, 'last ' + k)));
  const query = el('input', { class: 'code', 'data-filter': true, 'aria-label': prom ? 'PromQL query' : 'CEL filter on the samples', value: q.get('q') || '', placeholder: prom ? 'PromQL, e.g. rate(node_cpu_seconds_total[1m])' : "CEL filter on samples, e.g. container.id != ''" });
  const err = el('div', { class: 'err', 'aria-live': 'polite' });
  // The preset: the host and every container, or one container.
  const preset = el('select', { 'aria-label': 'preset', hidden: !prom }, el('option', { value: '' }, 'host and containers'));
  if (prom) {
    try {
      const names = await api('/api/v1/label/name/values', { 'match[]': 'container_last_seen' });
      for (const n of (names.data || []).sort()) preset.append(el('option', { value: n, selected: n === q.get('container') }, 'container ' + n));
    } catch { /* no containers: the host preset alone */ }
  }
  const form = el('form', { class: 'bar' }, el('div', { class: 'grow' }, query, err), preset, range, el('button', { class: 'primary' }, prom ? 'Query' : 'Apply'));
  const grid = el('div', { class: 'charts' });
  main.append(el('h1', {}, 'Metrics'),
    el('p', { class: 'muted' }, prom
      ? ['Prometheus API of the metrics engine (/api/v1/query_range). A query above adds a chart of it. ', el('a', { href: '#/metrics?source=res' }, 'Show the capture engine\'s res samples instead.')]
      : info && info.prometheus
        ? ['The capture engine\'s res samples (capture start res); the filter narrows them. ', el('a', { href: '#/metrics' }, 'Back to Prometheus.')]
        : 'The metrics engine is not serving /api/v1 on this listener: the charts show the capture engine\'s res samples (capture start res). The filter narrows the samples.'),
    form, grid);
  let charts = [];

  function win() {
    const since = q.get('since') ? +q.get('since') : null;
    if (since) return [since, +q.get('until')];
    const len = (RANGES.find(([k]) => k === range.value) || RANGES[1])[1];
    const now = Date.now();
    return [now - len, now];
  }

  async function marks(since, until) {
    try {
      const tl = await api('/ui/api/timeline', { since, until, buckets: 1, limit: 500, streams: 'audit' });
      return tl.events.map((ev) => ({ t: Date.parse(ev.time), label: `${ev.kind} ${ev.subject || ''}` }));
    } catch { return []; }
  }

  function zoom(a, z) {
    const p = params().q;
    p.set('since', Math.round(a)); p.set('until', Math.round(z));
    q = p;
    setParams(p);
    draw();
  }
  function reset() {
    const p = params().q;
    p.delete('since'); p.delete('until');
    q = p;
    setParams(p);
    draw();
  }

  async function draw() {
    const [since, until] = win();
    const m = await marks(since, until);
    const panels = [];
    if (query.value.trim() && prom) panels.push({ title: query.value.trim(), unit: '', q: query.value.trim(), user: true });
    panels.push(...(!prom ? RES : preset.value ? containerPanels(preset.value) : PROM));
    if (charts.length !== panels.length || charts.some((c, i) => c.title !== panels[i].title)) {
      charts = panels.map((p) => new Chart({ title: p.title, unit: p.unit, onZoom: zoom, onReset: reset }));
      grid.replaceChildren(...charts.map((c) => c.box));
    }
    showFilterError(query, err, null);
    if (!prom) {
      const bad = await checkFilter(query.value.trim());
      if (bad) { showFilterError(query, err, bad); return; }
    }
    await Promise.all(panels.map(async (p, i) => {
      let series = [];
      try {
        series = prom ? await promSeries(p.q, since, until) : await resSeries(p, since, until, query.value.trim());
      } catch (e) {
        if (p.user || !prom) { err.textContent = e.message; query.setAttribute('aria-invalid', 'true'); }
      }
      charts[i].set(series, m, since, until);
    }));
  }

  async function promSeries(expr, since, until) {
    const step = Math.max(1, Math.round((until - since) / 1000 / 240));
    const r = await fetch('/api/v1/query_range?' + new URLSearchParams({ query: expr, start: since / 1000, end: until / 1000, step }));
    const body = await r.json();
    if (body.status !== 'success') throw new Error(body.error || r.statusText);
    return body.data.result.slice(0, 8).map((s) => ({
      name: Object.entries(s.metric).filter(([k]) => k !== '__name__').map(([k, v]) => `${k}=${v}`).join(', ') || s.metric.__name__ || expr,
      points: s.values.map(([t, v]) => [t * 1000, +v]),
      gap: step * 1000 * 2.5,
    }));
  }

  async function resSeries(p, since, until, where) {
    const args = { kind: p.kind, field: p.field, agg: p.agg, since, until, top: 6 };
    if (where) args.where = where;
    const a = await api('/ui/api/series', args);
    return a.series.map((s) => ({ ...s, gap: a.step * 2.5 }));
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const p = params().q;
    if (query.value.trim()) p.set('q', query.value.trim()); else p.delete('q');
    if (preset.value) p.set('container', preset.value); else p.delete('container');
    p.set('range', range.value);
    if (!prom && info && info.prometheus) p.set('source', 'res');
    p.delete('since'); p.delete('until');
    q = p;
    setParams(p);
    draw();
  });
  range.addEventListener('change', () => form.requestSubmit());
  preset.addEventListener('change', () => form.requestSubmit());
  await draw();
  // A relative range follows the clock, as cAdvisor's live charts do; a
  // zoomed one stays put.
  const timer = setInterval(() => { if (!q.get('since') && !document.hidden) draw(); }, 10000);
  return () => clearInterval(timer);
}
