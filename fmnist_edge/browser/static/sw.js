// Offline after the first visit: every file of the app listed in release.json's `files` (written by
// `fmnist-edge app`) is cached on install and served from the cache first. `fmnist-edge app` writes each build's
// digest into BUILD below, so a re-deployed app's sw.js differs byte for byte: the browser installs the new worker
// on the next visit, which caches the new files, takes over and deletes the old build's cache (the page then says
// it was updated). The `optional` files (alternative runtime builds) are cached by the page, once it knows which
// one this browser loaded (app.mjs), so a phone downloads only the one it runs.
const BUILD = "__BUILD__";
const CACHE = `fmnist-edge-${BUILD}`;
const RELEASE = new URL("./release.json", self.location).href;

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const release = await (await fetch(RELEASE, { cache: "no-store" })).json();
    const cache = await caches.open(CACHE);
    await cache.addAll(release.files.map((f) => new Request(new URL(f, self.location).href, { cache: "no-store" })));
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
