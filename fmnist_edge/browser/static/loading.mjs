// Progress while the model and its runtime download: every fetch of a file release.json sizes is counted as it
// streams in (the runtimes fetch their WebAssembly and the model with the page's fetch), in the bytes the server
// sends (release.json's `sizes`: [bytes, bytes sent precompressed]), against `load_bytes`, the model plus the
// largest runtime build. Returns a function that stops counting.
export function countDownloads(release, show) {
  const sizes = new Map(Object.entries(release.sizes || {}).map(([f, s]) => [new URL(f, location.href).href, s]));
  const total = release.load_bytes || 0;
  let done = 0;
  const original = window.fetch;
  window.fetch = async (resource, init) => {
    const response = await original(resource, init);
    const size = sizes.get(new URL(resource.url || String(resource), location.href).href);
    if (!size || !response.body || !total) return response;
    const [bytes, sent] = size;
    let read = 0;
    const counted = response.body.pipeThrough(new TransformStream({
      transform(chunk, out) {
        const before = Math.min(read, bytes);
        read += chunk.byteLength;
        done += ((Math.min(read, bytes) - before) * sent) / bytes;
        show(Math.min(done, total), total);
        out.enqueue(chunk);
      },
    }));
    // The same status and headers (Content-Type: application/wasm for streaming compilation), the body counted.
    return new Response(counted, { status: response.status, statusText: response.statusText, headers: response.headers });
  };
  return () => { window.fetch = original; };
}

export const megabytes = (n) => (n / 1e6).toFixed(1);
