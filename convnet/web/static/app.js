// The page of `convnet serve`. Everything that comes from the model or the server (class names,
// layer texts, explanations, errors) is shown as text: elements are built with textContent,
// never innerHTML, so a class folder named <img onerror=…> is shown, not run.
"use strict";
let model = null, current = null;  // the model's description; the image (a Blob) shown now
const $ = (id) => document.getElementById(id);

// An element with text and attributes; children appended in order.
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value;
    else if (key === "className") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function showError(message) { $("error").textContent = message || ""; }

async function api(path, options) {
  const response = await fetch(path, options);
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) throw new Error(body?.error || `${response.status} ${response.statusText}`);
  return body;
}

function form(blob, extra = {}) {
  const data = new FormData();
  data.append("file", blob, "image.png");
  for (const [k, v] of Object.entries(extra)) data.append(k, v);
  return data;
}

async function lookInside(blob) {
  current = blob;
  showError("");
  $("cell").hidden = true;
  try {
    const result = await api("/api/activations", {method: "POST", body: form(blob)});
    drawPrediction(result);
    drawLayers(result.layers);
  } catch (e) {
    // an answer for another image must not stay on screen beside this error
    $("bars").replaceChildren("—");
    $("input-preview").replaceChildren();
    $("layers").replaceChildren();
    showError(e.message);
  }
}

function drawPrediction(result) {
  $("input-preview").replaceChildren(
    el("img", {src: `data:image/png;base64,${result.input}`, alt: "the image, as the network sees it"}));
  const order = result.probabilities.map((p, i) => [p, i]).sort((a, b) => b[0] - a[0]);
  $("bars").replaceChildren(...order.slice(0, 5).map(([p, i]) => {
    const fill = el("div", {className: "fill"});
    fill.style.width = `${Math.max(1, 140 * p)}px`;
    return el("div", {className: "bar"}, el("span", {className: "name", text: result.classes[i]}),
              fill, el("span", {className: "prob", text: `${(100 * p).toFixed(1)}%`}));
  }));
}

function drawLayers(layers) {
  $("layers").replaceChildren();
  for (const layer of layers) {
    const scale = Math.max(2, Math.floor(64 / layer.map_height));
    const title = el("div", {},
      el("b", {className: "mono", text: `${layer.index} ${layer.label || layer.layer}`}),
      ` → ${layer.shape} `,
      el("span", {className: "mono",
                  text: `[${layer.min.toPrecision(3)} … ${layer.max.toPrecision(3)}]`}));
    const img = el("img", {src: `data:image/png;base64,${layer.png}`,
                           alt: `layer ${layer.index} ${layer.layer}, ${layer.shape}`});
    img.className = layer.kind === "maps" ? (layer.conv ? "conv maps" : "maps") : "vector";
    img.dataset.index = layer.index;
    if (layer.kind === "maps") img.onload = () => { img.width = img.naturalWidth * scale; };
    if (layer.conv) img.onclick = (event) => clickCell(event, img, layer);
    $("layers").append(el("div", {className: "layer"}, title,
                          el("div", {className: "explain mono", text: layer.explain}), img));
  }
}

async function clickCell(event, img, layer) {
  // The mosaic holds maps of map_height × map_width, one pixel apart, `columns` to a row.
  const scale = img.width / img.naturalWidth;
  const x = Math.floor(event.offsetX / scale), y = Math.floor(event.offsetY / scale);
  const column = Math.floor(x / (layer.map_width + 1)), row = Math.floor(y / (layer.map_height + 1));
  const channel = row * layer.columns + column;
  const i = y % (layer.map_height + 1), j = x % (layer.map_width + 1);
  if (i >= layer.map_height || j >= layer.map_width) return;  // the gap between maps
  try {
    const cell = await api("/api/cell", {method: "POST", body: form(current,
      {layer: layer.index, channel, row: i, column: j})});
    const w = cell.weights.flat(2), v = cell.window.flat(2);
    const terms = w.slice(0, 6).map((wk, k) => `${wk.toFixed(2)}·${v[k].toFixed(2)}`).join(" + ");
    const rounded = (grid) => JSON.stringify(grid.map(r => r.map(c => c.map(n => +n.toFixed(2)))));
    $("cell").hidden = false;
    $("cell").textContent =
      `${layer.index} ${cell.layer}, map ${channel}, cell (${i}, ${j}):\n` +
      `window x (${cell.window.length}×${cell.window[0].length}×${cell.window[0][0].length}): ` +
      rounded(cell.window) + "\n" + `filter W: ` + rounded(cell.weights) +
      `\nbias b = ${cell.bias.toFixed(4)}\n` +
      `W·x + b = ${terms}${w.length > 6 ? " + …" : ""} + ${cell.bias.toFixed(2)} = ` +
      `${cell.w_dot_x_plus_b.toFixed(4)}` +
      (cell.relu === null ? "" : `\none number = ReLU(W·x + b) = ${cell.relu.toFixed(4)}`);
  } catch (e) { showError(e.message); }
}

// The playground asks once the typing pauses, and shows only the answer to the latest question.
let asked = 0, pause = null;
function playgroundSoon() { clearTimeout(pause); pause = setTimeout(playground, 150); }

async function playground() {
  const question = ++asked;
  const [N, F, S, P] = ["pN", "pF", "pS", "pP"].map(id => $(id).value.trim());
  const whole = (text) => /^\d{1,6}$/.test(text);
  let answer;
  if (![N, F, S, P].every(whole)) {
    answer = "N, F, S and P are whole numbers (at most 65536)";
  } else {
    try {
      const result = await api("/api/inspect", {method: "POST",
        headers: {"content-type": "application/json"},
        body: JSON.stringify({description: `conv(1,${F},stride=${S},pad=${P})`, input: `${N}x${N}x1`})});
      answer = result.explain[1];
    } catch (e) { answer = e.message; }
  }
  if (question === asked) $("playground").textContent = answer;
}

// drawing: white strokes on black, like the data sets
let canvas, pen, drawing = false;
function clearCanvas() { pen.fillStyle = "#000"; pen.fillRect(0, 0, canvas.width, canvas.height); }

async function start() {
  canvas = $("draw");
  pen = canvas.getContext("2d");
  canvas.onpointerdown = (e) => { drawing = true; pen.beginPath(); pen.moveTo(e.offsetX, e.offsetY); };
  canvas.onpointermove = (e) => {
    if (!drawing) return;
    pen.lineWidth = 18; pen.lineCap = "round"; pen.strokeStyle = "#fff";
    pen.lineTo(e.offsetX, e.offsetY); pen.stroke();
  };
  canvas.onpointerup = () => { drawing = false; canvas.toBlob(lookInside); };
  $("clear").onclick = clearCanvas;
  $("use").onclick = () => canvas.toBlob(lookInside);
  $("upload").onchange = () => { if ($("upload").files[0]) lookInside($("upload").files[0]); };
  for (const id of ["pN", "pF", "pS", "pP"]) $(id).oninput = playgroundSoon;
  clearCanvas();
  model = await api("/api/model");
  $("model").textContent = `${model.input.join("x")} ${model.description}`;
  if (!model.examples) $("examples-box").hidden = true;
  for (let i = 0; i < Math.min(model.examples, 20); i++) {
    const img = el("img", {src: `/api/examples/${i}`, alt: `example ${i}`});
    img.onclick = async () => lookInside(await (await fetch(img.src)).blob());
    $("examples").append(img);
  }
  playground();
}

document.addEventListener("DOMContentLoaded", () => start().catch(e => showError(e.message)));
