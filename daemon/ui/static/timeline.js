// The home page: every stream on one time axis (changes as marks,
// observations as density bands), a CEL filter, a time range, live
// updates over Server-Sent Events, and an event's detail on click.
import { api, checkFilter, el, params, setParams, showFilterError, timeText, utcText, eventMs } from './app.js';
import { EventList } from './eventlist.js';
import { renderDetail } from './detail.js';

const RANGES = [['15m', 15 * 60e3], ['1h', 3600e3], ['6h', 6 * 3600e3], ['24h', 24 * 3600e3], ['7d', 7 * 86400e3]];
const SVGNS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

export async function mount(main, q) {
  const state = {
    range: q.get('range') || '1h',
    since: q.get('since') ? +q.get('since') : null,
    until: q.get('until') ? +q.get('until') : null,
    where: q.get('where') || '',
    data: null,
  };
  const filter = el('input', { class: 'code', type: 'search', id: 'filter', 'data-filter': true, placeholder: "CEL filter, e.g. kind.startsWith('kv.') && actor.uid != 0", 'aria-label': 'CEL filter', 'aria-describedby': 'filter-error', value: state.where, spellcheck: 'false', autocomplete: 'off' });
  const ferr = el('div', { class: 'err', id: 'filter-error', 'aria-live': 'polite' });
  const range = el('select', { 'aria-label': 'time range', id: 'range' },
    RANGES.map(([k]) => el('option', { value: k, selected: k === state.range && !state.since }, 'last ' + k)),
    el('option', { value: 'custom', selected: !!state.since }, 'custom…'));
  const from = el('input', { type: 'datetime-local', 'aria-label': 'from', step: 1, hidden: !state.since });
  const to = el('input', { type: 'datetime-local', 'aria-label': 'to', step: 1, hidden: !state.since });
  const live = el('input', { type: 'checkbox', id: 'live', checked: !state.until });
  const apply = el('button', { class: 'primary', type: 'submit' }, 'Apply');
  const form = el('form', { class: 'bar', role: 'search' },
    el('div', { class: 'grow' }, filter, ferr), range, from, to,
    el('label', {}, live, ' live'), apply);
  const chart = svg('svg', { class: 'timeline', role: 'img', 'aria-label': 'events over time', preserveAspectRatio: 'none' });
  const legend = el('div', { class: 'legend', 'aria-live': 'off' });
  const status = el('span', { class: 'muted', id: 'tl-status', role: 'status' });
  const detail = el('section', { class: 'detail', 'aria-label': 'event detail', tabindex: '-1' }, el('p', { class: 'muted' }, 'Select an event (click, or ↑/↓ in the list) to see its detail.'));
  const list = new EventList({
    label: 'events, newest first',
    onSelect: (ev, focus) => {
      const p = params().q;
      p.set('ev', `${ev.stream}:${ev.seq}`);
      setParams(p);
      renderDetail(detail, ev.stream, ev.seq).then((drawn) => { if (drawn && focus) detail.focus(); });
    },
  });
  main.append(el('h1', {}, 'Timeline'), form,
    el('div', { class: 'chart-wrap' }, chart, legend),
    el('div', { class: 'split' }, el('div', {}, el('div', { class: 'legend' }, status, el('span', {}, el('kbd', {}, '/'), ' filter · ', el('kbd', {}, '↑'), el('kbd', {}, '↓'), ' move · ', el('kbd', {}, 'Enter'), ' detail · ', el('kbd', {}, 'Esc'), ' back')), list.box), detail));
  detail.addEventListener('keydown', (e) => { if (e.key === 'Escape') list.box.focus(); });

  let es = null;
  let queue = [];
  let frame = 0;
  let lastChart = 0;
  let received = 0; // live events applied, for whoever measures the page

  function window_() {
    const now = Date.now();
    if (range.value === 'custom' && from.value && to.value) return [Date.parse(from.value), Date.parse(to.value)];
    const len = (RANGES.find(([k]) => k === range.value) || RANGES[1])[1];
    return [now - len, now];
  }

  async function load() {
    const [since, until] = window_();
    const p = { since, until, buckets: 120, limit: 1000 };
    if (filter.value.trim()) p.where = filter.value.trim();
    const bad = await checkFilter(p.where);
    if (bad) { showFilterError(filter, ferr, bad); return; }
    status.textContent = 'loading…';
    let tl;
    try {
      tl = await api('/ui/api/timeline', p);
    } catch (e) {
      status.textContent = '';
      showFilterError(filter, ferr, e);
      return;
    }
    showFilterError(filter, ferr, null);
    // What the previous stream delivered and the page has not applied
    // belongs to the previous view: the new counts hold what matters.
    if (es) { es.close(); es = null; }
    queue = [];
    state.data = tl;
    list.set(tl.events);
    drawChart();
    status.textContent = `${tl.streams.reduce((n, s) => n + s.total, 0).toLocaleString()} events in range` + (tl.more ? `, newest ${tl.events.length} listed` : '');
    const qp = new URLSearchParams();
    if (range.value !== '1h') qp.set('range', range.value);
    if (range.value === 'custom') { qp.set('since', since); qp.set('until', until); }
    if (p.where) qp.set('where', p.where);
    const sel = params().q.get('ev');
    if (sel) { qp.set('ev', sel); const [s, n] = sel.split(':'); renderDetail(detail, s, n); }
    setParams(qp);
    subscribe();
  }

  function subscribe() {
    if (es) { es.close(); es = null; }
    if (!live.checked || range.value === 'custom') return;
    const p = new URLSearchParams();
    if (filter.value.trim()) p.set('where', filter.value.trim());
    // Resume right after what the timeline counted: no gap, no repeat.
    if (state.data) p.set('from', state.data.streams.map((s) => `${s.name}=${s.last}`).join(';'));
    const mine = es = new EventSource('/ui/api/live?' + p);
    es.addEventListener('ready', () => { chart.dataset.live = 'ready'; });
    es.addEventListener('ev', (m) => {
      if (es !== mine) return; // a message of a stream already replaced
      queue.push(JSON.parse(m.data));
      if (!frame) frame = requestAnimationFrame(flush);
    });
  }

  // flush applies the events that arrived since the last frame: counts,
  // then the list, then (at most four times a second) the chart.
  function flush() {
    frame = 0;
    const tl = state.data;
    if (!tl) return;
    const evs = queue;
    queue = [];
    const now = Date.now();
    while (now > tl.until) shift(tl);
    for (const ev of evs) {
      const s = tl.streams.find((x) => x.name === ev.stream);
      if (!s) continue;
      const b = Math.min(tl.buckets - 1, Math.max(0, Math.floor((eventMs(ev) - tl.since) / tl.step)));
      s.counts[b]++;
      s.total++;
      if (s.scanned) (s.kinds[ev.kind] ||= new Array(tl.buckets).fill(0))[b]++;
    }
    received += evs.length;
    chart.dataset.received = String(received);
    evs.reverse();
    tl.events = evs.concat(tl.events);
    if (tl.events.length > 10000) tl.events.length = 10000;
    list.prepend(evs);
    if (performance.now() - lastChart > 250) drawChart();
    else if (!frame) frame = requestAnimationFrame(flush);
  }

  function shift(tl) {
    for (const s of tl.streams) {
      s.counts.shift(); s.counts.push(0);
      if (s.kinds) for (const k of Object.values(s.kinds)) { k.shift(); k.push(0); }
    }
    tl.since += tl.step;
    tl.until += tl.step;
  }

  function drawChart() {
    lastChart = performance.now();
    const tl = state.data;
    if (!tl) return;
    // Drawn at the element's own width, so text keeps its size on a phone.
    const W = Math.max(300, Math.round(chart.clientWidth || 1000)), H = 190, AX = 18, LEFT = W < 600 ? 64 : 92;
    const ticks = W < 600 ? 3 : 6;
    chart.setAttribute('viewBox', `0 0 ${W} ${H}`);
    // Lanes: one per engine among the changes (top 6), one per
    // observation stream.
    const engines = new Map();
    for (const s of tl.streams) if (s.scanned && s.class === 'audit-like') {
      for (const [kind, counts] of Object.entries(s.kinds || {})) {
        const eng = kind.split('.')[0];
        const agg = engines.get(eng) || new Array(tl.buckets).fill(0);
        counts.forEach((c, i) => { agg[i] += c; });
        engines.set(eng, agg);
      }
    }
    const changeLanes = [...engines.entries()].sort((a, b) => b[1].reduce((x, y) => x + y, 0) - a[1].reduce((x, y) => x + y, 0)).slice(0, 6);
    const obs = tl.streams.filter((s) => s.class !== 'audit-like' || !s.scanned);
    const lanes = [...changeLanes.map(([name, counts]) => ({ name, counts, mark: true })), ...obs.map((s) => ({ name: s.name, counts: s.counts, mark: false }))];
    const laneH = (H - AX) / Math.max(1, lanes.length);
    const bw = (W - LEFT) / tl.buckets;
    const kids = [];
    lanes.forEach((lane, li) => {
      const y = li * laneH;
      kids.push(svg('line', { class: 'axis', x1: 0, x2: W, y1: y + laneH, y2: y + laneH }));
      const t = svg('text', { x: 4, y: y + laneH / 2 + 4 });
      t.textContent = lane.name;
      kids.push(t);
      const max = Math.max(1, ...lane.counts);
      lane.counts.forEach((c, i) => {
        if (!c) return;
        const x = LEFT + i * bw;
        if (lane.mark) {
          const r = Math.min(laneH / 2 - 1, 2 + 2.2 * Math.log2(1 + c));
          const m = svg('rect', { class: 'mark', x: x + bw / 2 - 1.5, y: y + laneH / 2 - r, width: 3, height: 2 * r, rx: 1.5, 'data-count': c });
          const tt = svg('title', {}); tt.textContent = `${lane.name}: ${c} change${c > 1 ? 's' : ''} from ${timeText(tl.since + i * tl.step, true)}`;
          m.append(tt);
          kids.push(m);
        } else {
          const b = svg('rect', { class: 'band', x, y: y + 2, width: Math.max(bw, 1), height: laneH - 4, opacity: (0.12 + 0.88 * c / max).toFixed(3), 'data-count': c });
          const tt = svg('title', {}); tt.textContent = `${lane.name}: ${c} events from ${timeText(tl.since + i * tl.step, true)}`;
          b.append(tt);
          kids.push(b);
        }
      });
    });
    for (let i = 0; i <= ticks; i++) {
      const ms = tl.since + (tl.until - tl.since) * i / ticks;
      const t = svg('text', { x: i === ticks ? W - 4 : LEFT + (W - LEFT) * i / ticks, y: H - 4, 'text-anchor': i === 0 ? 'start' : i === ticks ? 'end' : 'middle' });
      t.textContent = timeText(ms, tl.until - tl.since > 86400e3);
      const tt = svg('title', {}); tt.textContent = 'UTC ' + utcText(ms);
      t.append(tt);
      kids.push(t);
    }
    chart.replaceChildren(...kids);
    if (!performance.getEntriesByName('cairn-timeline-drawn').length) performance.mark('cairn-timeline-drawn');
    chart.dataset.changes = String(tl.streams.filter((s) => s.class === 'audit-like').reduce((n, s) => n + s.total, 0));
    legend.textContent = `${timeText(tl.since, true)} – ${timeText(tl.until, true)} · ${Math.round(tl.step / 1000)} s per bucket · marks: changes by engine · bands: observations by density`;
    legend.title = `UTC ${utcText(tl.since)} – ${utcText(tl.until)}`;
  }

  // Brush: drag across the chart to look at that span (a custom range).
  let brush = null;
  const LEFTOF = () => (chart.clientWidth < 600 ? 64 : 92);
  const xToT = (x) => {
    const tl = state.data, L = LEFTOF(), W = chart.clientWidth;
    return tl.since + (x - L) / (W - L) * (tl.until - tl.since);
  };
  chart.addEventListener('pointerdown', (e) => {
    if (!state.data) return;
    chart.setPointerCapture(e.pointerId);
    const x = e.clientX - chart.getBoundingClientRect().left;
    brush = { x0: x, rect: svg('rect', { class: 'brush', x, y: 0, width: 0, height: 172, fill: 'rgba(127,127,127,0.25)' }) };
    chart.append(brush.rect);
  });
  chart.addEventListener('pointermove', (e) => {
    if (!brush) return;
    const x = e.clientX - chart.getBoundingClientRect().left;
    brush.x1 = x;
    brush.rect.setAttribute('x', Math.min(brush.x0, x));
    brush.rect.setAttribute('width', Math.abs(x - brush.x0));
  });
  chart.addEventListener('pointerup', () => {
    const b = brush;
    brush = null;
    if (!b) return;
    b.rect.remove();
    if (b.x1 == null || Math.abs(b.x1 - b.x0) < 6) return;
    const [t0, t1] = [xToT(Math.min(b.x0, b.x1)), xToT(Math.max(b.x0, b.x1))];
    const local = (ms) => new Date(ms - new Date().getTimezoneOffset() * 60e3).toISOString().slice(0, 19);
    range.value = 'custom';
    from.hidden = to.hidden = false;
    from.value = local(Math.floor(t0 / 1000) * 1000);
    to.value = local(Math.ceil(t1 / 1000) * 1000);
    live.checked = false;
    load();
  });

  let lastWidth = 0;
  const ro = new ResizeObserver(() => { if (chart.clientWidth !== lastWidth) { lastWidth = chart.clientWidth; drawChart(); } });
  ro.observe(chart);
  range.addEventListener('change', () => {
    const custom = range.value === 'custom';
    from.hidden = to.hidden = !custom;
    if (custom && !from.value) {
      const [s, u] = window_();
      const local = (ms) => new Date(ms - new Date().getTimezoneOffset() * 60e3).toISOString().slice(0, 19);
      from.value = local(s); to.value = local(u);
    }
    if (!custom) load();
  });
  live.addEventListener('change', subscribe);
  form.addEventListener('submit', (e) => { e.preventDefault(); load(); });
  if (state.since) {
    const local = (ms) => new Date(ms - new Date().getTimezoneOffset() * 60e3).toISOString().slice(0, 19);
    from.value = local(state.since); to.value = local(state.until);
  }
  await load();
  return () => { if (es) es.close(); if (frame) cancelAnimationFrame(frame); ro.disconnect(); };
}
