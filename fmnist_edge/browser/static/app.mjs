// The fmnist-edge web app: classify a photo on the phone, offline, with the release's own files.
// `Classifier` is also what `fmnist-edge verify --browser` drives, so the page and the proof share one path.
import { closeCamera, cameraSupported, cameraTrouble, grabFrame, openCamera } from "./camera.mjs";
import { countDownloads, megabytes } from "./loading.mjs";
import { ImageInputError, prepare } from "./preprocess.mjs";

export async function loadRelease() {
  const response = await fetch(new URL("./release.json", import.meta.url));
  if (!response.ok) throw new Error(`release.json: HTTP ${response.status}`);
  return response.json();
}

const here = (path) => new URL(path, import.meta.url).href;

// One session per format: (float32 NHWC input of n images, n) -> probabilities. Each runtime is imported only
// when an artifact of its format is used, so the app loads one of them.
const SESSIONS = {
  async onnx(artifact) {
    const ort = await import("./ort/ort.wasm.min.mjs");
    ort.env.wasm.wasmPaths = here("./ort/");
    ort.env.wasm.numThreads = 1; // threads need cross-origin isolation, and gave no speed-up on 2 cores (STACK.md)
    const session = await ort.InferenceSession.create(here(artifact.model), { executionProviders: ["wasm"] });
    const { side, input_name: inputName, output_name: outputName } = artifact;
    return async (x, n) => (await session.run({ [inputName]: new ort.Tensor("float32", x, [n, side, side, 1]) }))[outputName].data;
  },
  async tflite(artifact) {
    quietNativeLog();
    const litert = await import("./litert/index.js");
    if (!SESSIONS.litertLoaded) SESSIONS.litertLoaded = withoutWebGpu(() => litert.loadLiteRt(here("./litert/wasm/")));
    await SESSIONS.litertLoaded;
    const model = await litert.loadAndCompile(here(artifact.model), { accelerator: "wasm" });
    const size = artifact.side * artifact.side;
    return async (x, n) => { // the file has a static batch of 1 (LiteRT.js cannot resize): one image per call
      const out = new Float32Array(n * artifact.classes);
      for (let i = 0; i < n; i++) {
        const input = new litert.Tensor(x.slice(i * size, (i + 1) * size), [1, artifact.side, artifact.side, 1]);
        const [result] = await model.run(input);
        out.set(result.toTypedArray(), i * artifact.classes);
        input.delete();
        result.delete();
      }
      return out;
    };
  },
};

// LiteRT's WebAssembly prints its native log through console.error: 14 red "INFO: [...]" lines on every load, which
// hide real errors; and loadLiteRt always tries to open a WebGPU device, warning when there is none, though the app
// runs on WebAssembly only. Those lines go to console.debug; anything else stays an error or a warning.
const NOT_OURS = { error: /^(INFO|WARNING): /, warn: /^Failed to create default WebGPU device/ };
function quietNativeLog() {
  for (const [level, pattern] of Object.entries(NOT_OURS)) {
    if (console[level].quiet) continue;
    const original = console[level].bind(console);
    const quiet = (...args) => (typeof args[0] === "string" && pattern.test(args[0]) ? console.debug : original)(...args);
    quiet.quiet = true;
    console[level] = quiet;
  }
}

// loadLiteRt always asks for a WebGPU adapter (Chromium then warns "No available adapters" on machines without
// one), though the app compiles for WebAssembly only: navigator.gpu is hidden from it while it loads.
async function withoutWebGpu(load) {
  const shadowed = "gpu" in navigator;
  if (shadowed) Object.defineProperty(navigator, "gpu", { value: undefined, configurable: true });
  try {
    return await load();
  } finally {
    if (shadowed) delete navigator.gpu;
  }
}

export class Classifier {
  static async load(artifact) {
    return new Classifier(artifact, await SESSIONS[artifact.format](artifact));
  }

  constructor(artifact, run) {
    this.artifact = artifact;
    this.run = run;
  }

  // uint8 pixels of n 28x28 images (light garment on dark) -> n x classes probabilities. The model input is
  // pixel / input_scale (from the manifest's preprocessing: 255, inputs in [0, 1]), float32, NHWC.
  async predict(pixels, n) {
    const { side, input_scale: scale } = this.artifact;
    const x = new Float32Array(n * side * side);
    for (let i = 0; i < x.length; i++) x[i] = pixels[i] / scale;
    return this.run(x, n);
  }
}

// Whether an answer does not look like one of the ten classes (runtime/out_of_class.py, the same rule): an unsure
// answer whose input correlates little with the chosen class's mean training image. Only for Fashion-MNIST's classes
// (`means`: release.json's class_means file, 10 x side x side uint8; null for other classes).
export function outOfClass(pixels, probs, release, means) {
  if (!means) return false;
  const c = probs.indexOf(Math.max(...probs)), size = pixels.length;
  if (!(probs[c] < release.photo.unknown_below)) return false;
  return correlation(pixels, means.subarray(c * size, (c + 1) * size)) < release.photo.unknown_correlation_below;
}

async function loadMeans(release) {
  if (!release.class_means) return null;
  const response = await fetch(here(release.class_means));
  return response.ok ? new Uint8Array(await response.arrayBuffer()) : null;
}

function correlation(a, b) {
  const n = a.length;
  let ma = 0, mb = 0;
  for (let i = 0; i < n; i++) { ma += a[i]; mb += b[i]; }
  ma /= n; mb /= n;
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < n; i++) {
    const x = a[i] - ma, y = b[i] - mb;
    ab += x * y; aa += x * x; bb += y * y;
  }
  return aa * bb > 0 ? ab / Math.sqrt(aa * bb) : 0;
}

function topK(probs, names, k) {
  return [...probs].map((p, i) => [names[i], p]).sort((a, b) => b[1] - a[1]).slice(0, k);
}

const BUILD_KEY = "fmnist-edge-build";

// Tell a returning visitor when the app they see is a new build (the service worker took the update).
function noteUpdate(release) {
  let previous = null;
  try {
    previous = localStorage.getItem(BUILD_KEY);
    localStorage.setItem(BUILD_KEY, release.digest);
  } catch {
    return; // no storage (private browsing): nothing to compare with
  }
  if (previous && previous !== release.digest) {
    const note = $("updated");
    note.textContent = `This app was updated (${release.name}, build ${release.digest.slice(0, 8)}).`;
    note.hidden = false;
  }
}

// Photos are prepared in a Worker (prepare.mjs), so the page never freezes on a 50 MP photo; on the main thread
// where a module Worker cannot start. (source: a File or a camera frame's ImageBitmap) -> {pixels, thumb}.
export function preparer(release) {
  const options = { maxPixels: release.max_pixels, largestPixels: release.largest_pixels, photo: release.photo };
  const onPage = (source) => prepare(source, options);
  let worker;
  try {
    worker = new Worker(here("./prepare.mjs"), { type: "module" });
  } catch {
    return onPage;
  }
  const pending = new Map();
  let next = 0;
  worker.onmessage = ({ data }) => {
    const job = pending.get(data.id);
    pending.delete(data.id);
    if (data.error === undefined) job.resolve(data);
    else job.reject(data.input ? new ImageInputError(data.error) : new Error(data.error));
  };
  worker.onerror = (event) => { // it did not start (a browser without module Workers): prepare on the page instead
    event.preventDefault();
    worker = null;
    for (const job of pending.values()) onPage(job.source).then(job.resolve, job.reject);
    pending.clear();
  };
  return (source) => worker ? new Promise((resolve, reject) => {
    const id = ++next;
    pending.set(id, { resolve, reject, source });
    worker.postMessage({ id, source, options }); // a frame is copied: kept for the fallback above
  }) : onPage(source);
}

const $ = (id) => document.getElementById(id);

async function main() {
  const status = $("status"), results = $("results"), hint = $("hint"), figure = $("preview-figure");
  const say = (text, isError = false) => {
    status.textContent = text;
    status.className = isError ? "error" : "";
  };
  let release, clf, stopCounting = () => {};
  try {
    release = await loadRelease();
    const bar = $("progress");
    stopCounting = countDownloads(release, (done, total) => {
      bar.hidden = false;
      bar.value = done / total;
      say(`Loading the model: ${Math.round((100 * done) / total)}% (${megabytes(done)} of ${megabytes(total)} MB)`);
    });
    clf = await Classifier.load(release.artifacts[release.default]);
    await clf.predict(new Uint8Array(release.side * release.side), 1); // warm-up: the first run compiles kernels
  } catch (err) {
    say(`The model could not be loaded (${err.message || err}). Reload the page while online once.`, true);
    return;
  } finally {
    stopCounting();
    $("progress").hidden = true;
  }
  registerWorker();
  noteUpdate(release);
  $("classes").textContent = `It knows ${release.class_names.length} kinds of garment: ` +
    `${release.class_names.join(", ")}. ` + (release.class_means ? "It says so when a photo looks like none of them."
                                                           : "Anything else gets the nearest of these.");
  const used = release.artifacts[release.default];
  $("model").textContent =
    `${release.default} of ${release.name} (${(used.bytes / 1024).toFixed(0)} KiB), ${used.runtime} (WebAssembly)`;
  try {
    await cacheTheRuntimeThisBrowserLoaded(release);
  } catch {
    // no cache (private browsing, storage full): the app still works online
  }
  // Ask for the latest sw.js once the page is up: Chromium's own check after a navigation can wait, and an update
  // check at start-up was dropped in testing, so a returning visitor kept the old build visit after visit.
  navigator.serviceWorker?.getRegistration().then((r) => r && r.update()).catch(() => {});
  const prepareInWorker = preparer(release);
  const means = loadMeans(release).catch(() => null); // the out-of-class rule's; without it, the nearest class
  let latest = 0; // only the latest choice may show: an earlier photo still decoding must not overwrite it
  // One photo or camera frame -> the answer on the page; resolves to the milliseconds it took (null: an error).
  const answer = async (source, name) => {
    const ticket = ++latest;
    if (!(source instanceof ImageBitmap)) {
      results.replaceChildren();
      figure.hidden = true;
      hint.hidden = true;
      say(`Reading ${name}...`);
    }
    window.fmnistLast = null;
    try {
      const t0 = performance.now();
      const { pixels, thumb } = await prepareInWorker(source);
      const t1 = performance.now();
      const probs = await clf.predict(pixels, 1);
      const t2 = performance.now();
      const classMeans = await means;
      if (ticket !== latest) return null;
      const ranked = topK(probs, release.class_names, 3);
      results.replaceChildren();
      show(results, ranked);
      const sure = ranked[0][1] >= release.photo.not_sure_below;
      const unknown = outOfClass(pixels, Array.from(probs), release, classMeans);
      const best = `${ranked[0][0]} (${(100 * ranked[0][1]).toFixed(0)}%)`;
      const timing = `${(t2 - t0).toFixed(0)} ms on this device (reading and preparing the photo ` +
                     `${(t1 - t0).toFixed(0)} ms, the model ${(t2 - t1).toFixed(1)} ms)`;
      // The live region says the answer itself: a screen reader user hears what the garment is, not only the timing.
      say(unknown ? `This does not look like one of the ${release.class_names.length} kinds ` +
                    `of garment it knows; the nearest is ${best}. ${timing}.`
        : sure ? `It looks like ${best}. ${name}: ${timing}.`
        : `Not sure what ${name} shows: the best guess is ${best}. ${timing}.`);
      hint.hidden = sure && !unknown;
      // What the model saw and said, for automation (the browser tests read it after using the file input).
      window.fmnistLast = { name, pixels: Array.from(pixels), probs: Array.from(probs), sure, unknown,
                            ms: t2 - t0, prepare_ms: t1 - t0, model_ms: t2 - t1 };
      $("preview").replaceChildren(previewOf(pixels, release.side));
      showThumbnail(thumb);
      figure.hidden = false;
      return t2 - t0;
    } catch (err) {
      if (ticket !== latest) return null;
      hint.hidden = !(err instanceof ImageInputError && /no garment/.test(err.message));
      say(err instanceof ImageInputError ? err.message : `Could not classify ${name}: ${err.message || err}`, true);
      return null;
    }
  };
  for (const input of [$("photo"), $("camera")]) {
    input.disabled = false;
    input.addEventListener("change", () => {
      const file = input.files[0];
      input.value = ""; // choosing the same file again must work again
      if (file) answer(file, file.name);
    });
  }
  liveCamera(answer, say);
  say("Ready: take or choose a photo of a garment.");
}

// The live view replaces "Take a photo" where the browser can open a camera; if it cannot (no camera, access
// refused), the page says so and the file inputs remain. A frame is classified on the shutter, or continuously when
// one answer takes under CONTINUOUS_MS on this device.
const CONTINUOUS_MS = 250;

function liveCamera(answer, say) {
  if (!cameraSupported()) return;
  const open = $("live"), view = $("camera-view"), video = $("video"), keep = $("continuous");
  let stream = null;
  open.hidden = false;
  $("camera").closest("label").hidden = true;
  const shoot = async () => {
    if (!stream || !video.videoWidth) return null;
    return answer(await grabFrame(video), "the camera's frame");
  };
  open.addEventListener("click", async () => {
    try {
      stream = await openCamera(video);
    } catch (err) {
      say(cameraTrouble(err), true);
      open.hidden = true;
      $("camera").closest("label").hidden = false;
      return;
    }
    view.hidden = false;
    open.hidden = true;
    const ms = await shoot();
    keep.closest("label").hidden = !(ms !== null && ms < CONTINUOUS_MS);
  });
  $("shutter").addEventListener("click", shoot);
  keep.addEventListener("change", async () => {
    while (keep.checked && stream) {
      const started = performance.now();
      await shoot();
      await new Promise((r) => setTimeout(r, Math.max(0, CONTINUOUS_MS - (performance.now() - started))));
    }
  });
  $("close-camera").addEventListener("click", () => {
    keep.checked = false;
    closeCamera(video, stream);
    stream = null;
    view.hidden = true;
    open.hidden = false;
  });
}

function show(results, ranked) {
  for (const [name, p] of ranked) {
    const li = document.createElement("li");
    li.innerHTML = `<span class="name"></span><span class="p">${(100 * p).toFixed(1)}%</span>` +
                   `<span class="bar" style="width:${(100 * p).toFixed(1)}%"></span>`;
    li.querySelector(".name").textContent = name;
    results.append(li);
  }
}

// The service worker precaches the app without the optional runtime builds; once the model runs, the ones this
// browser fetched are added to the same cache, so the next visit works offline.
async function cacheTheRuntimeThisBrowserLoaded(release) {
  if (!("caches" in window)) return;
  const fetched = new Set(performance.getEntriesByType("resource").map((e) => e.name));
  const used = release.optional.map((f) => new URL(f, location.href).href).filter((u) => fetched.has(u));
  if (used.length) await (await caches.open(`fmnist-edge-${release.digest}`)).addAll(used);
}

// The user's own photo beside the answer: the small copy the Worker made (no full-size decode on the page).
function showThumbnail(thumb) {
  const canvas = $("thumb");
  canvas.width = thumb.width;
  canvas.height = thumb.height;
  canvas.getContext("2d").drawImage(thumb, 0, 0);
  thumb.close();
}

function previewOf(pixels, side) {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = side;
  canvas.title = "what the model sees";
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", "the 28x28 image the model classified");
  const img = canvas.getContext("2d").createImageData(side, side);
  pixels.forEach((v, i) => img.data.set([v, v, v, 255], i * 4));
  canvas.getContext("2d").putImageData(img, 0, 0);
  return canvas;
}

// Registered once the model runs: the worker's install then finds every file the page loaded in the HTTP cache,
// so a first visit downloads each file once (registered at start, both would download them side by side).
function registerWorker() {
  if (!("serviceWorker" in navigator)) return;
  const hadController = Boolean(navigator.serviceWorker.controller);
  navigator.serviceWorker.register("./sw.js").catch(() => {});
  // A new build's worker took over this open page: its files are in use from the next visit on.
  navigator.serviceWorker.addEventListener("controllerchange", () => {
    if (!hadController) return; // the first install, not an update
    const note = $("updated");
    note.textContent = "A new version of this app was installed: it opens on your next visit (or reload now).";
    note.hidden = false;
  });
}

if (typeof document !== "undefined" && document.getElementById("photo")) main();
