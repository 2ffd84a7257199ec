// The page's face geometry as plain functions, the Predictor's written once more for the browser:
// CenterFace's box decoding (inference/faces/centerface.py: decode and CenterFaceDetector), the
// crop framing (Predictor.frame_crop with faces.expand_box and faces.align_face) and the box IoU
// (inference/tracking.py). Every number comes from the service's GET /v1/on-device description
// (`det` is its "detector", `framing` its "framing"); nothing here is a constant of a model or of
// the detector. An ES module: ondevice.js imports it in the page, and tests/test_ondevice_js.py
// runs it under Node against the Python functions on the same synthetic inputs.

// Python's round(): a half goes to the even neighbour (Math.round would always go up)
export function pyRound(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// faces.clip_box: rounded to whole pixels and clipped to the w x h frame; null when nothing is left
export function clipBox(x0, y0, x1, y1, w, h) {
  const b = [Math.max(0, pyRound(x0)), Math.max(0, pyRound(y0)), Math.min(w, pyRound(x1)), Math.min(h, pyRound(y1))];
  return b[2] > b[0] && b[3] > b[1] ? b : null;
}

// tracking.box_iou (and the overlap cv2.dnn.NMSBoxes measures on float boxes)
export function iou(a, b) {
  const ix = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const iy = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const area = (r) => Math.max(0, r[2] - r[0]) * Math.max(0, r[3] - r[1]);
  const inter = ix * iy, union = area(a) + area(b) - inter;
  return union > 0 ? inter / union : 0;
}

// CenterFaceDetector.blob's sizes for a w x h frame: shrunk (never enlarged) to det.max_side,
// padded right and bottom to multiples of det.multiple; sx, sy map network pixels back
export function detectorInput(w, h, det) {
  const s = Math.min(1, det.max_side / Math.max(w, h));
  const nw = Math.max(1, pyRound(w * s)), nh = Math.max(1, pyRound(h * s));
  const pw = Math.ceil(nw / det.multiple) * det.multiple, ph = Math.ceil(nh / det.multiple) * det.multiple;
  return {nw, nh, pw, ph, sx: nw / w, sy: nh / h};
}

// centerface.decode: the four outputs (flat, channel-major, rows x cols cells each) ->
// [{score, box: [x0, y0, x1, y1], points: [[x, y] x 5]}] in network pixels, best first, after
// non-maximum suppression
export function decode(out, rows, cols, det) {
  const {heatmap: hm, scale: sc, offset: off, landmarks: lm} = out;
  const n = rows * cols, points = lm.length / (2 * n), stride = det.stride, lim = det.log_scale_limit;
  const clampLog = (v) => Math.min(lim, Math.max(-lim, v));
  const found = [];
  for (let i = 0; i < n; i++) {
    if (!(hm[i] > det.min_score)) continue;
    const ys = Math.floor(i / cols), xs = i % cols;
    const bh = Math.exp(clampLog(sc[i])) * stride, bw = Math.exp(clampLog(sc[n + i])) * stride;
    const cy = (ys + off[i] + 0.5) * stride, cx = (xs + off[n + i] + 0.5) * stride;
    const x0 = cx - bw / 2, y0 = cy - bh / 2, at = [];  // landmarks: (y, x) fractions of the box
    for (let k = 0; k < points; k++) at.push([x0 + lm[(2 * k + 1) * n + i] * bw, y0 + lm[2 * k * n + i] * bh]);
    found.push({score: hm[i], box: [x0, y0, x0 + bw, y0 + bh], points: at});
  }
  found.sort((a, b) => b.score - a.score);  // stable, as cv2.dnn.NMSBoxes sorts
  const kept = [];
  for (const f of found) if (kept.every((k) => iou(k.box, f.box) <= det.nms_threshold)) kept.push(f);
  return kept;
}

// CenterFaceDetector.__call__ after decode: boxes and landmarks in frame pixels, boxes clipped to
// the frame, faces left to right, then top to bottom (faces.sort_faces)
export function toFrame(found, input, w, h) {
  const {sx, sy} = input, faces = [];
  for (const f of found) {
    const box = clipBox(f.box[0] / sx, f.box[1] / sy, f.box[2] / sx, f.box[3] / sy, w, h);
    if (box) faces.push({box, score: f.score, landmarks: f.points.map(([x, y]) => [x / sx, y / sy])});
  }
  return faces.sort((a, b) => a.box[0] - b.box[0] || a.box[1] - b.box[1]);
}

// faces.expand_box: squared on the longer side (if `square`), grown by margin x the side in all,
// clipped to the frame; null when nothing is left (Python raises)
export function expandBox(box, margin, w, h, square) {
  const cx = (box[0] + box[2]) / 2, cy = (box[1] + box[3]) / 2;
  let bw = box[2] - box[0], bh = box[3] - box[1];
  if (square) bw = bh = Math.max(bw, bh);
  bw *= 1 + margin; bh *= 1 + margin;
  return clipBox(cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2, w, h);
}

// Predictor.frame_crop as a plan: {box} for a plain crop of the frame, or {side, matrix} for
// faces.align_face's levelled crop (matrix: the 2 x 3 affine of cv2.getRotationMatrix2D about the
// box centre, moved so that the centre lands in the middle of a side x side crop)
export function framePlan(face, framing, w, h) {
  let box = face.box;
  if (framing.shift_y) {
    const dy = pyRound(framing.shift_y * (box[3] - box[1]));
    box = [box[0], box[1] + dy, box[2], box[3] + dy];
  }
  if (!(framing.align && face.landmarks)) return {box: expandBox(box, framing.margin, w, h, framing.square)};
  const [[lx, ly], [rx, ry]] = face.landmarks;
  const angle = Math.atan2(ry - ly, rx - lx) * 180 / Math.PI;
  if (Math.abs(angle) < framing.min_angle) return {box: expandBox(box, framing.margin, w, h, true)};
  const side = Math.max(1, pyRound(Math.max(box[2] - box[0], box[3] - box[1]) * (1 + framing.margin)));
  const cx = (box[0] + box[2]) / 2, cy = (box[1] + box[3]) / 2, r = angle * Math.PI / 180;
  const a = Math.cos(r), b = Math.sin(r);
  return {side, matrix: [
    [a, b, (1 - a) * cx - b * cy + side / 2 - cx],
    [-b, a, b * cx + (1 - a) * cy + side / 2 - cy],
  ]};
}
