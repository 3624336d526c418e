// One subject's changes, oldest first, before → after: audit who.
import { el, run, note, timeEl } from './app.js';

export async function mount(main, q) {
  const subject = q.get('subject') || '';
  main.append(el('h1', {}, 'History of ', el('span', { class: 'code' }, subject || '…')));
  if (!subject) { main.append(note('No subject given: open a resource from the infrastructure graph, or add ?subject=KEY.')); return; }
  let ans;
  try {
    ans = await run(`audit who ${JSON.stringify(subject)}`);
  } catch (e) { main.append(note(e.message)); return; }
  if (!ans.rows.length) { main.append(note('Nothing has changed this subject yet.')); return; }
  const rows = ans.rows.map((r) => el('tr', {},
    el('td', {}, timeEl(Date.parse(r.time), true)),
    el('td', {}, el('a', { href: `#/?ev=${r.stream || 'audit'}:${r.seq}` }, String(r.seq))),
    el('td', { class: 'code' }, r.kind),
    el('td', {}, r.actor),
    el('td', {}, el('pre', {}, r.before ?? '(none)')),
    el('td', {}, el('pre', {}, r.after ?? '(none)'))));
  main.append(el('div', { class: 'scroll-x' }, el('table', { class: 'grid', id: 'history' },
    el('thead', {}, el('tr', {}, ['time', 'seq', 'kind', 'actor', 'before', 'after'].map((h) => el('th', {}, h)))),
    el('tbody', {}, rows))));
}
