// The resemotenet page: Live (camera -> WebSocket -> boxes, or on-device: ondevice.js), Jobs, Review.
// No build step, no CDN.
"use strict";

const COLORS = {angry: "#e62828", disgust: "#78aa28", fear: "#963cc8", happy: "#fac800", sad: "#286ee6",
  surprise: "#fa8200", neutral: "#c8c8c8", contempt: "#a0643c", uncertain: "#ffffff"};
const $ = (id) => document.getElementById(id);
const state = {labels: [], minConfidence: 0, ws: null, stream: null, history: [], review: null, mode: null, deviceRun: false};

// ---- API access: the token (if any) rides in a header, never in a URL ----------------------------
const tokenInput = $("token");
tokenInput.value = sessionStorage.getItem("resemotenet-token") || "";
tokenInput.addEventListener("change", () => { sessionStorage.setItem("resemotenet-token", tokenInput.value); refreshAll(); });

function headers(extra) {
  const h = Object.assign({}, extra || {});
  if (tokenInput.value) h["Authorization"] = "Bearer " + tokenInput.value;
  return h;
}

async function api(path, opts) {
  opts = opts || {};
  const r = await fetch(path, Object.assign({}, opts, {headers: headers(opts.headers)}));
  if (!r.ok) {
    let msg = r.status + " " + r.statusText;
    try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
    const err = new Error(msg); err.status = r.status; throw err;
  }
  return r;
}
const apiJson = async (path, opts) => (await api(path, opts)).json();

async function download(path, name) {
  const blob = await (await api(path)).blob();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob); a.download = name; a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 5000);
}

// ---- tabs --------------------------------------------------------------------------------------
let activeTab = "live";
document.querySelectorAll(".tab").forEach((b) => b.addEventListener("click", () => {
  activeTab = b.dataset.tab;
  document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t === b));
  document.querySelectorAll(".panel").forEach((p) => { p.hidden = p.id !== activeTab; });
  if (activeTab === "review") { loadReview(); loadFinetune(); compareReview(); }
  if (activeTab === "jobs") loadJobs();
}));

async function refreshAll() {
  try {
    const m = (await apiJson("/v1/models")).models[0];
    state.labels = m.labels; state.minConfidence = m.min_confidence;
    $("status").textContent = `model ${m.weights || m.name}, uncertain below ${m.min_confidence}`;
    $("ft-served").textContent = `served now: ${m.weights || m.name}`;
    legend($("live-legend")); legend($("timeline-legend"));
  } catch (e) {
    $("status").textContent = e.status === 401 ? "enter the API token" : "service: " + e.message;
  }
}

function legend(el) {
  el.innerHTML = "";
  for (const l of state.labels.concat(["uncertain"])) {
    const s = document.createElement("span");
    s.innerHTML = `<i style="background:${COLORS[l] || "#0f0"}"></i>${l}`;
    el.appendChild(s);
  }
}

// ---- Live --------------------------------------------------------------------------------------
const video = $("video"), overlay = $("overlay"), grab = document.createElement("canvas");

$("live-start").addEventListener("click", startLive);
$("live-stop").addEventListener("click", stopLive);

const liveMode = $("live-mode");
liveMode.addEventListener("change", () => {
  $("mode-server").hidden = liveMode.value !== "server"; $("mode-device").hidden = liveMode.value !== "device";
});

async function startLive() {
  $("live-start").disabled = true;
  const onDevice = liveMode.value === "device";
  if (onDevice && !(window.OnDevice && OnDevice.ready())) {
    try {
      if (!window.OnDevice) throw new Error("its script (/static/ondevice.js, an ES module) did not load");
      const info = await apiJson("/v1/on-device");
      await OnDevice.load(info, async (url) => (await api(url)).arrayBuffer(), (m) => { $("live-info").textContent = m; });
    } catch (e) {
      $("live-info").textContent = "on-device mode: " + e.message; $("live-start").disabled = false; return;
    }
  }
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({video: {width: 640, height: 480}, audio: false});
  } catch (e) { $("live-info").textContent = "camera: " + e.message; $("live-start").disabled = false; return; }
  video.srcObject = state.stream;
  await video.play();
  state.mode = onDevice ? "device" : "server";
  $("live-stop").disabled = false; liveMode.disabled = true;
  if (onDevice) { state.deviceRun = true; deviceLoop(); return; }
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${proto}//${location.host}/v1/live`);
  ws.binaryType = "arraybuffer";
  state.ws = ws;
  ws.onopen = () => ws.send(JSON.stringify({token: tokenInput.value || null}));
  ws.onmessage = (ev) => onLiveMessage(JSON.parse(ev.data));
  ws.onclose = (ev) => { $("live-info").textContent = "connection closed" + (ev.reason ? ": " + ev.reason : ""); };
}

async function deviceLoop() {
  while (state.deviceRun) {
    if (video.videoWidth) {
      try { showFaces(await OnDevice.analyse(video), `in this browser (${OnDevice.threads()} thread(s))`); } catch (e) {
        $("live-info").textContent = "on-device analysis: " + e.message; state.deviceRun = false; break;
      }
    }
    await new Promise((r) => requestAnimationFrame(r));
  }
}

function stopLive() {
  state.deviceRun = false;
  if (state.ws) state.ws.close();
  if (state.stream) state.stream.getTracks().forEach((t) => t.stop());
  state.ws = state.stream = null;
  $("live-start").disabled = false; $("live-stop").disabled = true; liveMode.disabled = false;
}

function sendFrame() {
  const ws = state.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN || !video.videoWidth) return;
  const scale = Math.min(1, 640 / video.videoWidth);
  grab.width = Math.round(video.videoWidth * scale); grab.height = Math.round(video.videoHeight * scale);
  grab.getContext("2d").drawImage(video, 0, 0, grab.width, grab.height);
  grab.toBlob((b) => b && b.arrayBuffer().then((buf) => ws.readyState === WebSocket.OPEN && ws.send(buf)),
    "image/jpeg", 0.85);
}

let lastFrameAt = 0;
function onLiveMessage(msg) {
  if (msg.ready) { state.labels = msg.labels; state.minConfidence = msg.min_confidence; sendFrame(); return; }
  if (msg.error && !msg.faces) { $("live-info").textContent = msg.error; if (!state.ws) return; }
  if (msg.faces) showFaces(msg, "on the server");
  requestAnimationFrame(sendFrame);  // the next frame only after this answer: no backlog
}

function showFaces(msg, where) {
  state.lastFaces = msg.faces;
  drawFaces(msg.faces, msg.width, msg.height);
  state.history.push({t: performance.now() / 1000, labels: msg.faces.map((f) => f.label)});
  drawLiveChart();
  const now = performance.now();
  const fps = lastFrameAt ? 1000 / (now - lastFrameAt) : 0;
  lastFrameAt = now;
  $("live-info").textContent = `${msg.faces.length} face(s), ${msg.ms} ms ${where}, ${fps.toFixed(1)} frames/s`;
}

const pct = (p) => `${Math.round(p * 100)} %`;

function faceText(f) {  // uncertain faces: the two candidates with their probabilities
  if (f.uncertain && f.top2) return `uncertain? ${f.top2[0][0]} ${pct(f.top2[0][1])} / ${f.top2[1][0]} ${pct(f.top2[1][1])}`;
  return `${f.label} ${f.score.toFixed(2)}` + (f.track != null ? ` #${f.track}` : "");
}

function drawFaces(faces, w, h) {
  overlay.width = w; overlay.height = h;
  const g = overlay.getContext("2d");
  g.clearRect(0, 0, w, h);
  g.lineWidth = Math.max(2, w / 240);
  g.font = `${Math.max(14, Math.round(w / 40))}px sans-serif`;
  for (const f of faces) {
    const [x0, y0, x1, y1] = f.box, color = COLORS[f.label] || "#0f0";
    g.setLineDash(f.uncertain ? [8, 6] : []);
    g.strokeStyle = color;
    g.strokeRect(x0, y0, x1 - x0, y1 - y0);
    const text = faceText(f), tw = g.measureText(text).width, th = parseInt(g.font, 10) + 6;
    const ty = y0 - th >= 0 ? y0 - th : y1;
    g.setLineDash([]);
    g.fillStyle = color; g.fillRect(x0, ty, tw + 8, th);
    g.fillStyle = "#000"; g.fillText(text, x0 + 4, ty + th - 6);
  }
}

function stackedBars(canvas, bins, gaps, t0, t1) {
  // bins: [{start, end, shares: {label: share}}]; gaps: [{start, end}] drawn grey (no frames)
  const g = canvas.getContext("2d"), W = canvas.width, H = canvas.height, span = Math.max(t1 - t0, 1e-6);
  g.clearRect(0, 0, W, H);
  const x = (t) => ((t - t0) / span) * W;
  g.fillStyle = "#444";
  for (const gap of gaps || []) g.fillRect(x(gap.start), 0, Math.max(2, x(gap.end == null ? t1 : gap.end) - x(gap.start)), H);
  for (const b of bins) {
    let y = H;
    for (const l of state.labels.concat(["uncertain"])) {
      const share = b.shares[l] || 0;
      if (!share) continue;
      g.fillStyle = COLORS[l] || "#0f0";
      const bh = share * (H - 14);
      g.fillRect(x(b.start) + 1, y - bh, Math.max(1, x(b.end) - x(b.start) - 2), bh);
      y -= bh;
    }
  }
  g.fillStyle = "#888"; g.font = "11px sans-serif";
  g.fillText(`${t0.toFixed(0)} s`, 2, 11); g.fillText(`${t1.toFixed(0)} s`, W - 40, 11);
}

function drawLiveChart() {
  const now = performance.now() / 1000, width = 2;
  state.history = state.history.filter((h) => h.t > now - 60);
  const bins = new Map();
  for (const h of state.history) {
    const k = Math.floor(h.t / width);
    const c = bins.get(k) || {}; bins.set(k, c);
    for (const l of h.labels) c[l] = (c[l] || 0) + 1;
  }
  const out = [];
  for (const [k, c] of bins) {
    const n = Object.values(c).reduce((a, b) => a + b, 0);
    if (!n) continue;
    const shares = {}; for (const l in c) shares[l] = c[l] / n;
    out.push({start: k * width - (now - 60), end: (k + 1) * width - (now - 60), shares});
  }
  stackedBars($("live-chart"), out, [], 0, 60);
}

// ---- Jobs --------------------------------------------------------------------------------------
$("job-start").addEventListener("click", async () => {
  const raw = $("job-source").value.trim();
  const source = /^\d+$/.test(raw) ? parseInt(raw, 10) : raw;
  await jobCall(() => apiJson("/v1/jobs", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({source, stride: parseInt($("job-stride").value, 10) || 1})}));
});

$("job-upload").addEventListener("click", async () => {
  const file = $("job-file").files[0];
  if (!file) { $("job-msg").textContent = "choose a clip first"; return; }
  const stride = parseInt($("job-stride").value, 10) || 1;
  await jobCall(() => apiJson(`/v1/jobs/upload?name=${encodeURIComponent(file.name)}&stride=${stride}`,
    {method: "POST", body: file}));
});

async function jobCall(fn) {
  $("job-msg").textContent = "";
  try { await fn(); } catch (e) { $("job-msg").textContent = e.message; }
  loadJobs();
}

let timelineJob = null;
async function loadJobs() {
  let jobs;
  try { jobs = (await apiJson("/v1/jobs")).jobs; } catch (e) { $("job-msg").textContent = e.message; return; }
  const body = $("job-table").querySelector("tbody");
  body.innerHTML = "";
  for (const j of jobs) {
    const tr = document.createElement("tr");
    const progress = j.progress == null ? (j.state === "running" ? "live" : "") : `<progress max="1" value="${j.progress}"></progress>`;
    const gaps = j.gaps.map((g) => `${g.start.toFixed(1)}-${g.end == null ? "..." : g.end.toFixed(1)} s`).join(", ");
    tr.innerHTML = `<td>${j.id.slice(0, 8)}</td><td></td><td>${j.state}${j.error ? ": " : ""}</td><td>${progress}</td>` +
      `<td>${j.frames}</td><td>${j.faces}</td><td>${gaps || "none"}</td><td></td>`;
    tr.children[1].textContent = j.source;
    if (j.error) tr.children[2].append(j.error);
    const actions = tr.children[7];
    const button = (text, fn) => { const b = document.createElement("button"); b.textContent = text; b.onclick = fn; actions.appendChild(b); };
    if (j.state === "running" || j.state === "reconnecting") button("Stop", () => jobCall(() => api(`/v1/jobs/${j.id}/stop`, {method: "POST"})));
    button("JSONL", () => download(`/v1/jobs/${j.id}/results?format=jsonl`, `job-${j.id}.jsonl`));
    button("CSV", () => download(`/v1/jobs/${j.id}/results?format=csv`, `job-${j.id}.csv`));
    button("Timeline", () => { timelineJob = j.id; drawTimeline(); });
    body.appendChild(tr);
  }
  if (timelineJob) drawTimeline();
}

async function drawTimeline() {
  const t = await apiJson(`/v1/jobs/${timelineJob}/timeline?window=5`);
  $("timeline-title").textContent = `Timeline of job ${timelineJob.slice(0, 8)} (5 s windows; grey: no frames)`;
  const ends = t.windows.map((w) => w.end).concat(t.gaps.map((g) => g.end || g.start));
  stackedBars($("timeline"), t.windows, t.gaps, 0, Math.max(5, ...ends));
}
setInterval(() => { if (activeTab === "jobs") loadJobs(); }, 1500);

// ---- Review ------------------------------------------------------------------------------------
// Buttons and keys label the same way; the page remembers what it labelled, so Undo (or u) takes
// the last one back (it returns first in the queue).
state.undo = [];

function reviewButtons() {
  const box = $("review-buttons");
  const wanted = state.labels.concat(["no_face", "skip"]).join(",");
  if (box.dataset.labels === wanted) return;
  box.dataset.labels = wanted; box.innerHTML = "";
  const keys = state.labels.map((l, i) => [l, String(i + 1), l]).concat([["no_face", "0", "no face"], ["skip", "s", "skip"]]);
  for (const [label, key, text] of keys) {
    const b = document.createElement("button");
    b.dataset.label = label; b.textContent = text;
    b.style.borderLeftColor = COLORS[label] || "#555";
    const k = document.createElement("kbd"); k.textContent = key; b.appendChild(k);
    b.addEventListener("click", () => labelReview(label));
    box.appendChild(b);
  }
}

function reviewCounts(c) {
  const body = $("review-classes").querySelector("tbody");
  body.innerHTML = "";
  for (const [label, n] of Object.entries(c.per_class || {})) {
    const tr = document.createElement("tr");
    tr.innerHTML = "<td></td><td></td><td></td>";
    tr.children[0].textContent = label; tr.children[1].textContent = n.train; tr.children[2].textContent = n.test;
    body.appendChild(tr);
  }
  const refused = Object.values(c.refused || {}).reduce((a, b) => a + b, 0);
  const audit = (c.by_reason || {}).audit || 0;
  $("review-counts").textContent = `${c.pending} waiting (at most ${c.max_pending}; ${refused} refused since start); ` +
    `${c.held_out} held out (whole groups); ${audit} from the audit sample; ` +
    `${c.no_face || 0} no face; in the review folder's ${c.folder}/`;
}

async function loadReview() {
  let q;
  try { q = await apiJson("/v1/review?limit=1"); } catch (e) {
    $("review-msg").textContent = e.status === 403 ? "Review is off: start the service with --review DIR." : e.message;
    $("review-item").hidden = true; return;
  }
  state.labels = q.labels;
  reviewCounts(q.counts);
  $("review-undo").disabled = !state.undo.length;
  state.review = q.items[0] || null;
  $("review-item").hidden = !state.review;
  if (!state.review) { $("review-msg").textContent = "No faces waiting."; return; }
  reviewButtons();
  const r = state.review;
  $("review-msg").textContent = `Faces the model was unsure of (below ${q.min_confidence}), and a random audit sample of faces it was sure of.`;
  const blob = await (await api(`/v1/review/${r.id}/image`)).blob();
  $("review-img").src = URL.createObjectURL(blob);
  const [a, b] = r.top2 || [["?", 0], ["?", 0]];
  $("review-reason").textContent = r.reason === "audit" ? "audit sample" : "uncertain";
  $("review-reason").className = "badge " + r.reason;
  $("review-top2").textContent = `model: ${a[0]} ${pct(a[1])}, ${b[0]} ${pct(b[1])}`;
  const track = r.track != null ? `, track ${r.track}` : "";
  $("review-origin").textContent = `from ${r.source}${track}, seen ${new Date(r.time * 1000).toLocaleString()}`;
  $("review-cam").hidden = true;
}

async function labelReview(label) {
  if (!state.review) return;
  const id = state.review.id;
  state.review = null;
  try {
    await api(`/v1/review/${id}`, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({label})});
    if (label !== "skip") { state.undo.push(id); $("review-last").textContent = `labelled ${label.replace("_", " ")}`; }
  } catch (e) { $("review-msg").textContent = e.message; }
  loadReview();
}

async function undoReview() {
  const id = state.undo.pop();
  if (!id) return;
  try {
    const r = await apiJson(`/v1/review/${id}/undo`, {method: "POST"});
    $("review-last").textContent = `undid ${r.undone.replace("_", " ")}: the face is back first in the queue`;
  } catch (e) { $("review-last").textContent = "undo: " + e.message; }
  loadReview();
}
$("review-undo").addEventListener("click", undoReview);

async function explainReview() {
  if (!state.review) return;
  const id = state.review.id;
  try {
    const blob = await (await api(`/v1/review/${id}/explain`)).blob();
    if (!state.review || state.review.id !== id) return;
    $("review-cam").src = URL.createObjectURL(blob); $("review-cam").hidden = false;
  } catch (e) { $("review-msg").textContent = "explain: " + e.message; }
}
$("review-explain").addEventListener("click", explainReview);

// ---- Fine-tune, before / after, promote, rollback ------------------------------------------------
// Every number and verdict shown here is the service's (each run's report.json, GET /v1/finetune);
// the page only lays them out. Nothing is served until a click on Promote and its confirmation.
const PARTS = [["all", "all held-out faces"], ["uncertain", "faces the model before was unsure of"],
  ["confident", "faces it was sure of"]];
const points = (v) => (100 * v).toFixed(1);
const interval = (iv) => `${points(iv.estimate)} % [${points(iv.low)}, ${points(iv.high)}]`;
const signed = (v) => (v >= 0 ? "+" : "") + points(v);
const difference = (iv) => `${signed(iv.estimate)} points [${signed(iv.low)}, ${signed(iv.high)}]`;
let finetunePoll = null;

async function loadFinetune() {
  let r;
  try { r = await apiJson("/v1/finetune"); } catch (e) {
    $("ft-msg").textContent = e.status === 403 ? "Fine-tuning needs review: start the service with --review DIR." : "fine-tune: " + e.message;
    $("ft-start").disabled = true; return;
  }
  const running = r.jobs.some((j) => j.state === "running");
  $("ft-start").disabled = running;
  showFinetuneJob(r.jobs[r.jobs.length - 1]);
  $("ft-rollback").hidden = !r.can_roll_back;
  const key = JSON.stringify(r.runs);
  if (key !== state.finetuneRuns) {  // redrawn only when a run or what is served changed
    state.finetuneRuns = key;
    $("ft-runs").replaceChildren(...r.runs.slice().reverse().map(runBlock));
  }
  if (running && !finetunePoll) finetunePoll = setInterval(loadFinetune, 2000);
  if (!running && finetunePoll) { clearInterval(finetunePoll); finetunePoll = null; }
}

function showFinetuneJob(j) {  // the latest fine-tune: its epochs, or why it failed
  const p = $("ft-progress");
  p.className = j && j.state === "failed" ? "error" : "muted";
  if (!j) p.textContent = "";
  else if (j.state === "running") p.textContent = j.epochs ? `${j.name}: epoch ${j.epoch} of ${j.epochs} done` : `${j.name}: starting...`;
  else if (j.state === "failed") p.textContent = `${j.name} failed: ${j.error}`;
  else p.textContent = `${j.name} finished: its before / after is below`;
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text != null) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function runBlock(run) {
  const div = el("div", null, "ft-run"), held = run.held_out || {};
  div.dataset.run = run.name;
  div.appendChild(el("h4", run.name + (run.date ? `, ${run.date}` : "") + (run.served ? " (served now)" : "")));
  const table = el("table");
  table.innerHTML = "<thead><tr><th>held out</th><th>faces (groups)</th><th>accuracy before</th><th>after</th>" +
    "<th>after - before</th><th>verdict</th></tr></thead><tbody></tbody>";
  for (const [part, words] of PARTS) {
    const p = held[part];
    if (!p) continue;
    const cells = p.faces ? [words, `${p.faces} (${p.groups})`, interval(p.before), interval(p.after), difference(p.difference), p.verdict]
      : [words, "0", "", "", "", ""];
    const tr = el("tr");
    tr.dataset.part = part;
    cells.forEach((c) => tr.appendChild(el("td", c)));
    table.tBodies[0].appendChild(tr);
  }
  div.appendChild(table);
  const site = held.site_estimate;
  if (site && site.before && site.after) {
    div.appendChild(el("p", `Site estimate (uncertain faces and the audit sample weighted by their share of traffic, ` +
      `${points(site.before.uncertain_share)} % uncertain): before ${interval(site.before)}, after ${interval(site.after)}`, "muted"));
  }
  div.appendChild(el("p", `Verdict: ${run.verdict}`, "verdict"));
  if (run.note) div.appendChild(el("p", run.note, "muted"));
  if (run.regression_on_confident) div.appendChild(el("p", "Warning: worse on the faces the model before was sure of.", "warning"));
  for (const [width, n] of Object.entries((held.all || {}).more_faces_for_half_width || {})) {
    const w = Math.round(100 * parseFloat(width));
    div.appendChild(el("p", n > 0 ? `About ${n} more held-out faces for a +-${w}-point difference.`
      : `The difference is already known to +-${w} points.`, "muted more"));
  }
  if (!run.served) {
    const b = el("button", "Promote");
    b.className = "ft-promote";
    b.addEventListener("click", () => promoteRun(run.name));
    div.appendChild(b);
  }
  return div;
}

async function startFinetune() {
  const epochs = parseInt($("ft-epochs").value, 10);
  $("ft-msg").textContent = "";
  try {
    const j = await apiJson("/v1/finetune", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify(Number.isFinite(epochs) ? {epochs} : {})});
    showFinetuneJob(j);
  } catch (e) { $("ft-msg").textContent = "fine-tune: " + e.message; }
  loadFinetune();
}
$("ft-start").addEventListener("click", startFinetune);

async function modelCall(what, path, body) {
  $("ft-msg").textContent = "";
  try {
    const r = await apiJson(path, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body || {})});
    $("ft-progress").textContent = `${what}: serving ${r.served}`;
  } catch (e) { $("ft-msg").textContent = `${what}: ${e.message}`; }
  await refreshAll();
  state.finetuneRuns = null;
  loadFinetune();
}

function promoteRun(name) {
  if (!confirm(`Serve ${name} from the next request on? The model served now is kept for Roll back.`)) return;
  modelCall("promoted", "/v1/models/promote", {name});
}
$("ft-rollback").addEventListener("click", () => modelCall("rolled back", "/v1/models/rollback"));

async function compareReview() {
  $("compare-msg").textContent = "scoring...";
  let r;
  try { r = await apiJson("/v1/review-compare"); } catch (e) { $("compare-msg").textContent = e.message; return; }
  $("compare-command").textContent = `${r.train_command}    # run in ${r.run_in}`;
  $("compare-msg").textContent = r.note || `${r.held_out} held-out face(s) in the review folder's ${r.folder}/`;
  const body = $("compare-table").querySelector("tbody");
  body.innerHTML = "";
  for (const row of r.rows) {
    const tr = document.createElement("tr");
    tr.innerHTML = "<td></td><td></td><td></td><td></td>";
    tr.children[0].textContent = row.model;
    if (row.error) { tr.children[3].textContent = row.error; } else {
      tr.children[1].textContent = row.n;
      tr.children[2].textContent = (100 * row.accuracy).toFixed(1) + " %";
      tr.children[3].textContent = Object.entries(row.per_class).map(([k, v]) => `${k} ${(100 * v.recall).toFixed(0)} % (${v.n})`).join(", ");
    }
    body.appendChild(tr);
  }
  $("compare-table").hidden = !r.rows.length;
}
$("review-compare").addEventListener("click", compareReview);

document.addEventListener("keydown", (ev) => {
  if (activeTab !== "review" || ev.target.tagName === "INPUT" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (ev.key === "u") { undoReview(); return; }
  if (!state.review) return;
  let label = null;
  if (ev.key === "e") { explainReview(); return; }
  if (ev.key === "s") label = "skip";
  else if (ev.key === "0" || ev.key === "n") label = "no_face";
  else if (/^[1-9]$/.test(ev.key) && parseInt(ev.key, 10) <= state.labels.length) label = state.labels[parseInt(ev.key, 10) - 1];
  if (label) labelReview(label);
});

$("review-export").addEventListener("click", () => download("/v1/review-export", "reviewed.zip").catch((e) => {
  $("review-msg").textContent = e.message;
}));

refreshAll();
