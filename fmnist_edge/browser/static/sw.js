// Offline after the first visit: every file of the app listed in release.json's `files` (written by
// `fmnist-edge app`) is cached on install and served from the cache first. `fmnist-edge app` writes each build's
// digest into BUILD below, so a re-deployed app's sw.js differs byte for byte: the browser installs the new worker
// on the next visit, which caches the new files, takes over and deletes the old build's cache (the page then says
// it was updated). The `optional` files (the runtimes' WebAssembly) are cached by the page, once it knows which
// build this browser loaded (app.mjs), so a phone downloads only the one it runs.
// Each file is downloaded once: the worker takes the copy the page just loaded (the HTTP cache) when its sha256 is
// the one release.json lists, and asks the server again only when it is not (a stale copy from an earlier build).
// An update carries over the runtime build cached under the previous build when it is the same file, so the first
// offline visit after an update can still load the model.
const BUILD = "__BUILD__";
const CACHE = `fmnist-edge-${BUILD}`;
const RELEASE = new URL("./release.json", self.location).href;

async function sha256(response) {
  const digest = await crypto.subtle.digest("SHA-256", await response.arrayBuffer());
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function store(cache, file, digest) {
  const url = new URL(file, self.location).href;
  let response = digest ? await fetch(url) : null;
  if (!response || !response.ok || (await sha256(response.clone())) !== digest) {
    response = await fetch(url, { cache: "no-store" });
  }
  if (!response.ok) throw new Error(`${file}: HTTP ${response.status}`);
  await cache.put(url, response);
}

async function carryOver(cache, file, digest) {
  const url = new URL(file, self.location).href;
  const earlier = await caches.match(url); // any cache: the previous build's holds what its page loaded
  if (earlier && (await sha256(earlier.clone())) === digest) await cache.put(url, earlier);
}

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const release = await (await fetch(RELEASE, { cache: "no-store" })).json();
    const cache = await caches.open(CACHE);
    await Promise.all(release.files.map((f) => store(cache, f, release.sha256[f])));
    await Promise.all(release.optional.map((f) => carryOver(cache, f, release.sha256[f])));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    const old = (await caches.keys()).filter((k) => k.startsWith("fmnist-edge-") && k !== CACHE);
    await Promise.all(old.map((k) => caches.delete(k)));
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    return (await cache.match(event.request, { ignoreSearch: true })) || fetch(event.request);
  })());
});
