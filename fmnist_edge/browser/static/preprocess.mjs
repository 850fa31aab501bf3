// A photo -> the model's 28x28 uint8 input, step for step as runtime/images.py does it in Python (Pillow):
// upright by EXIF orientation (the browser's decoder applies it), alpha composited onto white, grayscale with
// Pillow's integer weights, Fashion-MNIST polarity (inverted when the border's median is light), fitted into
// 28x28 keeping the aspect ratio with Pillow's own LANCZOS resampling (ported below: fixed-point, two passes),
// centred on a black canvas. The size limit and the 28 come from the release's manifest (release.json).

const PRECISION_BITS = 32 - 8 - 2; // Pillow's Resample.c for 8-bit images

function sinc(x) {
  if (x === 0) return 1;
  x *= Math.PI;
  return Math.sin(x) / x;
}

function lanczos(x) {
  return x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0;
}

// Pillow's precompute_coeffs + normalize_coeffs_8bpc: integer weights for each output pixel.
function coefficients(inSize, outSize) {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 3 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    const w = new Float64Array(xmax);
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      w[x] = lanczos((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    for (let x = 0; x < xmax; x++) {
      const k = ww !== 0 ? w[x] / ww : w[x];
      kk[xx * ksize + x] = Math.trunc(k < 0 ? -0.5 + k * (1 << PRECISION_BITS) : 0.5 + k * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

function clip8(v) {
  if (v >= 2 ** (PRECISION_BITS + 8)) return 255;
  if (v <= 0) return 0;
  return Math.floor(v / 2 ** PRECISION_BITS);
}

// Image.resize((outW, outH), LANCZOS) of a single-channel image: horizontal pass, then vertical (as Pillow).
export function resizeLanczos(src, w, h, outW, outH) {
  let cur = src, cw = w;
  if (outW !== w) {
    const { ksize, bounds, kk } = coefficients(w, outW);
    const tmp = new Uint8Array(outW * h);
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < outW; xx++) {
        const xmin = bounds[xx * 2], xmax = bounds[xx * 2 + 1];
        let ss = 2 ** (PRECISION_BITS - 1);
        for (let x = 0; x < xmax; x++) ss += cur[y * w + x + xmin] * kk[xx * ksize + x];
        tmp[y * outW + xx] = clip8(ss);
      }
    }
    cur = tmp;
    cw = outW;
  }
  if (outH === h) return cur;
  const { ksize, bounds, kk } = coefficients(h, outH);
  const out = new Uint8Array(cw * outH);
  for (let yy = 0; yy < outH; yy++) {
    const ymin = bounds[yy * 2], ymax = bounds[yy * 2 + 1];
    for (let x = 0; x < cw; x++) {
      let ss = 2 ** (PRECISION_BITS - 1);
      for (let y = 0; y < ymax; y++) ss += cur[(y + ymin) * cw + x] * kk[yy * ksize + y];
      out[yy * cw + x] = clip8(ss);
    }
  }
  return out;
}

// Python's round(): halves to even.
function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function median(values) {
  const s = Float64Array.from(values).sort();
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// RGBA pixels (already composited onto white by the caller's canvas) -> 28x28 uint8, Fashion-MNIST-like.
export function toFmnist(rgba, w, h, side = 28) {
  const gray = new Uint8Array(w * h);
  for (let i = 0, p = 0; i < gray.length; i++, p += 4) {
    // Pillow's RGB -> L: ITU-R 601-2 luma in 16-bit fixed point, rounded
    gray[i] = (rgba[p] * 19595 + rgba[p + 1] * 38470 + rgba[p + 2] * 7471 + 0x8000) >>> 16;
  }
  const border = [];
  for (let x = 0; x < w; x++) border.push(gray[x]);
  for (let x = 0; x < w; x++) border.push(gray[(h - 1) * w + x]);
  for (let y = 0; y < h; y++) border.push(gray[y * w]);
  for (let y = 0; y < h; y++) border.push(gray[y * w + w - 1]);
  if (median(border) > 127) for (let i = 0; i < gray.length; i++) gray[i] = 255 - gray[i];
  const scale = side / Math.max(w, h);
  const sw = Math.max(1, roundHalfEven(w * scale)), sh = Math.max(1, roundHalfEven(h * scale));
  const small = resizeLanczos(gray, w, h, sw, sh);
  const out = new Uint8Array(side * side);
  const ox = (side - sw) >> 1, oy = (side - sh) >> 1;
  for (let y = 0; y < sh; y++) for (let x = 0; x < sw; x++) out[(y + oy) * side + x + ox] = small[y * sw + x];
  return out;
}

export class ImageInputError extends Error {}

// A File/Blob from <input type=file> -> 28x28 uint8. Decoding applies the EXIF orientation; transparent
// pixels are drawn onto white, as Pillow's alpha_composite onto a white image does.
export async function photoToInput(blob, { maxPixels, side = 28 }) {
  if (blob.type && !blob.type.startsWith("image/")) {
    throw new ImageInputError(`${blob.name || "this file"} is not an image (${blob.type}). Choose a photo (JPEG, PNG, ...).`);
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, { imageOrientation: "from-image" });
  } catch (err) {
    throw new ImageInputError(`${blob.name || "this file"} could not be read as an image (${err.message || err}). ` +
                              "It may be damaged; try another photo.");
  }
  const { width: w, height: h } = bitmap;
  if (w === 0 || h === 0) throw new ImageInputError("The image is empty.");
  if (w * h > maxPixels) {
    bitmap.close();
    throw new ImageInputError(`The image is ${w}x${h} pixels, over the ${maxPixels.toLocaleString("en")}-pixel limit. ` +
                              "Use a smaller photo.");
  }
  const canvas = new OffscreenCanvas(w, h);
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, w, h);
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  return toFmnist(ctx.getImageData(0, 0, w, h).data, w, h, side);
}
