// Offline after the first visit: every file of the app listed in release.json's `files` (written by
// `fmnist-edge app`) is cached on install and served from the cache first; the cache name carries the
// release's digest. The `optional` files (alternative runtime builds) are cached by the page, once it knows
// which one this browser loaded (app.mjs), so a phone downloads only the one it runs.
const RELEASE = new URL("./release.json", self.location).href;

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const release = await (await fetch(RELEASE, { cache: "no-store" })).json();
    const cache = await caches.open(`fmnist-edge-${release.digest}`);
    await cache.addAll(release.files.map((f) => new URL(f, self.location).href));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    const keep = (await caches.keys()).filter((k) => k.startsWith("fmnist-edge-"));
    const release = await (await caches.match(RELEASE))?.json();
    await Promise.all(keep.filter((k) => release && k !== `fmnist-edge-${release.digest}`).map((k) => caches.delete(k)));
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  event.respondWith(caches.match(event.request, { ignoreSearch: true }).then((hit) => hit || fetch(event.request)));
});
