// On-device mode: the face detector (CenterFace) and the emotion model both run in this page with
// ONNX Runtime Web (vendored under /static/ort/, no CDN), so camera frames never leave the browser.
// Every step follows the service's Predictor: the box decoding and the crop framing are the plain
// functions of geometry.js (tested against the Python ones under Node), and every number (detector
// input size and thresholds, the model card's framing, preprocessing, temperature, the uncertainty
// threshold, the tracker's) comes from the service's GET /v1/on-device: this file keeps none.
// An ES module; app.js finds it as window.OnDevice.
import {decode, detectorInput, framePlan, iou, toFrame} from "./geometry.js";

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

  // ---- detection: CenterFace, decoded as inference/faces/centerface.py decodes it ---------------
  async function detect(frame, w, h) {
    const d = cfg.detector, size = detectorInput(w, h, d), {nw, nh, pw, ph} = size;
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
    const [heatmap, scale, offset, landmarks] = d.outputs.map((name) => out[name].data);
    const [rows, cols] = out[d.outputs[0]].dims.slice(2);
    return toFrame(decode({heatmap, scale, offset, landmarks}, rows, cols, d), size, w, h);
  }

  // ---- framing: Predictor.frame_crop (geometry.framePlan), then preprocess.resize_face ----------
  // draws the model's view of one face (size x size) into the "input" canvas; a crop larger than
  // preprocess.source_size is first drawn at that side (preprocess.resize_face's reduce_to)
  function frameFace(frame, w, h, face) {
    const size = cfg.preprocess.size, src = cfg.preprocess.source_size;
    const reduce = src && src < size ? src : 0;
    const plan = framePlan(face, cfg.framing, w, h);
    let from, fx = 0, fy = 0, fw, fh;
    if (plan.matrix) {  // the frame turned about the box centre until the eyes are level
      const [[a, b, e], [c, d, f]] = plan.matrix, rs = plan.side;
      from = canvas("rotated", rs, rs);
      const g = ctx(from);
      g.setTransform(1, 0, 0, 1, 0, 0); g.clearRect(0, 0, rs, rs);
      g.setTransform(a, c, b, d, e, f);
      g.drawImage(frame, 0, 0, w, h);
      g.setTransform(1, 0, 0, 1, 0, 0);
      fw = fh = rs;
    } else {
      if (!plan.box) return false;
      from = frame; [fx, fy] = plan.box; fw = plan.box[2] - fx; fh = plan.box[3] - fy;
    }
    const input = canvas("input", size, size), gi = ctx(input);
    gi.clearRect(0, 0, size, size);
    if (reduce && Math.min(fw, fh) > reduce) {  // crops larger than source_size are drawn at that side first
      const r = canvas("reduced", reduce, reduce), gr = ctx(r);
      gr.clearRect(0, 0, reduce, reduce);
      gr.drawImage(from, fx, fy, fw, fh, 0, 0, reduce, reduce);
      gi.drawImage(r, 0, 0, reduce, reduce, 0, 0, size, size);
    } else {
      gi.drawImage(from, fx, fy, fw, fh, 0, 0, size, size);
    }
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
        if (C === 1) x[base + i] = (p.luma[0] * r + p.luma[1] * g + p.luma[2] * b - p.mean[0]) / p.std[0];
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

  // ---- tracking: tracking.IoUTracker (greedy IoU matching, EMA of the probabilities) ------------
  let tracks = [], nextId = 1, step = 0;
  function track(items) {
    step += 1;
    const pairs = [];
    tracks.forEach((t, ti) => items.forEach((it, bi) => pairs.push([iou(t.box, it.face.box), ti, bi])));
    pairs.sort((a, b) => b[0] - a[0] || b[1] - a[1] || b[2] - a[2]);  // Python's sorted(reverse=True)
    const match = new Map(), used = new Set();
    for (const [score, ti, bi] of pairs) {
      if (score < cfg.tracker.iou_threshold) break;
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
    tracks = tracks.filter((t) => step - t.last < cfg.tracker.max_age);
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

window.OnDevice = OnDevice;
