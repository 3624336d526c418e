// One event explained: who, when, what, before → after, its chain link.
import { api, el, timeEl, eventMs, note } from './app.js';

function actorText(a) {
  if (!a) return '';
  const parts = [];
  if (a.user) parts.push(a.user);
  parts.push('uid ' + a.uid);
  if (a.pid) parts.push('pid ' + a.pid);
  if (a.comm) parts.push(a.comm);
  if (a.via) parts.push('via ' + a.via);
  if (a.addr) parts.push(a.addr);
  if (a.principal) parts.push(a.principal);
  return parts.join(' · ');
}

function pretty(v, isJSON) {
  if (v == null) return null;
  if (isJSON) { try { return JSON.stringify(JSON.parse(v), null, 2); } catch { /* as written */ } }
  return v;
}

function side(cls, label, text) {
  return el('div', { class: cls }, el('div', { class: 'muted' }, label),
    text == null ? el('pre', { class: 'none' }, '(none)') : el('pre', {}, text));
}

// pending holds, per detail box, the last event asked for: a reader moving
// through the list asks for several, and the answers may come back in any
// order; only the last one asked is drawn.
const pending = new WeakMap();

// renderDetail draws one event's detail into box. It answers false when a
// later call for the same box superseded it (nothing drawn), else true.
export async function renderDetail(box, stream, seq) {
  const mine = {};
  pending.set(box, mine);
  box.replaceChildren(el('p', { class: 'muted' }, `Loading ${stream} seq ${seq}…`));
  let d;
  try {
    d = await api('/ui/api/event', { stream, seq });
  } catch (e) {
    if (pending.get(box) !== mine) return false;
    box.replaceChildren(note(e.message));
    return true;
  }
  if (pending.get(box) !== mine) return false;
  const ev = d.event;
  const ms = eventMs(ev);
  const changes = d.changes.length ? d.changes.map((c) => el('div', { class: 'change', 'data-subject': c.subject },
    el('div', { style: 'grid-column: 1 / -1', class: 'code' }, c.subject),
    side('before', 'before', pretty(c.before, c.json)),
    el('span', { class: 'arrow', 'aria-label': 'becomes' }, '→'),
    side('after', 'after', pretty(c.after, c.json)))) : [el('p', { class: 'muted' }, 'This event changes no subject\'s value; its data says what happened.')];
  const chainBadge = (ok, label) => el('span', { class: 'badge ' + (ok === null ? 'warn' : ok ? 'ok' : 'bad') }, label + (ok === null ? ' ?' : ok ? ' ✓' : ' ✗'));
  const verifyOut = el('span', { class: 'verify-result', role: 'status' });
  const verify = el('button', { type: 'button', onclick: async () => {
    verifyOut.textContent = 'verifying…';
    try {
      const r = await api('/ui/api/verify', { stream });
      verifyOut.replaceChildren(r.ok
        ? el('span', { class: 'badge ok' }, `chain intact: seqs ${r.first}–${r.last}, ${r.events} events` + (r.signed_seq ? `, signed to ${r.signed_seq}` : ''))
        : el('span', { class: 'badge bad' }, `broken at seq ${r.bad_seq}: ${r.problem}`));
    } catch (e) { verifyOut.textContent = e.message; }
  } }, 'Verify chain');
  box.replaceChildren(
    el('h2', {}, el('span', { class: 'code' }, ev.kind), ' ', el('span', { class: 'muted' }, d.summary || '')),
    el('dl', { class: 'kv' },
      el('dt', {}, 'time'), el('dd', {}, timeEl(ms, true), ' ', el('span', { class: 'muted' }, '(UTC ' + ev.time + ')')),
      el('dt', {}, 'actor'), el('dd', {}, actorText(ev.actor)),
      el('dt', {}, 'seq'), el('dd', {}, `${ev.stream} ${ev.seq}`),
      el('dt', {}, 'subject'), el('dd', { class: 'code' }, ev.subject || '—'),
      el('dt', {}, 'node'), el('dd', {}, ev.node || '')),
    el('h2', {}, 'Before → after'), ...changes,
    el('h2', {}, 'Data'), el('pre', {}, JSON.stringify(ev.data || {}, null, 2)),
    el('h2', {}, 'Chain'),
    el('dl', { class: 'kv' },
      el('dt', {}, 'hash'), el('dd', { class: 'code' }, d.chain.hash),
      el('dt', {}, 'prev'), el('dd', { class: 'code' }, d.chain.prev)),
    el('p', {}, chainBadge(d.chain.hash_ok, 'hash'), ' ', chainBadge(d.chain.prev_ok, 'link to prev'), ' ', verify, ' ', verifyOut),
  );
  return true;
}
