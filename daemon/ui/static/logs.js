// A live tail of the logs stream with a CEL filter.
import { api, checkFilter, el, showFilterError, params, setParams } from './app.js';
import { EventList } from './eventlist.js';

export async function mount(main, q, info) {
  main.append(el('h1', {}, 'Logs'));
  if (info && !info.streams.some((s) => s.name === 'logs')) {
    main.append(el('p', { class: 'note' }, 'The logs engine is not linked into this daemon: there is no logs stream.'));
    return;
  }
  const filter = el('input', { class: 'code', type: 'search', 'data-filter': true, 'aria-label': 'CEL filter', placeholder: "CEL filter, e.g. record.log.contains('error')", value: q.get('where') || '', spellcheck: 'false' });
  const ferr = el('div', { class: 'err', 'aria-live': 'polite' });
  const status = el('span', { class: 'muted', role: 'status' });
  const list = new EventList({ label: 'log records, newest first', logs: true });
  const form = el('form', { class: 'bar', role: 'search' }, el('div', { class: 'grow' }, filter, ferr), el('button', { class: 'primary' }, 'Apply'));
  main.append(form, el('div', { class: 'legend' }, status), list.box);
  let es = null, queue = [], frame = 0;
  async function load() {
    if (es) { es.close(); es = null; }
    const p = { streams: 'logs', since: '24h', buckets: 1, limit: 500 };
    if (filter.value.trim()) p.where = filter.value.trim();
    const bad = await checkFilter(p.where);
    if (bad) { showFilterError(filter, ferr, bad); return; }
    let tl;
    try { tl = await api('/ui/api/timeline', p); } catch (e) { showFilterError(filter, ferr, e); return; }
    showFilterError(filter, ferr, null);
    const qp = params().q;
    if (p.where) qp.set('where', p.where); else qp.delete('where');
    setParams(qp);
    list.set(tl.events);
    status.textContent = `${tl.streams[0].total} records in the last 24 h; following live`;
    const lp = new URLSearchParams({ streams: 'logs', from: `logs=${tl.streams[0].last}` });
    if (p.where) lp.set('where', p.where);
    queue = [];
    const mine = es = new EventSource('/ui/api/live?' + lp);
    es.addEventListener('ev', (m) => { if (es !== mine) return; queue.push(JSON.parse(m.data)); if (!frame) frame = requestAnimationFrame(() => { frame = 0; const evs = queue.reverse(); queue = []; list.prepend(evs); }); });
  }
  form.addEventListener('submit', (e) => { e.preventDefault(); load(); });
  await load();
  return () => { if (es) es.close(); if (frame) cancelAnimationFrame(frame); };
}
