// The page's Worker: decoding a photo and preparing the model's input take 0.4-1.8 s on a 12-50 MP phone photo,
// which on the main thread froze the page. A message {id, source: File | ImageBitmap, options} is answered with
// {id, pixels, thumb} (preprocess.mjs's prepare) or {id, error, input: whether it is the photo's fault}.
import { ImageInputError, prepare } from "./preprocess.mjs";

self.onmessage = async ({ data: { id, source, options } }) => {
  try {
    const { pixels, thumb } = await prepare(source, options);
    self.postMessage({ id, pixels, thumb }, [pixels.buffer, thumb]);
  } catch (err) {
    self.postMessage({ id, error: String(err.message || err), input: err instanceof ImageInputError });
  }
};
