// The photo conversion's object steps, runtime/photo_objects.py step for step: keep the largest object (cells of
// object_cell pixels, 8-neighbour objects, those reaching into its box grown by object_gap kept) and turn it
// upright (the angle within deskew_max_degrees with the smallest bounding box). Maps are row-major Float64Arrays of h x w.

function cells(d, w, h, threshold, k, fill) {
  const cw = Math.ceil(w / k), ch = Math.ceil(h / k), count = new Float64Array(cw * ch);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (d[y * w + x] > threshold) count[((y / k) | 0) * cw + ((x / k) | 0)]++;
  return { on: count.map((c) => (c / (k * k) >= fill - 1e-9 ? 1 : 0)), cw, ch };
}

// Each on cell's object: the smallest raster index of the cells 8-connected to it (-1 off), found breadth first.
function components(on, cw, ch) {
  const labels = new Int32Array(on.length).fill(-1);
  for (let start = 0; start < on.length; start++) {
    if (!on[start] || labels[start] >= 0) continue;
    const queue = [start];
    labels[start] = start;
    while (queue.length) {
      const i = queue.pop(), y = (i / cw) | 0, x = i % cw;
      for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) {
        const yy = y + dy, xx = x + dx, j = yy * cw + xx;
        if (yy >= 0 && yy < ch && xx >= 0 && xx < cw && on[j] && labels[j] < 0) { labels[j] = start; queue.push(j); }
      }
    }
  }
  return labels;
}

function dilate(on, cw, ch, r) {
  let out = on;
  for (let step = 0; step < r; step++) {
    const grown = out.slice();
    for (let y = 0; y < ch; y++) for (let x = 0; x < cw; x++) {
      if (!out[y * cw + x]) continue;
      for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) {
        const yy = y + dy, xx = x + dx;
        if (yy >= 0 && yy < ch && xx >= 0 && xx < cw) grown[yy * cw + xx] = 1;
      }
    }
    out = grown;
  }
  return out;
}

// The bounding box (inclusive, in cells) of the cells whose value passes `test`.
function boxOf(values, cw, test) {
  let y0 = Infinity, y1 = -1, x0 = Infinity, x1 = -1;
  values.forEach((v, i) => {
    if (!test(v)) return;
    const y = (i / cw) | 0, x = i % cw;
    y0 = Math.min(y0, y); y1 = Math.max(y1, y); x0 = Math.min(x0, x); x1 = Math.max(x1, x);
  });
  return { y0, y1, x0, x1 };
}

// { d: the map with all but the largest object cleared, kept cells, cw, ch, others: objects as large as a fifth of
// it that were cleared }.
export function largestObject(d, w, h, threshold, p) {
  const k = p.object_cell, { on, cw, ch } = cells(d, w, h, threshold, k, p.object_cell_fill);
  // Pieces closer than object_join cells are one object (a patterned garment's light parts fall below threshold).
  const labels = components(dilate(on, cw, ch, p.object_join), cw, ch).map((l, i) => (on[i] ? l : -1));
  const counts = new Map();
  for (const l of labels) if (l >= 0) counts.set(l, (counts.get(l) || 0) + 1);
  if (!counts.size) return { d, kept: on, cw, ch, others: 0 };
  let largest = -1, most = 0;
  for (const [l, c] of [...counts].sort((a, b) => a[0] - b[0])) if (c > most) { largest = l; most = c; }
  const { y0, y1, x0, x1 } = boxOf(labels, cw, (l) => l === largest);
  // Its box grown by object_gap of its size: a piece reaching into it belongs to it; a second garment lies beside it.
  const g = Math.ceil(p.object_gap * (Math.max(y1 - y0, x1 - x0) + 1));
  const inReach = (i) => {
    const y = (i / cw) | 0, x = i % cw;
    return y >= y0 - g && y <= y1 + g && x >= x0 - g && x <= x1 + g;
  };
  const keptIds = new Set(labels.filter((l, i) => l >= 0 && inReach(i)));
  const kept = labels.map((l) => (l >= 0 && keptIds.has(l) ? 1 : 0));
  let others = 0;
  for (const [l, c] of counts) if (!keptIds.has(l) && c >= 0.2 * most) others++;
  // Everything outside the kept cells' box (and a cell around it) is cleared: other objects, a hanger's hook.
  const b = boxOf(kept, cw, (v) => v);
  const out = d.map((v, i) => {
    const y = (i / w) | 0, x = i % w;
    return y >= (b.y0 - 1) * k && y < (b.y1 + 2) * k && x >= (b.x0 - 1) * k && x < (b.x1 + 2) * k ? v : 0;
  });
  return { d: out, kept, cw, ch, others };
}

// The turn in degrees that makes the kept cells' bounding box smallest (0 where none saves deskew_min_gain).
export function skew(kept, cw, ch, p) {
  const ys = [], xs = [];
  kept.forEach((v, i) => { if (v) { ys.push((i / cw) | 0); xs.push(i % cw); } });
  if (ys.length < 3 || p.deskew_max_degrees <= 0) return 0;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length, mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const area = (deg) => {
    const c = Math.cos((deg * Math.PI) / 180), s = Math.sin((deg * Math.PI) / 180);
    let u0 = Infinity, u1 = -Infinity, v0 = Infinity, v1 = -Infinity;
    for (let i = 0; i < ys.length; i++) {
      const x = xs[i] - mx, y = ys[i] - my, u = c * x + s * y, v = -s * x + c * y;
      u0 = Math.min(u0, u); u1 = Math.max(u1, u); v0 = Math.min(v0, v); v1 = Math.max(v1, v);
    }
    return (u1 - u0 + 1) * (v1 - v0 + 1);
  };
  const m = Math.trunc(p.deskew_max_degrees);
  let best = 0, bestArea = area(0);
  for (let a = -m; a <= m; a++) {
    const ar = area(a);
    if (ar < bestArea || (ar === bestArea && Math.abs(a) < Math.abs(best))) { best = a; bestArea = ar; }
  }
  return bestArea <= (1 - p.deskew_min_gain) * area(0) ? best : 0;
}

// The map turned by deg degrees about its centre (bilinear, zero outside), the same size.
export function rotate(d, w, h, deg) {
  if (deg === 0) return d;
  const c = Math.cos((deg * Math.PI) / 180), s = Math.sin((deg * Math.PI) / 180), cy = (h - 1) / 2, cx = (w - 1) / 2;
  const at = (y, x) => (y >= 0 && y < h && x >= 0 && x < w ? d[y * w + x] : 0);
  const out = new Float64Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const sx = c * (x - cx) - s * (y - cy) + cx, sy = s * (x - cx) + c * (y - cy) + cy;
    const x0 = Math.floor(sx), y0 = Math.floor(sy), fx = sx - x0, fy = sy - y0;
    out[y * w + x] = (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1)) + fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1));
  }
  return out;
}
