// The dashboard's shell: a hash router over the pages, and the helpers
// every page shares. Each page module exports mount(main, params, ctx) and
// returns a function that stops what it started (streams, listeners).
import * as timeline from './timeline.js';
import * as metrics from './metrics.js';
import * as infra from './infra.js';
import * as services from './services.js';
import * as deployments from './deployments.js';
import * as logs from './logs.js';
import * as historyPage from './history.js';

const pages = { '': timeline, metrics, infra, services, deployments, logs, history: historyPage };
let stop = null;
let info = null;

export async function api(path, params) {
  const url = params ? path + '?' + new URLSearchParams(params) : path;
  const res = await fetch(url, { headers: { Accept: 'application/json' } });
  let body = null;
  try { body = await res.json(); } catch { body = { error: `${res.status} ${res.statusText}` }; }
  if (!res.ok) {
    const err = new Error(body && body.error || res.statusText);
    Object.assign(err, body, { status: res.status });
    throw err;
  }
  return body;
}

// run answers one read-only statement (GET /ui/api/run).
export const run = (q) => api('/ui/api/run', { q });

export function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids.flat()) if (k != null) e.append(k.nodeType ? k : String(k));
  return e;
}

// Times: in the browser's zone, with UTC on hover (the title).
const fmtTime = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
const fmtDate = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
export function timeText(ms, withDate) { return (withDate ? fmtDate : fmtTime).format(new Date(ms)); }
export function utcText(ms) { return new Date(ms).toISOString(); }
export function timeEl(ms, withDate) {
  return el('time', { datetime: utcText(ms), title: 'UTC ' + utcText(ms) }, timeText(ms, withDate));
}
export const eventMs = (ev) => Date.parse(ev.time);

export function note(text) { return el('p', { class: 'note', role: 'status' }, text); }

// engineAbsent answers a note when the daemon has no engine name.
export function engineAbsent(name, what) {
  if (info && !info.engines.includes(name)) {
    return note(`The ${name} engine is not linked into this daemon, so there are no ${what} to show.`);
  }
  return null;
}

// checkFilter asks the daemon whether a CEL filter compiles: null when it
// does (or is empty), else the error with its line and column.
export async function checkFilter(where) {
  if (!where) return null;
  const c = await api('/ui/api/filter', { where });
  if (c.ok) return null;
  const err = new Error(c.error);
  Object.assign(err, { line: c.line, col: c.col, param: 'where' });
  return err;
}

// showFilterError writes a CEL compile error under its input, with a caret
// at the column it names.
export function showFilterError(input, out, err) {
  if (!err) {
    input.removeAttribute('aria-invalid');
    out.textContent = '';
    return;
  }
  input.setAttribute('aria-invalid', 'true');
  let text = err.message;
  if (err.col) {
    const line = input.value.split('\n')[(err.line || 1) - 1] || '';
    text = `${line}\n${' '.repeat(Math.max(0, err.col - 1))}^ ${err.message} (line ${err.line || 1}, column ${err.col})`;
  }
  out.textContent = text;
}

export function params() {
  const [path, query] = location.hash.replace(/^#\/?/, '').split('?');
  return { page: path || '', q: new URLSearchParams(query || '') };
}

export function setParams(q, replace = true) {
  const { page } = params();
  const url = '#/' + page + (q.toString() ? '?' + q : '');
  if (replace) window.history.replaceState(null, '', url); else location.hash = url;
}

async function route() {
  if (stop) { try { stop(); } catch (e) { console.warn(e); } stop = null; }
  const { page, q } = params();
  const mod = pages[page] || timeline;
  for (const a of document.querySelectorAll('nav a')) {
    a.toggleAttribute('aria-current', a.dataset.page === (page || 'timeline') || (page === 'history' && a.dataset.page === 'infra'));
    if (a.hasAttribute('aria-current')) a.setAttribute('aria-current', 'page');
  }
  const main = document.getElementById('main');
  main.replaceChildren();
  main.dataset.page = page || 'timeline';
  stop = await mod.mount(main, q, info);
}

// Keyboard: digits 1–6 switch pages, / focuses the page's filter.
document.addEventListener('keydown', (e) => {
  if (e.target.closest('input, select, textarea') || e.ctrlKey || e.metaKey || e.altKey) return;
  const links = [...document.querySelectorAll('nav a')];
  if (e.key >= '1' && e.key <= String(links.length)) { location.hash = links[+e.key - 1].getAttribute('href'); e.preventDefault(); }
  if (e.key === '/') { const f = document.querySelector('[data-filter]'); if (f) { f.focus(); e.preventDefault(); } }
});

async function start() {
  try {
    info = await api('/ui/api/info');
    document.getElementById('node').textContent = `${info.node} · ${info.engines.length} engines`;
  } catch (e) {
    document.getElementById('main').replaceChildren(note('The daemon did not answer: ' + e.message));
    return;
  }
  window.addEventListener('hashchange', route);
  route();
}
start();
