// The infra engine's resource graph, laid out by the server as SVG, each
// resource filled by its state and linked to its history.
import { el, note, engineAbsent } from './app.js';

const STATES = [['in_sync', '#c8e6c9', 'in sync'], ['drifted', '#ffe0b2', 'drifted'], ['failed', '#ffcdd2', 'failed'], ['pending', '#e0e0e0', 'pending']];

export async function mount(main, q) {
  main.append(el('h1', {}, 'Infrastructure'));
  const absent = engineAbsent('infra', 'resources');
  if (absent) { main.append(absent); return; }
  const ws = el('input', { 'aria-label': 'workspace', placeholder: 'workspace (default: the only one)', value: q.get('workspace') || '' });
  const graph = el('div', { class: 'graph', id: 'infra-graph', 'aria-live': 'polite' });
  const form = el('form', { class: 'bar' }, ws, el('button', { class: 'primary' }, 'Show'));
  main.append(form,
    el('div', { class: 'legend' }, STATES.map(([, c, label]) => el('span', {}, el('span', { class: 'swatch', style: `background:${c}` }), label)),
      el('span', {}, 'click a resource for its history')),
    graph);
  async function load() {
    const p = new URLSearchParams();
    if (ws.value.trim()) p.set('workspace', ws.value.trim());
    const res = await fetch('/ui/api/infra/graph.svg?' + p);
    if (!res.ok) {
      let msg = res.statusText;
      try { msg = (await res.json()).error; } catch { /* keep the status */ }
      graph.replaceChildren(note(msg));
      return;
    }
    const doc = new DOMParser().parseFromString(await res.text(), 'image/svg+xml');
    const svgEl = doc.documentElement;
    svgEl.setAttribute('role', 'img');
    svgEl.setAttribute('aria-label', 'resource graph');
    graph.replaceChildren(document.importNode(svgEl, true));
  }
  form.addEventListener('submit', (e) => { e.preventDefault(); load(); });
  await load();
}
