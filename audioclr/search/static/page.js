// The search page: find a track by name or upload a file, list its neighbours with players,
// and draw the catalogue map (PCA points from /api/map) with the query and neighbours marked.
"use strict";

const $ = (id) => document.getElementById(id);
const COLOURS = { other: "rgba(154, 165, 177, 0.6)", hit: "#f59e0b", query: "#dc2626" };
let catalogueMap = { ids: [], x: [], y: [] };
let shown = null; // the result on screen

async function getJson(url, options) {
  const response = await fetch(url, options);
  const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) {
    const detail = body.error || JSON.stringify(body.detail || body);
    throw new Error(detail + (body.hint ? ` (${body.hint})` : ""));
  }
  return body;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function search() {
  const body = await getJson(`/api/search?q=${encodeURIComponent($("q").value)}`);
  $("matches").replaceChildren(...body.matches.map((m) => {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.textContent = m.track_id;
    button.onclick = () => { location.hash = "track=" + encodeURIComponent(m.track_id); };
    li.append(button);
    return li;
  }));
}

function k() {
  return Math.max(1, Math.min(+$("k").max, parseInt($("k").value, 10) || 10));
}

async function openTrack(trackId) {
  try {
    const body = await getJson(`/api/neighbours?track=${encodeURIComponent(trackId)}&k=${k()}`);
    render(body, `/audio/${body.query.id}`);
  } catch (err) {
    showError(err.message);
  }
}

async function upload(file) {
  $("title").textContent = `embedding ${file.name}…`;
  try {
    const url = `/api/upload?name=${encodeURIComponent(file.name)}&k=${k()}`;
    const body = await getJson(url, { method: "POST", body: file });
    render(body, URL.createObjectURL(file));
  } catch (err) {
    $("title").textContent = "Pick a track or upload a file";
    showError(err.message);
  }
}

function render(result, queryAudio) {
  showError("");
  shown = result;
  const q = result.query;
  $("title").textContent = `${result.hits.length} nearest to ${q.kind === "file" ? "uploaded file " : ""}${q.track_id}`;
  $("query-audio").src = queryAudio;
  $("query-audio").hidden = false;
  $("hits").querySelector("tbody").replaceChildren(...result.hits.map((h) => {
    const tr = document.createElement("tr");
    tr.dataset.track = h.track_id;
    const name = document.createElement("a");
    name.href = "#track=" + encodeURIComponent(h.track_id);
    name.textContent = h.track_id;
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${Math.max(0, h.score) * 80}px`;
    const audio = document.createElement("audio");
    audio.controls = true;
    audio.preload = "none";
    audio.src = `/audio/${h.id}`;
    const cells = [h.rank, name, [h.score.toFixed(4), bar], audio];
    tr.append(...cells.map((c) => {
      const td = document.createElement("td");
      td.append(...[].concat(c));
      return td;
    }));
    return tr;
  }));
  $("hits").hidden = false;
  drawMap();
}

function mapFrame() {
  const canvas = $("map");
  const pad = 14;
  const xs = catalogueMap.x, ys = catalogueMap.y;
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const scale = Math.min((canvas.width - 2 * pad) / (x1 - x0 || 1), (canvas.height - 2 * pad) / (y1 - y0 || 1));
  return (x, y) => [pad + (x - x0) * scale, canvas.height - pad - (y - y0) * scale];
}

function drawMap() {
  const canvas = $("map");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!catalogueMap.ids.length) return;
  const at = mapFrame();
  const dot = (x, y, r, colour) => {
    const [px, py] = at(x, y);
    ctx.beginPath();
    ctx.arc(px, py, r, 0, 2 * Math.PI);
    ctx.fillStyle = colour;
    ctx.fill();
  };
  catalogueMap.ids.forEach((_, i) => dot(catalogueMap.x[i], catalogueMap.y[i], 2.5, COLOURS.other));
  if (!shown) return;
  for (const h of shown.hits) if (h.xy) dot(h.xy[0], h.xy[1], 5, COLOURS.hit);
  if (shown.query.xy) dot(shown.query.xy[0], shown.query.xy[1], 7, COLOURS.query);
}

function clickMap(event) {
  if (!catalogueMap.ids.length) return;
  const canvas = $("map");
  const box = canvas.getBoundingClientRect();
  const cx = (event.clientX - box.left) * (canvas.width / box.width);
  const cy = (event.clientY - box.top) * (canvas.height / box.height);
  const at = mapFrame();
  let best = -1, bestD = 64; // within 8 px
  catalogueMap.ids.forEach((_, i) => {
    const [px, py] = at(catalogueMap.x[i], catalogueMap.y[i]);
    const d = (px - cx) ** 2 + (py - cy) ** 2;
    if (d < bestD) [best, bestD] = [i, d];
  });
  if (best >= 0) location.hash = "track=" + encodeURIComponent(catalogueMap.track_ids[best]);
}

function followHash() {
  const m = location.hash.match(/^#track=(.*)$/);
  if (m) openTrack(decodeURIComponent(m[1]));
}

async function start() {
  const info = await getJson("/api/info");
  $("count").textContent = `${info.tracks} tracks`;
  $("k").max = info.max_k;
  $("cap").textContent = `(at most ${+(info.max_upload_bytes / 2 ** 20).toFixed(1)} MB)`;
  catalogueMap = await getJson("/api/map");
  drawMap();
  let timer = null;
  $("q").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => search().catch((err) => showError(err.message)), 120);
  });
  $("upload").addEventListener("change", (e) => { if (e.target.files[0]) upload(e.target.files[0]); });
  $("map").addEventListener("click", clickMap);
  window.addEventListener("hashchange", followHash);
  await search();
  followHash();
  document.body.dataset.ready = "1";
}

start().catch((err) => showError(err.message));
