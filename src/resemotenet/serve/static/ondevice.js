// On-device mode: the face detector (CenterFace) and the emotion model both run in this page with
// ONNX Runtime Web (vendored under /static/ort/, no CDN), so camera frames never leave the browser.
// Every step follows the service's Predictor (inference/centerface.py, inference/faces.py,
// preprocess.py) with the numbers the service hands over in GET /v1/on-device: detector input size
// and thresholds, the model card's framing (margin, square crop, vertical shift, eye alignment),
// preprocessing, temperature and the uncertainty threshold.
"use strict";

const OnDevice = (() => {
  let cfg = null, detector = null, model = null, threads = 1;
  const canvases = {};
  const canvas = (name, w, h) => {
    const c = canvases[name] || (canvases[name] = document.createElement("canvas"));
    if (c.width !== w) c.width = w;
    if (c.height !== h) c.height = h;
    return c;
  };
  const ctx = (c) => {
    const g = c.getContext("2d", {willReadFrequently: true});
    g.imageSmoothingEnabled = true; g.imageSmoothingQuality = "high";
    return g;
  };
  const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

  async function load(info, fetchBytes, say) {
    if (typeof ort === "undefined") throw new Error("ONNX Runtime Web did not load (/static/ort/)");
    ort.env.wasm.wasmPaths = "/static/ort/";
    // one thread: the page is not cross-origin isolated (with COOP/COEP headers and several
    // threads, ONNX Runtime Web 1.31 never finished loading the detector in headless Chromium)
    ort.env.wasm.numThreads = 1;
    const opts = {executionProviders: ["wasm"], graphOptimizationLevel: "all"};
    say("loading the face detector into this page...");
    detector = await ort.InferenceSession.create(new Uint8Array(await fetchBytes(info.detector.url)), opts);
    say("loading the emotion model into this page (the service converts it to ONNX on first use)...");
    model = await ort.InferenceSession.create(new Uint8Array(await fetchBytes(info.model.url)), opts);
    cfg = info;
    tracks = []; nextId = 1; step = 0;
    threads = ort.env.wasm.numThreads;
  }

  // ---- detection: CenterFace, decoded as inference/centerface.py decodes it ------------------------
  async function detect(frame, w, h) {
    const d = cfg.detector, stride = d.stride, multiple = d.multiple;
    const s = Math.min(1, d.max_side / Math.max(w, h));
    const nw = Math.max(1, Math.round(w * s)), nh = Math.max(1, Math.round(h * s));
    const pw = Math.ceil(nw / multiple) * multiple, ph = Math.ceil(nh / multiple) * multiple;
    const c = canvas("detect", nw, nh), g = ctx(c);
    g.drawImage(frame, 0, 0, nw, nh);
    const px = g.getImageData(0, 0, nw, nh).data, plane = ph * pw;
    const x = new Float32Array(3 * plane);  // black padding right and bottom keeps the scale uniform
    for (let yy = 0; yy < nh; yy++) {
      for (let xx = 0; xx < nw; xx++) {
        const i = (yy * nw + xx) * 4, o = yy * pw + xx;
        x[o] = px[i]; x[plane + o] = px[i + 1]; x[2 * plane + o] = px[i + 2];
      }
    }
    const out = await detector.run({[detector.inputNames[0]]: new ort.Tensor("float32", x, [1, 3, ph, pw])});
    const [hm, sc, off, lm] = d.outputs.map((name) => out[name].data);
    const W = out[d.outputs[0]].dims[3], n = out[d.outputs[0]].dims[2] * W;
    const sx = nw / w, sy = nh / h, found = [];
    for (let i = 0; i < n; i++) {
      if (!(hm[i] > d.min_score)) continue;
      const ys = Math.floor(i / W), xs = i % W;
      const bh = Math.exp(clamp(sc[i], -20, 20)) * stride, bw = Math.exp(clamp(sc[n + i], -20, 20)) * stride;
      const cy = (ys + off[i] + 0.5) * stride, cx = (xs + off[n + i] + 0.5) * stride;
      const x0 = cx - bw / 2, y0 = cy - bh / 2, points = [];
      for (let k = 0; k < 5; k++) points.push([(x0 + lm[(2 * k + 1) * n + i] * bw) / sx, (y0 + lm[2 * k * n + i] * bh) / sy]);
      found.push({score: hm[i], raw: [x0, y0, x0 + bw, y0 + bh], points});
    }
    found.sort((a, b) => b.score - a.score);
    const kept = [];
    for (const f of found) if (kept.every((k) => iou(k.raw, f.raw) <= d.nms_threshold)) kept.push(f);
    const faces = [];
    for (const f of kept) {
      const box = clip(f.raw[0] / sx, f.raw[1] / sy, f.raw[2] / sx, f.raw[3] / sy, w, h);
      if (box) faces.push({box, score: f.score, landmarks: f.points});
    }
    return faces.sort((a, b) => a.box[0] - b.box[0] || a.box[1] - b.box[1]);
  }

  function clip(x0, y0, x1, y1, w, h) {
    const b = [Math.max(0, Math.round(x0)), Math.max(0, Math.round(y0)), Math.min(w, Math.round(x1)), Math.min(h, Math.round(y1))];
    return b[2] > b[0] && b[3] > b[1] ? b : null;
  }

  function iou(a, b) {
    const ix = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
    const iy = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
    const inter = ix * iy, union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    return union > 0 ? inter / union : 0;
  }

  // ---- framing: faces.expand_box and faces.align_face ------------------------------------------
  function expandBox(box, margin, w, h, square) {
    const cx = (box[0] + box[2]) / 2, cy = (box[1] + box[3]) / 2;
    let bw = box[2] - box[0], bh = box[3] - box[1];
    if (square) bw = bh = Math.max(bw, bh);
    bw *= 1 + margin; bh *= 1 + margin;
    return clip(cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2, w, h);
  }

  // draws the model's view of one face (size x size) into the "input" canvas; a crop larger than
  // preprocess.source_size is first drawn at that side (preprocess.resize_face's reduce_to)
  function frameFace(frame, w, h, face) {
    const f = cfg.framing, size = cfg.preprocess.size, src = cfg.preprocess.source_size;
    const reduce = src && src < size ? src : 0;
    let box = face.box;
    if (f.shift_y) {
      const dy = Math.round(f.shift_y * (box[3] - box[1]));
      box = [box[0], box[1] + dy, box[2], box[3] + dy];
    }
    const input = canvas("input", size, size);
    ctx(input).clearRect(0, 0, size, size);
    let side = size, gi = ctx(input);
    const reduceFrom = (cropSide) => {  // crops larger than source_size are drawn at that side first
      if (!reduce || cropSide <= reduce) return;
      side = reduce;
      gi = ctx(canvas("reduced", side, side));
      gi.imageSmoothingQuality = "high";
      gi.clearRect(0, 0, side, side);
    };
    const [[lx, ly], [rx, ry]] = face.landmarks;
    const angle = Math.atan2(ry - ly, rx - lx) * 180 / Math.PI;
    if (f.align && Math.abs(angle) >= f.min_angle) {
      const rs = Math.max(1, Math.round(Math.max(box[2] - box[0], box[3] - box[1]) * (1 + f.margin)));
      const cx = (box[0] + box[2]) / 2, cy = (box[1] + box[3]) / 2, r = angle * Math.PI / 180;
      const a = Math.cos(r), b = Math.sin(r);  // cv2.getRotationMatrix2D((cx, cy), angle, 1)
      const c = canvas("rotated", rs, rs), g = ctx(c);
      g.setTransform(1, 0, 0, 1, 0, 0); g.clearRect(0, 0, rs, rs);
      g.setTransform(a, -b, b, a, (1 - a) * cx - b * cy + rs / 2 - cx, b * cx + (1 - a) * cy + rs / 2 - cy);
      g.drawImage(frame, 0, 0, w, h);
      g.setTransform(1, 0, 0, 1, 0, 0);
      reduceFrom(rs);
      gi.drawImage(c, 0, 0, side, side);
    } else {
      const e = expandBox(box, f.margin, w, h, f.align || f.square);  // align_face's plain crop is square
      if (!e) return false;
      reduceFrom(Math.min(e[2] - e[0], e[3] - e[1]));
      gi.drawImage(frame, e[0], e[1], e[2] - e[0], e[3] - e[1], 0, 0, side, side);
    }
    if (side !== size) ctx(input).drawImage(gi.canvas, 0, 0, side, side, 0, 0, size, size);
    return true;
  }

  // ---- classification: preprocess.py, then softmax(logits / temperature) -------------------------
  async function classify(frame, w, h, faces) {
    const p = cfg.preprocess, size = p.size, C = p.channels, per = C * size * size;
    const kept = [], x = new Float32Array(faces.length * per);
    for (const face of faces) {
      if (!frameFace(frame, w, h, face)) continue;
      const px = ctx(canvas("input", size, size)).getImageData(0, 0, size, size).data, base = kept.length * per;
      for (let i = 0; i < size * size; i++) {
        const r = px[4 * i] / 255, g = px[4 * i + 1] / 255, b = px[4 * i + 2] / 255;
        if (C === 1) x[base + i] = (0.299 * r + 0.587 * g + 0.114 * b - p.mean[0]) / p.std[0];
        else [r, g, b].forEach((v, ch) => { x[base + ch * size * size + i] = (v - p.mean[ch]) / p.std[ch]; });
      }
      kept.push(face);
    }
    if (!kept.length) return [];
    const out = await model.run({[model.inputNames[0]]: new ort.Tensor("float32", x.subarray(0, kept.length * per), [kept.length, C, size, size])});
    const logits = out[model.outputNames[0]].data, K = cfg.labels.length, probs = [];
    for (let n = 0; n < kept.length; n++) {
      const z = Array.from(logits.subarray(n * K, (n + 1) * K), (v) => v / cfg.temperature), m = Math.max(...z);
      const e = z.map((v) => Math.exp(v - m)), sum = e.reduce((a, b) => a + b, 0);
      probs.push(e.map((v) => v / sum));
    }
    return kept.map((face, n) => ({face, probs: probs[n]}));
  }

  // ---- tracking: predictor.IoUTracker (greedy IoU matching, EMA of the probabilities) ------------
  let tracks = [], nextId = 1, step = 0;
  function track(items) {
    step += 1;
    const pairs = [];
    tracks.forEach((t, ti) => items.forEach((it, bi) => pairs.push([iou(t.box, it.face.box), ti, bi])));
    pairs.sort((a, b) => b[0] - a[0]);
    const match = new Map(), used = new Set();
    for (const [score, ti, bi] of pairs) {
      if (score < 0.3) break;
      if (!match.has(bi) && !used.has(ti)) { match.set(bi, ti); used.add(ti); }
    }
    const a = cfg.smoothing;
    const out = items.map((it, bi) => {
      let t;
      if (match.has(bi)) {
        t = tracks[match.get(bi)];
        t.probs = t.probs.map((v, k) => a * v + (1 - a) * it.probs[k]);
        t.box = it.face.box; t.last = step;
      } else {
        t = {id: nextId++, box: it.face.box, probs: it.probs.slice(), last: step};
        tracks.push(t);
      }
      return {face: it.face, probs: t.probs, track: t.id};
    });
    tracks = tracks.filter((t) => step - t.last < 10);
    return out;
  }

  function result(it) {
    const order = it.probs.map((v, k) => k).sort((a, b) => it.probs[b] - it.probs[a]);
    const score = it.probs[order[0]], uncertain = score < cfg.min_confidence;
    const probabilities = {};
    cfg.labels.forEach((l, k) => { probabilities[l] = it.probs[k]; });
    return {
      box: it.face.box, label: uncertain ? "uncertain" : cfg.labels[order[0]], score, probabilities,
      top2: uncertain ? order.slice(0, 2).map((k) => [cfg.labels[k], it.probs[k]]) : null,
      uncertain, track: it.track,
    };
  }

  // one camera frame -> the faces, as the service's WebSocket would answer
  async function analyse(video) {
    const t0 = performance.now(), w = video.videoWidth, h = video.videoHeight;
    const frame = canvas("frame", w, h);
    ctx(frame).drawImage(video, 0, 0, w, h);
    const faces = await detect(frame, w, h);
    const items = track(await classify(frame, w, h, faces));
    return {faces: items.map(result), width: w, height: h, ms: Math.round((performance.now() - t0) * 10) / 10};
  }

  return {load, analyse, ready: () => cfg !== null, threads: () => threads};
})();
