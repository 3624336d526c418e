// A list of events drawn as a fixed window of rows over an array, newest
// first: live events replace the rows' text in place, and the rows the
// reader is looking at stay put (no layout shift), however fast they come.
import { el, timeText, utcText, eventMs } from './app.js';

export const ROW = 28;

export class EventList {
  constructor({ label, onSelect, logs = false }) {
    this.events = [];
    this.sel = -1;
    this.onSelect = onSelect;
    this.logs = logs;
    this.rows = el('div', { class: 'rows' });
    this.box = el('div', { class: 'list', role: 'listbox', tabindex: '0', 'aria-label': label }, this.rows);
    this.pool = [];
    this.box.addEventListener('scroll', () => this.draw());
    this.box.addEventListener('click', (e) => {
      const r = e.target.closest('.row');
      if (r) this.select(+r.dataset.i, true);
    });
    this.box.addEventListener('keydown', (e) => this.key(e));
    new ResizeObserver(() => this.draw()).observe(this.box);
  }

  key(e) {
    const n = this.events.length;
    if (!n) return;
    const page = Math.max(1, Math.floor(this.box.clientHeight / ROW) - 1);
    const moves = { ArrowDown: 1, j: 1, ArrowUp: -1, k: -1, PageDown: page, PageUp: -page };
    if (e.key in moves) this.select(Math.min(n - 1, Math.max(0, (this.sel < 0 ? -1 : this.sel) + moves[e.key])), true);
    else if (e.key === 'Home') this.select(0, true);
    else if (e.key === 'End') this.select(n - 1, true);
    else if (e.key === 'Enter' && this.sel >= 0) this.onSelect && this.onSelect(this.events[this.sel], true);
    else return;
    e.preventDefault();
  }

  select(i, user) {
    this.sel = i;
    const top = i * ROW;
    if (top < this.box.scrollTop) this.box.scrollTop = top;
    else if (top + ROW > this.box.scrollTop + this.box.clientHeight) this.box.scrollTop = top + ROW - this.box.clientHeight;
    this.draw();
    if (user && this.onSelect) this.onSelect(this.events[i], false);
  }

  set(events) {
    this.events = events;
    this.sel = -1;
    this.box.scrollTop = 0;
    this.draw();
  }

  // prepend adds newer events on top. At the top of the list with nothing
  // selected, they show; else the rows in view stay where they are, so a
  // selected event is not pushed out of sight by a burst of new ones.
  prepend(evs, cap = 10000) {
    if (!evs.length) return;
    this.events = evs.concat(this.events);
    if (this.events.length > cap) this.events.length = cap;
    if (this.sel >= 0) this.sel = Math.min(this.sel + evs.length, this.events.length - 1);
    if (this.box.scrollTop > 0 || this.sel >= 0) {
      // Tall enough first, or the new scroll offset would be cut short.
      this.rows.style.height = this.events.length * ROW + 'px';
      this.box.scrollTop += evs.length * ROW;
    }
    this.draw();
  }

  draw() {
    this.rows.style.height = this.events.length * ROW + 'px';
    const first = Math.max(0, Math.floor(this.box.scrollTop / ROW) - 2);
    const count = Math.ceil((this.box.clientHeight || 420) / ROW) + 4;
    while (this.pool.length < count) {
      const r = el('div', { class: 'row' + (this.logs ? ' logs' : ''), role: 'option' },
        el('time'), el('span', { class: 'stream muted' }), el('span', { class: 'kind' }), el('span', { class: 'subj' }));
      if (this.logs) r.children[1].remove();
      this.pool.push(r);
      this.rows.append(r);
    }
    for (let k = 0; k < this.pool.length; k++) {
      const r = this.pool[k], i = first + k, ev = this.events[i];
      if (!ev || k >= count) { r.hidden = true; continue; }
      r.hidden = false;
      r.style.transform = `translateY(${i * ROW}px)`;
      r.dataset.i = i;
      r.dataset.kind = ev.kind;
      r.id = `ev-${ev.stream}-${ev.seq}`;
      r.setAttribute('aria-selected', i === this.sel ? 'true' : 'false');
      const ms = eventMs(ev);
      const t = r.children[0];
      t.textContent = timeText(ms, false);
      t.title = 'UTC ' + utcText(ms);
      t.setAttribute('datetime', utcText(ms));
      if (this.logs) {
        r.children[1].textContent = ev.subject || ev.kind;
        r.children[2].textContent = logText(ev);
      } else {
        r.children[1].textContent = ev.stream;
        r.children[2].textContent = ev.kind;
        r.children[3].textContent = ev.subject || '';
      }
    }
    if (this.sel >= 0) this.box.setAttribute('aria-activedescendant', `ev-${this.events[this.sel].stream}-${this.events[this.sel].seq}`);
  }
}

// logText is a log record's message: the logs stream keeps the record as
// it came (data.record), a container's output as data.line.
export function logText(ev) {
  const d = ev.data || {};
  const r = d.record && typeof d.record === 'object' ? d.record : d;
  for (const k of ['log', 'message', 'msg', 'MESSAGE', 'line']) if (typeof r[k] === 'string') return r[k];
  if (typeof d.record === 'string') return d.record;
  return JSON.stringify(d.record ?? d);
}
