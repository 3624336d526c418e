// A time-series chart on a canvas: lines with points, axes, hover with the
// nearest values, brush to zoom (drag), double-click to reset, and events
// drawn as vertical marks (Datadog's overlay).
import { el, timeText, utcText } from './app.js';

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

function niceStep(span, n) {
  const raw = span / Math.max(1, n);
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 2.5, 5, 10]) if (raw <= m * p) return m * p;
  return 10 * p;
}

export function formatValue(v, unit) {
  if (unit === 'bytes') {
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return (i === 0 ? String(+v.toFixed(Math.abs(v) < 10 ? 2 : 0)) : Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(1)) + ' ' + u[i];
  }
  if (Math.abs(v) >= 1e6) return (v / 1e6).toFixed(1) + 'M';
  if (Math.abs(v) >= 1e3) return (v / 1e3).toFixed(1) + 'k';
  return (Math.abs(v) < 10 ? +v.toFixed(3) : +v.toFixed(1)) + (unit && unit !== 'bytes' ? ' ' + unit : '');
}

export class Chart {
  constructor({ title, unit, onZoom, onReset }) {
    this.title = title;
    this.unit = unit;
    this.onZoom = onZoom;
    this.onReset = onReset;
    this.series = [];
    this.marks = [];
    this.canvas = el('canvas', { class: 'chart', role: 'img', 'aria-label': title + ' chart', tabindex: '0' });
    this.tip = el('div', { class: 'tip', role: 'tooltip' });
    this.legend = el('div', { class: 'legend' });
    this.box = el('div', { class: 'chart-wrap' }, el('div', { class: 'panel-title' }, el('span', {}, title), el('span', { class: 'muted' }, 'drag to zoom · double-click to reset')), this.canvas, this.tip, this.legend);
    this.hover = null;
    this.brush = null;
    const c = this.canvas;
    c.addEventListener('pointermove', (e) => this.move(e));
    c.addEventListener('pointerleave', () => { this.hover = null; this.tip.style.visibility = 'hidden'; this.draw(); });
    c.addEventListener('pointerdown', (e) => { c.setPointerCapture(e.pointerId); this.brush = { x0: this.px(e), x1: this.px(e) }; });
    c.addEventListener('pointerup', () => {
      const b = this.brush; this.brush = null;
      if (b && Math.abs(b.x1 - b.x0) > 6 && this.onZoom) {
        const [a, z] = [Math.min(b.x0, b.x1), Math.max(b.x0, b.x1)];
        this.onZoom(Math.round(this.xToT(a)), Math.round(this.xToT(z)));
      }
      this.draw();
    });
    c.addEventListener('dblclick', () => this.onReset && this.onReset());
    c.addEventListener('keydown', (e) => {
      const span = this.x1 - this.x0;
      if (e.key === '-' && this.onZoom) this.onZoom(this.x0 - span / 2, this.x1 + span / 2);
      else if ((e.key === '+' || e.key === '=') && this.onZoom) this.onZoom(this.x0 + span / 4, this.x1 - span / 4);
      else if (e.key === 'Escape' && this.onReset) this.onReset();
    });
    new ResizeObserver(() => this.draw()).observe(c);
  }

  px(e) { return e.clientX - this.canvas.getBoundingClientRect().left; }

  set(series, marks, x0, x1) {
    this.series = series;
    this.marks = marks || [];
    this.x0 = x0; this.x1 = x1;
    let lo = Infinity, hi = -Infinity, n = 0;
    for (const s of series) for (const [, v] of s.points) { lo = Math.min(lo, v); hi = Math.max(hi, v); n++; }
    if (!n) { lo = 0; hi = 1; }
    lo = Math.min(0, lo);
    if (hi === lo) hi = lo + 1;
    const step = niceStep(hi - lo, 4);
    this.y0 = Math.floor(lo / step) * step;
    this.y1 = Math.ceil(hi / step) * step;
    this.ystep = step;
    this.canvas.dataset.points = String(n);
    this.canvas.dataset.range = `${Math.round(x0)}-${Math.round(x1)}`;
    this.canvas.dataset.series = String(series.length);
    this.canvas.dataset.marks = String(this.marks.length);
    this.legend.replaceChildren(...series.map((s, i) => el('span', {}, el('span', { class: 'swatch', style: `background:${PALETTE[i % PALETTE.length]}` }), s.name)),
      n ? '' : el('span', {}, 'no samples in this range'));
    this.draw();
  }

  get plot() {
    const w = this.canvas.clientWidth, h = this.canvas.clientHeight;
    return { l: 64, r: w - 10, t: 10, b: h - 22, w, h };
  }
  tToX(t) { const p = this.plot; return p.l + (t - this.x0) / (this.x1 - this.x0) * (p.r - p.l); }
  xToT(x) { const p = this.plot; return this.x0 + (x - p.l) / (p.r - p.l) * (this.x1 - this.x0); }
  vToY(v) { const p = this.plot; return p.b - (v - this.y0) / (this.y1 - this.y0) * (p.b - p.t); }

  move(e) {
    const x = this.px(e);
    if (this.brush) { this.brush.x1 = x; this.draw(); return; }
    this.hover = x;
    this.draw();
  }

  draw() {
    const c = this.canvas, dpr = window.devicePixelRatio || 1;
    const p = this.plot;
    if (!p.w || this.x0 == null) return;
    if (c.width !== Math.round(p.w * dpr) || c.height !== Math.round(p.h * dpr)) { c.width = Math.round(p.w * dpr); c.height = Math.round(p.h * dpr); }
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, p.w, p.h);
    const css = getComputedStyle(document.documentElement);
    const muted = css.getPropertyValue('--muted').trim(), line = css.getPropertyValue('--line').trim(), mark = css.getPropertyValue('--mark').trim();
    g.font = '11px system-ui, sans-serif';
    g.fillStyle = muted; g.strokeStyle = line; g.lineWidth = 1;
    for (let v = this.y0; v <= this.y1 + this.ystep / 2; v += this.ystep) {
      const y = Math.round(this.vToY(v)) + 0.5;
      g.beginPath(); g.moveTo(p.l, y); g.lineTo(p.r, y); g.stroke();
      g.textAlign = 'right'; g.fillText(formatValue(v, this.unit), p.l - 6, y + 4);
    }
    const xs = niceStep(this.x1 - this.x0, Math.max(2, Math.floor((p.r - p.l) / 110)));
    g.textAlign = 'center';
    for (let t = Math.ceil(this.x0 / xs) * xs; t <= this.x1; t += xs) {
      g.fillText(timeText(t, this.x1 - this.x0 > 86400e3), this.tToX(t), p.h - 6);
    }
    g.save(); g.beginPath(); g.rect(p.l, p.t - 2, p.r - p.l, p.b - p.t + 4); g.clip();
    // Events as vertical marks.
    g.strokeStyle = mark; g.setLineDash([3, 3]);
    for (const m of this.marks) {
      const x = Math.round(this.tToX(m.t)) + 0.5;
      g.beginPath(); g.moveTo(x, p.t); g.lineTo(x, p.b); g.stroke();
    }
    g.setLineDash([]);
    this.series.forEach((s, i) => {
      g.strokeStyle = g.fillStyle = PALETTE[i % PALETTE.length];
      g.lineWidth = 1.5;
      g.beginPath();
      let prev = null;
      for (const [t, v] of s.points) {
        const x = this.tToX(t), y = this.vToY(v);
        if (prev == null || t - prev > (s.gap || Infinity)) g.moveTo(x, y); else g.lineTo(x, y);
        prev = t;
      }
      g.stroke();
      if (s.points.length < 120) for (const [t, v] of s.points) { g.beginPath(); g.arc(this.tToX(t), this.vToY(v), 2, 0, 2 * Math.PI); g.fill(); }
    });
    g.restore();
    if (this.brush) {
      g.fillStyle = 'rgba(127,127,127,0.25)';
      g.fillRect(Math.min(this.brush.x0, this.brush.x1), p.t, Math.abs(this.brush.x1 - this.brush.x0), p.b - p.t);
    }
    if (this.hover != null && this.hover >= p.l && this.hover <= p.r) {
      const t = this.xToT(this.hover);
      g.strokeStyle = muted; g.beginPath(); g.moveTo(this.hover + 0.5, p.t); g.lineTo(this.hover + 0.5, p.b); g.stroke();
      const lines = [el('div', { title: 'UTC ' + utcText(t) }, timeText(t, true))];
      this.series.forEach((s, i) => {
        let best = null;
        for (const pt of s.points) if (!best || Math.abs(pt[0] - t) < Math.abs(best[0] - t)) best = pt;
        if (!best) return;
        g.fillStyle = PALETTE[i % PALETTE.length];
        g.beginPath(); g.arc(this.tToX(best[0]), this.vToY(best[1]), 3.5, 0, 2 * Math.PI); g.fill();
        lines.push(el('div', {}, el('span', { class: 'swatch', style: `background:${PALETTE[i % PALETTE.length]}` }), `${s.name}: ${formatValue(best[1], this.unit)}`));
      });
      const near = this.marks.filter((m) => Math.abs(this.tToX(m.t) - this.hover) < 4);
      for (const m of near.slice(0, 3)) lines.push(el('div', {}, '▲ ', m.label));
      this.tip.replaceChildren(...lines);
      this.tip.style.visibility = 'visible';
      const left = this.hover + 12 + 220 > p.w ? this.hover - 232 : this.hover + 12;
      this.tip.style.left = Math.max(0, left) + 'px';
      this.tip.style.top = '30px';
    }
  }
}
