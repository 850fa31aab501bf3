// A photo -> the model's 28x28 uint8 input: runtime/photo.py step for step, with the same parameters (the runtime's
// photo.json, shipped in release.json as `photo`). The browser decodes (EXIF orientation applied, colour profile
// converted to sRGB by the canvas, alpha drawn onto white, as runtime/images.py decodes with Pillow); the steps below
// follow Fashion-MNIST's own conversion: background modelled from the border, garment map by colour distance
// (the negation), the largest object kept and turned upright, trim, level, fit the longest side by area averaging,
// centre, sharpen.

import { largestObject, rotate, skew } from "./photo-objects.mjs";

export class ImageInputError extends Error {}

const NO_GARMENT = "no garment found: nothing in the photo stands out from its background. Photograph one garment " +
                   "on a plain background, filling most of the frame.";
const SPECKS = "no garment found: what stands out from the background is only specks or lines. Photograph one " +
               "garment on a plain background, filling most of the frame.";

// The value at rank floor(q * (n - 1)) of the sorted values (photo.py's quantile).
function quantile(values, q) {
  const s = Float64Array.from(values).sort();
  return s[Math.floor(q * (s.length - 1))];
}

// RGBA -> YCbCr, averaged over k x k blocks so the long side is at most workSide (photo.py's shrink + ycbcr).
function shrinkYcc(rgba, w, h, workSide) {
  const k = Math.max(1, Math.ceil(Math.max(h, w) / workSide));
  const hh = Math.floor(h / k), ww = Math.floor(w / k);
  const ycc = new Float64Array(hh * ww * 3);
  for (let by = 0; by < hh; by++) {
    for (let bx = 0; bx < ww; bx++) {
      let r = 0, g = 0, b = 0;
      for (let y = by * k; y < (by + 1) * k; y++) {
        for (let x = bx * k; x < (bx + 1) * k; x++) {
          const p = (y * w + x) * 4;
          r += rgba[p]; g += rgba[p + 1]; b += rgba[p + 2];
        }
      }
      r /= k * k; g /= k * k; b /= k * k;
      const o = (by * ww + bx) * 3;
      ycc[o] = 0.299 * r + 0.587 * g + 0.114 * b;
      ycc[o + 1] = -0.168736 * r - 0.331264 * g + 0.5 * b;
      ycc[o + 2] = 0.5 * r - 0.418688 * g - 0.081312 * b;
    }
  }
  return { ycc, w: ww, h: hh };
}

function bandMask(h, w, fraction) {
  const b = Math.max(1, Math.floor(fraction * Math.min(h, w) + 0.5));
  const m = new Uint8Array(h * w);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) m[y * w + x] = y < b || y >= h - b || x < b || x >= w - b ? 1 : 0;
  return m;
}

// Solve the 3x3 system a x = rhs (rhs: 3 columns, one per channel) by Gaussian elimination with partial pivoting.
function solve3(a, rhs) {
  const m = a.map((row, i) => [...row, ...rhs[i]]);
  for (let c = 0; c < 3; c++) {
    let p = c;
    for (let r = c + 1; r < 3; r++) if (Math.abs(m[r][c]) > Math.abs(m[p][c])) p = r;
    [m[c], m[p]] = [m[p], m[c]];
    for (let r = 0; r < 3; r++) {
      if (r === c) continue;
      const f = m[r][c] / m[c][c];
      for (let k = c; k < 6; k++) m[r][k] -= f * m[c][k];
    }
  }
  return [0, 1, 2].map((r) => [3, 4, 5].map((k) => m[r][k] / m[r][r]));
}

// The background plane a + b*u + c*v per channel fitted to the pixels in `keep`: coef[term][channel].
function planeFit(ycc, w, h, keep) {
  const sx = 2 / Math.max(1, w - 1), sy = 2 / Math.max(1, h - 1);
  const ata = [[1e-9, 0, 0], [0, 1e-9, 0], [0, 0, 1e-9]];
  const atb = [[0, 0, 0], [0, 0, 0], [0, 0, 0]];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      if (!keep[i]) continue;
      const row = [1, x * sx - 1, y * sy - 1];
      for (let r = 0; r < 3; r++) {
        for (let c = 0; c < 3; c++) ata[r][c] += row[r] * row[c];
        for (let c = 0; c < 3; c++) atb[r][c] += row[r] * ycc[i * 3 + c];
      }
    }
  }
  return solve3(ata, atb);
}

// Every pixel's colour distance from the background plane `coef`.
function distances(ycc, w, h, coef, chromaWeight) {
  const sx = 2 / Math.max(1, w - 1), sy = 2 / Math.max(1, h - 1);
  const d = new Float64Array(w * h);
  const cw2 = chromaWeight * chromaWeight;
  for (let y = 0; y < h; y++) {
    const v = y * sy - 1;
    for (let x = 0; x < w; x++) {
      const u = x * sx - 1, i = y * w + x;
      const e = [0, 1, 2].map((c) => ycc[i * 3 + c] - (coef[0][c] + u * coef[1][c] + v * coef[2][c]));
      d[i] = Math.sqrt(e[0] ** 2 + cw2 * (e[1] ** 2 + e[2] ** 2));
    }
  }
  return d;
}

function garmentMap(rgba, width, height, p) {
  const { ycc, w, h } = shrinkYcc(rgba, width, height, p.work_side);
  const band = bandMask(h, w, p.border_band);
  // Two starts, each refitted: a plane fitted to the whole band (a lighting gradient) and the band's median colour
  // (which a garment lying across one side does not tilt); the one leaving the border quieter is kept.
  const median = [0, 1, 2].map((c) => quantile(ycc.filter((_, i) => i % 3 === c && band[(i / 3) | 0]), 0.5));
  const plane = refit(ycc, w, h, band, distances(ycc, w, h, planeFit(ycc, w, h, band), p.chroma_weight), p);
  const flat = refit(ycc, w, h, band, distances(ycc, w, h, [median, [0, 0, 0], [0, 0, 0]], p.chroma_weight), p);
  return { ...(flat.noise < plane.noise ? flat : plane), w, h };
}

// Planes refitted background_refits times to the band pixels near the last model (a garment, a shadow left out).
function refit(ycc, w, h, band, d, p) {
  const inBand = (m) => d.filter((_, i) => m[i]);
  for (let step = 0; step < p.background_refits; step++) {
    const limit = p.background_refit_k * quantile(inBand(band), 0.5) + 1.0;
    const keep = band.map((b, i) => (b && d[i] <= limit ? 1 : 0));
    if (keep.reduce((a, b) => a + b, 0) < 3) break;
    band = keep;
    d = distances(ycc, w, h, planeFit(ycc, w, h, band), p.chroma_weight);
  }
  return { d, noise: quantile(inBand(band), p.noise_quantile) };
}

// Where the box reaches the frame's edge, lines there with under edgeFraction of the widest line's pixels go too.
function trimBox(d, w, h, threshold, lineFraction, edgeFraction, fills) {
  const rows = new Float64Array(h), cols = new Float64Array(w);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (d[y * w + x] > threshold) { rows[y]++; cols[x]++; }
  const okRows = [...rows.keys()].filter((y) => rows[y] >= Math.max(1, lineFraction * w));
  const okCols = [...cols.keys()].filter((x) => cols[x] >= Math.max(1, lineFraction * h));
  if (!okRows.length || !okCols.length) return null;
  return [...offTheEdge(rows, okRows[0], okRows[okRows.length - 1], edgeFraction, fills),
          ...offTheEdge(cols, okCols[0], okCols[okCols.length - 1], edgeFraction, fills)];
}

function offTheEdge(counts, lo, hi, fraction, fills) {
  if (hi - lo + 1 >= fills * counts.length) return [lo, hi]; // the garment fills the frame (a scan): nothing runs off
  const limit = fraction * Math.max(...counts);
  if (lo <= 1) while (lo < hi && counts[lo] < limit) lo++;
  if (hi >= counts.length - 2) while (hi > lo && counts[hi] < limit) hi--;
  return [lo, hi];
}

// (nOut x nIn) area-averaging weights: output i averages source [i*s, (i+1)*s), s = nIn / nOut.
function areaWeights(nIn, nOut) {
  const s = nIn / nOut;
  const m = Array.from({ length: nOut }, () => new Float64Array(nIn));
  for (let i = 0; i < nOut; i++) {
    const lo = i * s, hi = (i + 1) * s;
    for (let j = Math.floor(lo); j < Math.min(nIn, Math.ceil(hi)); j++) m[i][j] = (Math.min(hi, j + 1) - Math.max(lo, j)) / s;
  }
  return m;
}

function centreOffset(small, sh, sw, side, how) {
  let total = 0, my = 0, mx = 0;
  for (let y = 0; y < sh; y++) for (let x = 0; x < sw; x++) { const v = small[y * sw + x]; total += v; my += v * y; mx += v * x; }
  if (how === "box" || total <= 0) return [(side - sh) >> 1, (side - sw) >> 1];
  const place = (extra, c) => Math.min(extra, Math.max(0, Math.floor((side - 1) / 2 - c + 0.5)));
  return [place(side - sh, my / total), place(side - sw, mx / total)];
}

// Unsharp mask with a 3x3 Gaussian (zeros outside the canvas): v + amount * (v - blur), photo.py's sharpen.
function sharpen(img, side, sigma, amount) {
  const g = [1, 0, 1].map((t) => Math.exp(-t / (2 * sigma * sigma)));
  let sum = 0;
  for (const a of g) for (const b of g) sum += a * b;
  const out = new Float64Array(side * side);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      let blur = 0;
      for (let dy = 0; dy < 3; dy++) {
        for (let dx = 0; dx < 3; dx++) {
          const yy = y + dy - 1, xx = x + dx - 1;
          if (yy >= 0 && yy < side && xx >= 0 && xx < side) blur += ((g[dy] * g[dx]) / sum) * img[yy * side + xx];
        }
      }
      const v = img[y * side + x];
      out[y * side + x] = v + amount * (v - blur);
    }
  }
  return out;
}

// RGBA pixels (drawn onto white by the caller's canvas) -> side x side uint8, Fashion-MNIST-like.
export function toFmnist(rgba, width, height, p) {
  const side = p.side;
  let { d, w, h, noise } = garmentMap(rgba, width, height, p);
  const threshold = Math.max(p.min_threshold, p.noise_threshold_mult * noise);
  const garment = d.filter((v) => v > threshold);
  if (garment.length < p.min_garment_fraction * d.length) throw new ImageInputError(NO_GARMENT);
  const peak = quantile(garment, p.stretch_quantile);
  const trimAt = Math.max(threshold, p.trim_relative * peak);
  if (p.object_cell) { // the largest object alone, upright (photo-objects.mjs)
    const { d: alone, kept, cw, ch } = largestObject(d, w, h, threshold, p);
    d = rotate(alone, w, h, skew(kept, cw, ch, p));
  }
  const box = trimBox(d, w, h, trimAt, p.trim_line_fraction, p.edge_line_fraction, p.edge_fills_frame);
  if (!box) throw new ImageInputError(SPECKS);
  const [top, bottom, left, right] = box;
  const ch = bottom - top + 1, cw = right - left + 1;
  const floor = threshold / 2, span = Math.max(1e-6, peak - floor);
  const scale = side / Math.max(ch, cw);
  const sh = Math.max(1, Math.floor(ch * scale + 0.5)), sw = Math.max(1, Math.floor(cw * scale + 0.5));
  const wy = areaWeights(ch, sh), wx = areaWeights(cw, sw);
  const rowsDone = new Float64Array(ch * sw); // levelled crop @ wx^T
  for (let y = 0; y < ch; y++) {
    for (let j = 0; j < sw; j++) {
      let acc = 0;
      for (let x = 0; x < cw; x++) {
        const lv = Math.min(1, Math.max(0, (d[(top + y) * w + left + x] - floor) / span)) * 255;
        acc += lv * wx[j][x];
      }
      rowsDone[y * sw + j] = acc;
    }
  }
  const small = new Float64Array(sh * sw);
  for (let i = 0; i < sh; i++) for (let j = 0; j < sw; j++) {
    let acc = 0;
    for (let y = 0; y < ch; y++) acc += wy[i][y] * rowsDone[y * sw + j];
    small[i * sw + j] = acc;
  }
  const [oy, ox] = centreOffset(small, sh, sw, side, p.centre);
  const canvas = new Float64Array(side * side);
  for (let y = 0; y < sh; y++) for (let x = 0; x < sw; x++) canvas[(y + oy) * side + x + ox] = small[y * sw + x];
  const sharp = sharpen(canvas, side, p.sharpen_sigma, p.sharpen_amount);
  return Uint8Array.from(sharp, (v) => Math.min(255, Math.max(0, Math.floor(v + 0.5))));
}

// A File/Blob from <input type=file> -> an upright sRGB ImageBitmap, at most `maxPixels` pixels: a larger photo (a
// 50 MP phone mode) is scaled down right after decoding (runtime/images.py does the same), and one over
// `largestPixels` is refused. Decoding applies the EXIF orientation and converts an embedded colour profile to sRGB.
export async function decodePhoto(blob, { maxPixels, largestPixels = maxPixels }) {
  if (blob.type && !blob.type.startsWith("image/")) {
    throw new ImageInputError(`${blob.name || "this file"} is not an image (${blob.type}). Choose a photo (JPEG, PNG, ...).`);
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, { imageOrientation: "from-image", colorSpaceConversion: "default" });
  } catch (err) {
    throw new ImageInputError(`${blob.name || "this file"} could not be read as an image (${err.message || err}). ` +
                              "It may be damaged; try another photo.");
  }
  const { width: w, height: h } = bitmap;
  if (w === 0 || h === 0) throw new ImageInputError("The image is empty.");
  if (w * h > largestPixels) {
    bitmap.close();
    throw new ImageInputError(`The image is ${w}x${h} pixels, over the ${largestPixels.toLocaleString("en")}-pixel ` +
                              "limit. Use a smaller photo.");
  }
  if (w * h <= maxPixels) return bitmap;
  const [sw, sh] = fittedSize(w, h, maxPixels);
  const small = await createImageBitmap(bitmap, { resizeWidth: sw, resizeHeight: sh, resizeQuality: "high" });
  bitmap.close();
  return small;
}

// The size a w x h photo over `maxPixels` is scaled to: the same factor on both sides (runtime/images.py's fitted_size).
export function fittedSize(w, h, maxPixels) {
  const f = Math.sqrt((w * h) / maxPixels);
  return [Math.max(1, Math.floor(w / f)), Math.max(1, Math.floor(h / f))];
}

// An ImageBitmap (a decoded photo or a camera frame) -> side x side uint8; transparent pixels are drawn onto white,
// as Pillow's alpha_composite does. The bitmap is closed.
export function bitmapToInput(bitmap, photo) {
  const { width: w, height: h } = bitmap;
  const canvas = new OffscreenCanvas(w, h);
  const ctx = canvas.getContext("2d", { willReadFrequently: true, colorSpace: "srgb" });
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, w, h);
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  return toFmnist(ctx.getImageData(0, 0, w, h).data, w, h, photo);
}

// A File/Blob from <input type=file> -> side x side uint8.
export async function photoToInput(blob, { maxPixels, largestPixels, photo }) {
  return bitmapToInput(await decodePhoto(blob, { maxPixels, largestPixels }), photo);
}

const THUMB = 168; // px on the long side: the page shows it at 84 CSS px, sharp on a 2x screen

// A photo (File/Blob) or a camera frame (ImageBitmap) -> {pixels: the model's input, thumb: a small ImageBitmap}.
// What the page's Worker (prepare.mjs) runs, and the page itself where no module Worker starts.
export async function prepare(source, { maxPixels, largestPixels, photo }) {
  const bitmap = source instanceof ImageBitmap ? source : await decodePhoto(source, { maxPixels, largestPixels });
  const k = THUMB / Math.max(bitmap.width, bitmap.height);
  const thumb = await createImageBitmap(bitmap, { resizeWidth: Math.max(1, Math.round(bitmap.width * k)),
                                                  resizeHeight: Math.max(1, Math.round(bitmap.height * k)),
                                                  resizeQuality: "medium" });
  return { pixels: bitmapToInput(bitmap, photo), thumb };
}
