// The live camera view: the rear camera in a square viewfinder with a framing guide, and the frame inside the guide
// as the photo to classify. The guide is what the conversion expects: one garment with some plain background around
// it (the background is modelled from the border of what is classified).
export const GUIDE = 0.9; // the guide's side, as a fraction of the frame's short side (style.css: .guide, inset 5%)

export function cameraSupported() {
  return Boolean(globalThis.isSecureContext && navigator.mediaDevices && navigator.mediaDevices.getUserMedia);
}

// Opens the rear camera (any camera where there is none) into `video`; returns the stream.
export async function openCamera(video) {
  const stream = await navigator.mediaDevices.getUserMedia({
    video: { facingMode: { ideal: "environment" }, width: { ideal: 1280 }, height: { ideal: 720 } }, audio: false });
  video.srcObject = stream;
  await video.play();
  return stream;
}

export function closeCamera(video, stream) {
  for (const track of stream ? stream.getTracks() : []) track.stop();
  video.srcObject = null;
}

// The current frame inside the guide (a centred square): the viewfinder shows the frame's central square
// (object-fit: cover in a square box), and the guide is GUIDE of it.
export function grabFrame(video) {
  const w = video.videoWidth, h = video.videoHeight;
  const side = Math.floor(GUIDE * Math.min(w, h));
  return createImageBitmap(video, (w - side) >> 1, (h - side) >> 1, side, side);
}

// Why the camera could not be opened, in words, with the way round it.
export function cameraTrouble(err) {
  const why = { NotAllowedError: "camera access was not allowed", NotFoundError: "this device has no camera",
                NotReadableError: "another app is using the camera" }[err && err.name] || `${err && (err.message || err)}`;
  return `The live camera could not be opened (${why}). Use "Take a photo" or "Choose a photo" instead.`;
}
