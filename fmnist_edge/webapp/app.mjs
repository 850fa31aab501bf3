// The fmnist-edge web app: classify a photo on the phone, offline, with the release's own files.
// `Classifier` is also what `fmnist-edge verify --browser` drives, so the page and the proof share one path.
import * as ort from "./ort/ort.wasm.min.mjs";
import { ImageInputError, photoToInput } from "./preprocess.mjs";

ort.env.wasm.wasmPaths = new URL("./ort/", import.meta.url).href;
ort.env.wasm.numThreads = 1; // threads need cross-origin isolation, and gave no speed-up on 2 cores (STACK.md)

export async function loadRelease() {
  const response = await fetch(new URL("./release.json", import.meta.url));
  if (!response.ok) throw new Error(`release.json: HTTP ${response.status}`);
  return response.json();
}

export class Classifier {
  static async load(artifact) {
    const session = await ort.InferenceSession.create(new URL(artifact.model, import.meta.url).href,
                                                      { executionProviders: ["wasm"] });
    return new Classifier(artifact, session);
  }

  constructor(artifact, session) {
    this.artifact = artifact;
    this.session = session;
  }

  // uint8 pixels of n 28x28 images (light garment on dark) -> n x classes probabilities. The model input is
  // pixel / inputScale (the manifest's preprocessing: 255, inputs in [0, 1]), float32, NHWC.
  async predict(pixels, n) {
    const { side, input_scale: scale, input_name: inputName, output_name: outputName } = this.artifact;
    const x = new Float32Array(n * side * side);
    for (let i = 0; i < x.length; i++) x[i] = pixels[i] / scale;
    const result = await this.session.run({ [inputName]: new ort.Tensor("float32", x, [n, side, side, 1]) });
    return result[outputName].data;
  }
}

function topK(probs, names, k) {
  return [...probs].map((p, i) => [names[i], p]).sort((a, b) => b[1] - a[1]).slice(0, k);
}

async function main() {
  const status = document.getElementById("status");
  const results = document.getElementById("results");
  const input = document.getElementById("photo");
  const say = (text, isError = false) => {
    status.textContent = text;
    status.className = isError ? "error" : "";
  };
  let release, clf;
  try {
    release = await loadRelease();
    clf = await Classifier.load(release.artifacts[release.default]);
    await clf.predict(new Uint8Array(release.side * release.side), 1); // warm-up: the first run compiles kernels
  } catch (err) {
    say(`The model could not be loaded (${err.message || err}). Reload the page while online once.`, true);
    return;
  }
  document.getElementById("model").textContent =
    `${release.default} of ${release.name} (${(release.artifacts[release.default].bytes / 1024).toFixed(0)} KiB), ` +
    `ONNX Runtime Web ${ort.env.versions?.web || ""} (WebAssembly)`;
  say("Ready: take or choose a photo of a garment.");
  input.disabled = false;
  input.addEventListener("change", async () => {
    const file = input.files[0];
    if (!file) return;
    results.replaceChildren();
    window.fmnistLast = null;
    say(`Reading ${file.name}...`);
    try {
      const pixels = await photoToInput(file, { maxPixels: release.max_pixels, side: release.side });
      const t0 = performance.now();
      const probs = await clf.predict(pixels, 1);
      const ms = performance.now() - t0;
      for (const [name, p] of topK(probs, release.class_names, 3)) {
        const li = document.createElement("li");
        li.innerHTML = `<span class="name"></span><span class="p">${(100 * p).toFixed(1)}%</span>` +
                       `<span class="bar" style="width:${(100 * p).toFixed(1)}%"></span>`;
        li.querySelector(".name").textContent = name;
        results.append(li);
      }
      say(`${file.name}: ${ms.toFixed(1)} ms on this device (${release.default}).`);
      // What the model saw and said, for automation (the browser tests read it after using the file input).
      window.fmnistLast = { name: file.name, pixels: Array.from(pixels), probs: Array.from(probs), ms };
      document.getElementById("preview").replaceChildren(previewOf(pixels, release.side));
    } catch (err) {
      say(err instanceof ImageInputError ? err.message : `Could not classify ${file.name}: ${err.message || err}`, true);
    }
  });
}

function previewOf(pixels, side) {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = side;
  canvas.title = "what the model sees";
  const img = canvas.getContext("2d").createImageData(side, side);
  pixels.forEach((v, i) => img.data.set([v, v, v, 255], i * 4));
  canvas.getContext("2d").putImageData(img, 0, 0);
  return canvas;
}

if (typeof document !== "undefined" && document.getElementById("photo")) {
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("./sw.js").catch(() => {});
  main();
}
