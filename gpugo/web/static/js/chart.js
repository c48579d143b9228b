// Time-series line charts drawn as SVG at the container's real pixel width (text stays
// legible on a phone). One line per series, a circle per point with a <title>, a gap
// where buckets are missing. Colours come from CSS classes c0..c7.

import { h, s } from './dom.js';
import { clock } from './format.js';

const HEIGHT = 200;
const PAD = { top: 12, right: 12, bottom: 24, left: 46 };

function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const nice = norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10;
  return nice * mag;
}

/**
 * y range [lo, hi] and ticks. `fixed` ([0, 100]) wins when given; `empty` is the range
 * when there is no value yet; `minStep` keeps ticks apart (whole degrees).
 */
function yScale(values, { fixed, floor, empty, minStep = 0 } = {}) {
  let lo;
  let hi;
  if (fixed) [lo, hi] = fixed;
  else if (!values.length && empty) [lo, hi] = empty;
  else {
    lo = values.length ? Math.min(...values) : 0;
    hi = values.length ? Math.max(...values) : 1;
    if (floor != null) lo = Math.min(lo, floor);
    if (hi - lo < minStep * 4) hi = lo + minStep * 4;
    if (hi === lo) hi = lo + 1;
    const step = Math.max(minStep, niceStep(hi - lo, 4));
    lo = Math.floor(lo / step) * step;
    hi = Math.ceil(hi / step) * step;
  }
  const step = Math.max(minStep, niceStep(hi - lo, 4));
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step / 1000; v += step) ticks.push(Number(v.toFixed(6)));
  return { lo, hi, ticks };
}

const MINUTE = 60 * 1000;
const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880].map((m) => m * MINUTE);

/** Round local times (every 15 min, every 6 h, midnight...) inside [from, to], at most `max`. */
function timeTicks(from, to, max) {
  const step = STEPS.find((st) => (to - from) / st <= max) || STEPS[STEPS.length - 1];
  const offset = new Date(from).getTimezoneOffset() * MINUTE;
  const ticks = [];
  for (let t = Math.ceil((from - offset) / step) * step + offset; t <= to; t += step) {
    if (t - from > (to - from) * 0.04 && to - t > (to - from) * 0.04) ticks.push(t);
  }
  return ticks;
}

function timeLabel(ms, spanMs) {
  const d = new Date(ms);
  if (spanMs > 36 * 3600 * 1000) return d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
  return clock(d);
}

/**
 * Draw into `container`: series [{name, cls, points: [{t (ms), v}]}], from/to (ms),
 * gapMs (a longer gap breaks the line), format(v) for labels, y options.
 */
export function drawChart(container, { id, label, series, from, to, gapMs, format, y = {}, emptyNote = 'No samples in this range' }) {
  const width = Math.max(260, Math.floor(container.clientWidth || 600));
  const plotW = width - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const values = series.flatMap((ser) => ser.points.map((p) => p.v));
  const { lo, hi, ticks } = yScale(values, y);
  const x = (t) => PAD.left + ((t - from) / Math.max(1, to - from)) * plotW;
  const yy = (v) => PAD.top + plotH - ((v - lo) / (hi - lo || 1)) * plotH;

  const grid = ticks.map((v) =>
    s(
      'g',
      { class: 'tick' },
      s('line', { x1: PAD.left, x2: width - PAD.right, y1: yy(v), y2: yy(v), class: 'grid' }),
      s('text', { x: PAD.left - 6, y: yy(v) + 4, 'text-anchor': 'end', class: 'axis' }, format(v, true)),
    ),
  );
  const xTicks = timeTicks(from, to, width < 420 ? 3 : 6).map((t) =>
    s('g', { class: 'tick' },
      s('line', { x1: x(t), x2: x(t), y1: PAD.top + plotH, y2: PAD.top + plotH + 4, class: 'axis-line' }),
      s('text', { x: x(t), y: HEIGHT - 6, 'text-anchor': 'middle', class: 'axis' }, timeLabel(t, to - from)),
    ),
  );

  const lines = series.map((ser) => {
    // A gap breaks the line when it is much longer than the series' usual spacing (an
    // agent that reports every 5 minutes leaves empty 1-minute buckets between reports).
    const deltas = ser.points.slice(1).map((p, i) => p.t - ser.points[i].t).sort((a, b) => a - b);
    const usual = deltas.length ? deltas[Math.floor(deltas.length / 2)] : 0;
    const gap = Math.max(gapMs, usual * 3);
    const segments = [];
    let current = [];
    let last = null;
    for (const p of ser.points) {
      if (last != null && p.t - last > gap) {
        segments.push(current);
        current = [];
      }
      current.push(p);
      last = p.t;
    }
    if (current.length) segments.push(current);
    return s(
      'g',
      { class: `series ${ser.cls}`, 'data-series': ser.name },
      segments.map((seg) =>
        s('polyline', { points: seg.map((p) => `${x(p.t).toFixed(1)},${yy(p.v).toFixed(1)}`).join(' '), class: 'line' }),
      ),
      ser.points.map((p) =>
        s(
          'circle',
          {
            class: 'pt',
            cx: x(p.t).toFixed(1),
            cy: yy(p.v).toFixed(1),
            r: ser.points.length > 90 ? 1.5 : 2.5,
            'data-gpu': ser.name,
            'data-t': new Date(p.t).toISOString(),
            'data-value': String(p.v),
          },
          s('title', {}, `${ser.name} · ${clock(new Date(p.t))} · ${format(p.v)}`),
        ),
      ),
    );
  });

  const latest = series
    .filter((ser) => ser.points.length)
    .map((ser) => `${ser.name} ${format(ser.points[ser.points.length - 1].v)}`)
    .join(', ');
  const svg = s(
    'svg',
    {
      id,
      class: 'chart-svg',
      width,
      height: HEIGHT,
      viewBox: `0 0 ${width} ${HEIGHT}`,
      role: 'img',
      'aria-label': `${label}. ${latest ? `Latest: ${latest}.` : 'No data for this period.'}`,
    },
    s('g', { class: 'grid-lines' }, grid),
    s('g', { class: 'x-axis' }, xTicks),
    s('line', { x1: PAD.left, x2: PAD.left, y1: PAD.top, y2: PAD.top + plotH, class: 'axis-line' }),
    lines,
    values.length
      ? null
      : s('text', { x: PAD.left + plotW / 2, y: PAD.top + plotH * 0.375 + 4, 'text-anchor': 'middle', class: 'empty-note' }, emptyNote),
  );
  container.textContent = '';
  container.appendChild(svg);
  if (values.length) crosshair(container, svg, { series, from, to, x, plotW, plotH, format, label });
}

function readoutTime(ms, spanMs) {
  const d = new Date(ms);
  if (spanMs <= 36 * 3600 * 1000) return clock(d);
  return d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

/**
 * A crosshair over the chart: pointer (mouse, pen, touch) or arrow keys pick a time, a
 * vertical line marks it, and a line of text under the chart gives every series' value
 * at that time (its bucket), colour by colour.
 */
function crosshair(container, svg, { series, from, to, x, plotW, plotH, format, label }) {
  const times = [...new Set(series.flatMap((ser) => ser.points.map((p) => p.t)))].sort((a, b) => a - b);
  const byTime = series.map((ser) => new Map(ser.points.map((p) => [p.t, p.v])));
  const line = s('line', { class: 'crosshair', x1: -10, x2: -10, y1: PAD.top, y2: PAD.top + plotH, visibility: 'hidden' });
  const readout = h('p', { class: 'chart-readout small', 'aria-live': 'polite' }, h('span', { class: 'muted' }, 'Point at the chart for the values at a time.'));
  let index = -1;

  function show(i) {
    index = Math.max(0, Math.min(times.length - 1, i));
    const t = times[index];
    // Kept on the container: a live redraw puts the crosshair back where it was.
    container.crosshairTime = t;
    const px = x(t).toFixed(1);
    line.setAttribute('x1', px);
    line.setAttribute('x2', px);
    line.setAttribute('visibility', 'visible');
    readout.textContent = '';
    readout.setAttribute('data-t', new Date(t).toISOString());
    readout.appendChild(h('time', { class: 'strong', datetime: new Date(t).toISOString() }, readoutTime(t, to - from)));
    series.forEach((ser, i2) => {
      const v = byTime[i2].get(t);
      readout.appendChild(
        h(
          'span',
          { class: 'readout-item', 'data-series': ser.name },
          h('span', { class: `swatch ${ser.cls}`, 'aria-hidden': 'true' }),
          `${ser.name} `,
          h('span', { class: 'readout-value' }, v == null ? '—' : format(v)),
        ),
      );
    });
  }

  function nearest(event) {
    const box = svg.getBoundingClientRect();
    const px = ((event.clientX - box.left) / box.width) * svg.viewBox.baseVal.width;
    const t = from + ((px - PAD.left) / plotW) * (to - from);
    let best = 0;
    for (let i = 1; i < times.length; i += 1) if (Math.abs(times[i] - t) < Math.abs(times[best] - t)) best = i;
    return best;
  }

  const hit = s('rect', {
    class: 'hit',
    x: PAD.left,
    y: PAD.top,
    width: plotW,
    height: plotH,
    tabindex: '0',
    role: 'slider',
    'aria-label': `${label}: time`,
    'aria-valuemin': '0',
    'aria-valuemax': String(times.length - 1),
    onpointermove: (event) => show(nearest(event)),
    onpointerdown: (event) => show(nearest(event)),
    onpointerleave(event) {
      // A finger lifted keeps its reading; a mouse leaving hides it.
      if (event.pointerType === 'mouse') {
        line.setAttribute('visibility', 'hidden');
        container.crosshairTime = null;
      }
    },
    onkeydown(event) {
      const step = { ArrowLeft: -1, ArrowRight: 1, Home: -Infinity, End: Infinity }[event.key];
      if (step == null) return;
      event.preventDefault();
      const next = index < 0 ? times.length - 1 : index + step;
      show(Number.isFinite(next) ? next : step < 0 ? 0 : times.length - 1);
      hit.setAttribute('aria-valuenow', String(index));
      hit.setAttribute('aria-valuetext', readout.textContent);
    },
    onfocus() {
      if (index < 0) show(times.length - 1);
    },
  });
  svg.appendChild(line);
  svg.appendChild(hit);
  container.appendChild(readout);
  if (container.crosshairTime != null) {
    const kept = times.indexOf(container.crosshairTime);
    if (kept >= 0) show(kept);
  }
}
