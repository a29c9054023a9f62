// The page of `convnet serve`. Everything that comes from the model or the server (class names,
// layer texts, explanations, errors) is shown as text: elements are built with textContent,
// never innerHTML, so a class folder named <img onerror=…> is shown, not run.
"use strict";

// ── words, in English and Korean ─────────────────────────────────────────────────────────────
const WORDS = {
  en: {
    subtitle: "inside the network", views: "views", tab_overview: "Overview",
    tab_animation: "Convolution", tab_softmax: "Softmax", tab_training: "Training",
    image: "Image", as_seen: "as the network sees it", upload: "Upload…", draw: "Draw",
    sample: "Sample", clear: "Clear", look: "Look inside", drawing_area: "drawing area",
    drop_hint: "or drop an image anywhere on the page", drop_here: "Drop the image to look inside",
    prediction: "Prediction", test_images: "Test images", mistakes_only: "mistakes only",
    mistakes: "{n} of {m} wrong", label_pred: "test image {i}: label {label}, predicted {pred}",
    pred_only: "test image {i}: predicted {pred}", label_only: "test image {i}: label {label}",
    overview_title: "Every layer, one column each",
    legend: "Colours: blue below 0, white 0, red above 0 (a layer with negative values); " +
            "otherwise dark to bright from its smallest to its largest value.",
    pick_image: "Pick, draw, drop or upload an image to look inside.",
    keys_help: "Hover or click a cell to follow its number. With the keyboard: Tab to a layer, " +
               "arrows move the cell, PageUp and PageDown change the map, Enter holds it, Esc lets go.",
    follow: "Follow one number", follow_hint: "Hover over a cell of a conv, pooling or fc layer.",
    input: "input", maps_of: "{n} of {c} maps", show_all: "show all", weights: "{n} weights",
    values_of: "{n} of {c} values", no_cells: "this layer's values are not made one by one",
    at_cell: "{layer} {text}: map {map}, row {row}, column {column}",
    at_unit: "{layer} {text}: unit {map}", window: "x, the window", filter: "W, the filter",
    products: "W · x", channel: "channel {k}", more_channels: "+ {n} more channels (their products sum to {s})",
    sum_of: "sum of the {n} products", bias: "+ b", relu: "ReLU", equals: "=",
    pool_window: "the window of map {map}", largest: "the largest: {v}", mean: "the mean: {s} / {n} = {v}",
    input_vector: "x, the input ({n} values)", weight_row: "W, row {k} of the weights",
    largest_terms: "the largest terms w·x", map_mean: "the mean of map {map} ({n} values) = {v}",
    elementwise: "x = {x} → {v}", add: "F(x) = {a}, {s} = {b}: the sum {v}",
    as_text: "the same, as text (what convnet show --cell prints)", held: "held (Esc lets go)",
    anim_title: "The convolution, step by step", anim_examples: "examples",
    anim_stride1: "7×7, 3×3 filter, stride 1", anim_stride2: "stride 2", anim_stride3: "stride 3",
    anim_pad1: "pad 1: a border of zeros", anim_maxpool: "max pool 2×2 on 4×4",
    anim_model: "this model's first layer", anim_map: "map",
    back: "◀ back", play: "▶ play", pause: "❚❚ pause", step: "step ▶", speed: "speed",
    step_of: "step {i} of {n}", input_caption: "input {h}×{w}{pad}", padded: " with a border of {p} zeros",
    output_caption: "output {h}×{w}", no_output: "no output: the filter does not fit",
    falls_off: "the filter falls off the edge here", does_not_fit: "It does not fit:",
    softmax_title: "Softmax, taken apart",
    softmax_help: "The last layer's numbers (logits z) become probabilities: e raised to each " +
                  "(after subtracting the largest, which changes nothing but keeps e small), each divided by their sum.",
    class: "class", logit: "logit z", exp: "e^(z − max)", prob: "÷ sum = probability",
    softmax_sum: "max z = {m};  sum of e^(z − max) = {s}", ensemble_note:
      "An ensemble: the probabilities are its members' average; the logits and e^z are its first member's.",
    training_title: "Watch training", filters_title: "The first layer's filters",
    maps_title: "What they make of this image",
    waiting: "Waiting for the first epoch to end…", training_now: "epoch {e} of {n}, training",
    training_done: "finished after {e} epochs", not_run: "Not a training run: serve a run's directory while it trains (or use convnet train --serve) to watch it.",
    loss: "loss", accuracy: "accuracy", train: "train", validation: "validation", epoch: "epoch",
    changed: "A new checkpoint was written (epoch {e}); the page shows it.",
    changed_plain: "The model on disk changed; the page shows the new one.",
    resized: "resized from {w}×{h} to {W}×{H}, as convnet predict does",
    not_resized: "{W}×{H}, the network's input size", problem: "Note: {p}",
    no_answer: "No answer for this image.", lang_button: "한국어", lang_label: "한국어로 보기",
    draw_first: "draw something first", stride_word: "stride {s}", anim_custom: "your own",
    try_own: "Try your own:", input_h: "input H", input_w: "W", filter_f: "filter F",
    stride_s: "stride S", pad_p: "pad P", whole_numbers: "whole numbers: H and W 1–32, F 1–11, S 1–8, P 0–5",
  },
  ko: {
    subtitle: "네트워크 들여다보기", views: "보기", tab_overview: "한눈에 보기",
    tab_animation: "합성곱", tab_softmax: "소프트맥스", tab_training: "학습",
    image: "이미지", as_seen: "네트워크가 보는 모습", upload: "파일 올리기…", draw: "그리기",
    sample: "예시 그림", clear: "지우기", look: "들여다보기", drawing_area: "그림판",
    drop_hint: "또는 페이지 아무 곳에나 이미지를 끌어다 놓으세요", drop_here: "이미지를 놓으면 들여다봅니다",
    prediction: "예측", test_images: "테스트 이미지", mistakes_only: "틀린 것만",
    mistakes: "{m}개 중 {n}개 틀림", label_pred: "테스트 이미지 {i}: 정답 {label}, 예측 {pred}",
    pred_only: "테스트 이미지 {i}: 예측 {pred}", label_only: "테스트 이미지 {i}: 정답 {label}",
    overview_title: "레이어마다 한 열씩",
    legend: "색: 음수가 있는 레이어는 0보다 작으면 파랑, 0은 흰색, 크면 빨강; " +
            "그 밖에는 가장 작은 값에서 가장 큰 값까지 어두운 색에서 밝은 색으로.",
    pick_image: "이미지를 고르거나, 그리거나, 끌어다 놓거나, 올려서 들여다보세요.",
    keys_help: "칸에 마우스를 올리거나 누르면 그 숫자를 따라갑니다. 키보드: Tab으로 레이어로 가서 " +
               "화살표로 칸을 옮기고, PageUp과 PageDown으로 맵을 바꾸고, Enter로 고정, Esc로 풉니다.",
    follow: "숫자 하나 따라가기", follow_hint: "합성곱, 풀링, fc 레이어의 칸에 마우스를 올려 보세요.",
    input: "입력", maps_of: "맵 {c}개 중 {n}개", show_all: "모두 보기", weights: "가중치 {n}개",
    values_of: "값 {c}개 중 {n}개", no_cells: "이 레이어의 값은 하나씩 계산되지 않습니다",
    at_cell: "{layer} {text}: 맵 {map}, {row}행 {column}열",
    at_unit: "{layer} {text}: 유닛 {map}", window: "x, 창", filter: "W, 필터",
    products: "W · x", channel: "채널 {k}", more_channels: "+ 채널 {n}개 더 (그 곱들의 합 {s})",
    sum_of: "곱 {n}개의 합", bias: "+ b", relu: "ReLU", equals: "=",
    pool_window: "맵 {map}의 창", largest: "최댓값: {v}", mean: "평균: {s} / {n} = {v}",
    input_vector: "x, 입력 (값 {n}개)", weight_row: "W, 가중치의 {k}행",
    largest_terms: "가장 큰 항 w·x", map_mean: "맵 {map}의 값 {n}개의 평균 = {v}",
    elementwise: "x = {x} → {v}", add: "F(x) = {a}, {s} = {b}: 합 {v}",
    as_text: "같은 내용을 글로 (convnet show --cell의 출력)", held: "고정됨 (Esc로 풀기)",
    anim_title: "합성곱, 한 단계씩", anim_examples: "예시",
    anim_stride1: "7×7, 3×3 필터, 스트라이드 1", anim_stride2: "스트라이드 2", anim_stride3: "스트라이드 3",
    anim_pad1: "패딩 1: 0으로 두른 테두리", anim_maxpool: "4×4에 2×2 최대 풀링",
    anim_model: "이 모델의 첫 레이어", anim_map: "맵",
    back: "◀ 뒤로", play: "▶ 재생", pause: "❚❚ 멈춤", step: "한 단계 ▶", speed: "속도",
    step_of: "{n}단계 중 {i}", input_caption: "입력 {h}×{w}{pad}", padded: ", 둘레에 0을 {p}칸",
    output_caption: "출력 {h}×{w}", no_output: "출력 없음: 필터가 맞지 않습니다",
    falls_off: "여기서 필터가 가장자리를 벗어납니다", does_not_fit: "맞지 않습니다:",
    softmax_title: "소프트맥스 뜯어보기",
    softmax_help: "마지막 레이어의 숫자(로짓 z)가 확률이 됩니다: 각각에서 가장 큰 값을 빼고(결과는 같고 " +
                  "e가 너무 커지지 않게) e를 거듭제곱한 다음, 그 합으로 나눕니다.",
    class: "클래스", logit: "로짓 z", exp: "e^(z − 최댓값)", prob: "÷ 합 = 확률",
    softmax_sum: "z의 최댓값 = {m};  e^(z − 최댓값)의 합 = {s}", ensemble_note:
      "앙상블입니다: 확률은 구성 모델들의 평균이고, 로짓과 e^z는 첫 번째 모델의 것입니다.",
    training_title: "학습 지켜보기", filters_title: "첫 레이어의 필터",
    maps_title: "이 필터들이 이 이미지에서 만들어 낸 것",
    waiting: "첫 에포크가 끝나기를 기다리는 중…", training_now: "에포크 {e}/{n}, 학습 중",
    training_done: "에포크 {e}번 후 끝남", not_run: "학습 중인 실행이 아닙니다: 학습하는 동안 실행 디렉터리를 serve하면 (또는 convnet train --serve) 지켜볼 수 있습니다.",
    loss: "손실", accuracy: "정확도", train: "훈련", validation: "검증", epoch: "에포크",
    changed: "새 체크포인트가 저장되었습니다 (에포크 {e}); 새 모델을 보여 줍니다.",
    changed_plain: "디스크의 모델이 바뀌어 새 모델을 보여 줍니다.",
    resized: "convnet predict처럼 {w}×{h}에서 {W}×{H}로 크기를 바꿨습니다",
    not_resized: "{W}×{H}, 네트워크의 입력 크기", problem: "참고: {p}",
    no_answer: "이 이미지에 대한 답이 없습니다.", lang_button: "English", lang_label: "View in English",
    draw_first: "먼저 무언가를 그려 주세요", stride_word: "스트라이드 {s}", anim_custom: "직접 만든 예",
    try_own: "직접 해 보기:", input_h: "입력 H", input_w: "너비 W", filter_f: "필터 F",
    stride_s: "스트라이드 S", pad_p: "패딩 P", whole_numbers: "정수만: H와 W는 1–32, F는 1–11, S는 1–8, P는 0–5",
  },
};

let lang = (() => { try { return localStorage.getItem("convnet-lang") || "en"; } catch { return "en"; } })();
function t(key, params = {}) {
  const text = (WORDS[lang] && WORDS[lang][key]) ?? WORDS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ""));
}

// ── small helpers ───────────────────────────────────────────────────────────────────────────
const $ = (id) => document.getElementById(id);
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === "text") node.textContent = value;
    else if (key === "className") node.className = value;
    else if (key === "style") Object.assign(node.style, value);
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}
function fmt(v, digits = 4) {
  if (v === null || v === undefined) return "−∞";
  if (Number.isInteger(v) && Math.abs(v) < 1e6) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  const text = v.toFixed(digits);
  return /^-0\.?0*$/.test(text) ? text.slice(1) : text;
}
function short(v) {  // two decimals in a grid cell: small values are 0.00, not 5.5e-4
  if (v === null || v === undefined) return "−∞";
  if (Number.isInteger(v) && Math.abs(v) < 1e5) return String(v);
  if (Math.abs(v) >= 1e5) return v.toExponential(1);
  const text = v.toFixed(2);
  return text === "-0.00" ? "0.00" : text;
}
function bytes(b64) {
  const raw = atob(b64), out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}
function failure(response, body) {  // the server's own message where it sent one
  const error = new Error(body?.error || `${response.status} ${response.statusText}`);
  error.status = response.status;
  return error;
}
async function json(response) {
  return response.headers.get("content-type")?.includes("json") ? response.json() : null;
}
async function imageAt(path) {  // an image the server holds, as a Blob
  const response = await fetch(path);
  if (!response.ok) throw failure(response, await json(response));
  return response.blob();
}
async function api(path, options) {
  const response = await fetch(path, options);
  const body = await json(response);
  if (!response.ok) throw failure(response, body);
  return body;
}

// ── state ───────────────────────────────────────────────────────────────────────────────────
const state = {
  model: null, answer: null, image: null, blob: null, examples: null, exampleIndex: null,
  held: null, focus: null, anim: {name: "stride1", data: null, step: 0, timer: null, map: 0, loading: false, waiting: false},
  version: null, drawn: false, timings: {},
};
window.convnetTimings = state.timings;  // read by the browser test and bench/page.py

// ── colour tables (sent by the server: matplotlib's viridis and RdBu) ───────────────────────
function painter(scale) {
  const table = state.model?.colours?.[scale.kind] || state.colours?.[scale.kind];
  return (q) => table[q];
}
function paintBytes(canvas, data, offset, w, h, scale) {
  const context = canvas.getContext("2d");
  const image = context.createImageData(w, h);
  const colour = painter(scale);
  for (let i = 0; i < w * h; i++) {
    const [r, g, b] = colour(data[offset + i]);
    image.data[4 * i] = r; image.data[4 * i + 1] = g; image.data[4 * i + 2] = b; image.data[4 * i + 3] = 255;
  }
  context.putImageData(image, 0, 0);
}
function valueColour(v, scale) {
  if (v === null || v === undefined || !Number.isFinite(v)) return "#eeeeee";
  const q = Math.max(0, Math.min(255, Math.round((v - scale.low) / (scale.high - scale.low) * 255)));
  const [r, g, b] = painter(scale)(q);
  return `rgb(${r},${g},${b})`;
}
function inkFor(v, scale) {  // dark or light text on a coloured cell
  if (v === null || !Number.isFinite(v)) return "#555";
  const q = Math.max(0, Math.min(255, Math.round((v - scale.low) / (scale.high - scale.low) * 255)));
  const [r, g, b] = painter(scale)(q);
  return 0.299 * r + 0.587 * g + 0.114 * b < 140 ? "#fff" : "#111";
}
function scaleFor(values) {  // for grids of numbers on the page: the same rule as the server's
  const flat = values.flat(Infinity).filter((v) => v !== null && Number.isFinite(v));
  const low = Math.min(0, ...flat), high = Math.max(...flat, 0);
  if (low < 0) { const b = Math.max(-low, high) || 1; return {kind: "diverging", low: -b, high: b}; }
  const min = Math.min(...flat);
  return {kind: "sequential", low: min, high: high > min ? high : min + 1};
}
function legend(scale) {
  const canvas = el("canvas", {width: 64, height: 1});
  const data = new Uint8Array(64).map((_, i) => Math.round(i * 255 / 63));
  paintBytes(canvas, data, 0, 64, 1, scale);
  return el("div", {className: "legend", title: `${fmt(scale.min)} … ${fmt(scale.max)}`},
            el("span", {text: short(scale.kind === "diverging" ? scale.low : scale.min)}), canvas,
            el("span", {text: short(scale.kind === "diverging" ? scale.high : scale.max)}));
}

// ── the language ────────────────────────────────────────────────────────────────────────────
function applyLanguage() {
  document.documentElement.lang = lang;
  for (const node of document.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);
  for (const node of document.querySelectorAll("[data-t-label]")) node.setAttribute("aria-label", t(node.dataset.tLabel));
  $("lang").textContent = t("lang_button");
  $("lang").setAttribute("aria-label", t("lang_label"));
  document.title = `convnet: ${t("subtitle")}`;
}
async function switchLanguage() {
  lang = lang === "en" ? "ko" : "en";
  try { localStorage.setItem("convnet-lang", lang); } catch { /* private mode */ }
  applyLanguage();
  await loadModel(true);
  if (state.answer) { drawAnswer(state.answer, false); }
  renderAnimationChoices();
  if (state.anim.data) loadAnimation(state.anim.name);
  refreshTraining();
}

// ── the model ───────────────────────────────────────────────────────────────────────────────
async function loadModel(quiet = false) {
  const model = await api(`/api/model?lang=${lang}`);
  state.colours = model.colours;
  if (model.state === "waiting") {
    state.model = null;
    $("model").textContent = model.message;
    showNotice(t("waiting"));
    if (!quiet) selectTab("training");
    return model;
  }
  const changed = state.model && state.model.version !== model.version;
  state.model = model;
  state.version = model.version;
  const params = model.inspect.params.toLocaleString("en-US");
  $("model").textContent = `${model.input.join("×")}  ${model.description}  ·  ${t("weights", {n: params})}`;
  $("model").title = $("model").textContent;
  const notes = [...(model.notes || [])];
  if (model.problem) notes.push(t("problem", {p: model.problem}));
  if (notes.length) showNotice(notes.join("  ")); else if (!changed) hideNotice();
  return model;
}
function showNotice(text) { $("notice").textContent = text; $("notice").hidden = false; }
function hideNotice() { $("notice").hidden = true; }

// ── an image: upload, drop, draw, test set, sample ──────────────────────────────────────────
function form(blob) {
  const data = new FormData();
  data.append("file", blob, "image.png");
  return data;
}
let asking = 0;
// The image may still be on its way (a promise of a Blob): the question counts from the moment it
// is asked, so a later choice always wins over an earlier one whose bytes arrive late — the first
// image the page shows by itself never replaces one the user picked meanwhile.
async function lookInside(image, exampleIndex = null) {
  const question = ++asking;
  showError("");
  const asked = performance.now();
  try {
    const blob = await image;
    if (question !== asking) return;
    state.blob = blob;
    const answer = await api(`/api/activations?maps=${MAPS_IN_COLUMN}`, {method: "POST", body: form(blob)});
    if (question !== asking) return;  // a later image was given meanwhile
    state.exampleIndex = exampleIndex;
    markExample();
    state.timings.request_ms = performance.now() - asked;
    drawAnswer(answer, true);
  } catch (e) {
    if (question !== asking) return;
    clearAnswer();  // an answer for another image must not stay beside this error
    showError(e.message);
  }
}
async function lookAgain() {  // the same image, after the model changed
  if (!state.image) return;
  try {
    drawAnswer(await api(`/api/activations?image=${state.image}&maps=${MAPS_IN_COLUMN}`), false);
  } catch (e) {
    if ((e.status === 404 || e.status === 409) && state.blob) return lookInside(state.blob, state.exampleIndex);
    showError(e.message);
  }
}
function showError(message) { $("error").textContent = message || ""; }
function clearAnswer() {
  state.answer = null; state.image = null; state.held = null;
  $("bars").replaceChildren(el("span", {className: "muted", text: "—"}));
  $("input-preview").replaceChildren();
  $("resized").textContent = "";
  $("overview").replaceChildren(el("p", {className: "muted placeholder", text: t("no_answer")}));
  $("softmax").replaceChildren(el("p", {className: "muted", text: t("no_answer")}));
  $("cell-body").replaceChildren(t("follow_hint"));
}

function drawAnswer(answer, fresh) {
  if (!$("view-training").hidden && state.model) setTimeout(drawTrainingMaps, 0);
  const started = performance.now();
  state.answer = answer;
  state.image = answer.image;
  const h = answer.input.shape[0], w = answer.input.shape[1];
  $("input-preview").replaceChildren(el("img", {src: `data:image/png;base64,${answer.input.png}`,
                                                alt: t("as_seen")}));
  const original = answer.input.original;
  $("resized").textContent = original && answer.input.resized ?
    t("resized", {w: original[0], h: original[1], W: w, H: h}) : t("not_resized", {W: w, H: h});
  drawPrediction(answer);
  drawOverview(answer);
  drawSoftmax(answer);
  if (fresh) { state.held = null; $("cell-body").replaceChildren(t("follow_hint")); }
  else if (state.held) followCell(state.held, true);
  requestAnimationFrame(() => {
    state.timings.overview_ms = performance.now() - started;
    state.timings.drawn = (state.timings.drawn || 0) + 1;
  });
  if (state.anim.name === "model" && !$("view-animation").hidden) loadAnimation("model");
}

function drawPrediction(answer) {
  const top = answer.top.slice(0, 5);
  $("bars").replaceChildren(...top.map((item, rank) => {
    const fill = el("div", {className: "fill", style: {width: `${Math.max(0.5, 100 * item.probability)}%`}});
    return el("div", {className: rank === 0 ? "bar best" : "bar"},
              el("span", {className: "name", text: item.class, title: item.class}),
              el("div", {className: "track"}, fill),
              el("span", {className: "prob", text: `${(100 * item.probability).toFixed(1)}%`}));
  }));
}

// ── the overview: one column per layer ──────────────────────────────────────────────────────
const columns = new Map();  // layer name (or "input") → {element, entry, info, kind, maps: [...]}

function layerInfo(name) {
  const find = (layers) => {
    for (const layer of layers) {
      if (layer.name === name) return layer;
      for (const path of layer.paths || []) { const found = find(path.layers); if (found) return found; }
    }
    return null;
  };
  return find(state.model.layers);
}
function fitScale(answer) {
  // One scale for every layer (screen pixels per value), so that deeper, smaller maps look
  // smaller: the largest that lets each layer's shown maps stand in one column.
  const [h, w] = answer.input.shape;
  let k = Math.min(6, 150 / Math.max(h, w));
  const visit = (entries) => {
    for (const entry of entries) {
      if (entry.kind === "maps") {
        const shown = Math.min(entry.shown, MAPS_IN_COLUMN);
        k = Math.min(k, (stackHeight() / shown - 3) / Math.max(entry.height, entry.width));
      }
      for (const path of entry.paths || []) visit(path.layers);
    }
  };
  visit(answer.layers);
  return Math.max(k, 0.05);
}
function mapSize(h, w) {  // the same scale for every layer; tiny maps no smaller than 20 px
  const longest = Math.max(h, w);
  const size = Math.max(20, Math.round(longest * state.scale));
  return [Math.round(size * h / longest), Math.round(size * w / longest)];
}
function stackHeight() { return Math.max(260, Math.min(560, window.innerHeight - 330)); }

const MAPS_IN_COLUMN = 10;  // maps a layer shows at first; "show all" for the rest
function drawOverview(answer) {
  const box = $("overview");
  state.scale = fitScale(answer);
  columns.clear();
  box.replaceChildren();
  box.append(inputColumn(answer));
  for (const entry of answer.layers) box.append(layerElement(entry));
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "links");
  box.append(svg);
}
function inputColumn(answer) {
  const [h, w, c] = answer.input.shape;
  const [dh, dw] = mapSize(h, w);
  const img = el("img", {src: `data:image/png;base64,${answer.input.png}`, alt: t("as_seen"),
                         width: dw, height: dh, style: {width: `${dw}px`, height: `${dh}px`}});
  const map = el("div", {className: "map"}, img);
  const column = el("div", {className: "column", "data-layer": "input"},
    el("div", {className: "head"}, el("b", {text: t("input")})), map,
    el("div", {className: "foot", text: `${h}×${w}×${c}`}));
  columns.set("input", {element: column, maps: [map], height: h, width: w, kind: "maps"});
  return column;
}
function layerElement(entry) {
  if (entry.paths) return blockElement(entry);
  return columnElement(entry);
}
function blockElement(entry) {
  const info = layerInfo(entry.name);
  const lanes = el("div", {className: "lanes"});
  for (const path of entry.paths) {
    const lane = el("div", {className: "lane"}, el("span", {className: "lane-name", text: path.name}));
    if (!path.layers.length) lane.append(el("div", {className: "identity", text: "x →"}));
    for (const inner of path.layers) lane.append(layerElement(inner));
    lanes.append(lane);
  }
  if (!entry.paths.some((p) => p.name === "shortcut")) {
    lanes.append(el("div", {className: "lane"}, el("span", {className: "lane-name", text: "shortcut"}),
                    el("div", {className: "identity", text: "x →"})));
  }
  const added = columnElement(entry, info.paths.some((p) => p.name === "shortcut" && p.layers.length) ? "F(x) + S(x)" : "F(x) + x");
  return el("div", {className: "block", "data-block": entry.name}, lanes, el("span", {className: "plus", text: "+"}), added);
}
function columnElement(entry, title = null) {
  const info = layerInfo(entry.name);
  const column = el("div", {className: "column", "data-layer": entry.name, tabindex: "0", role: "group",
                            "aria-label": `${entry.name} ${info.label}, ${info.shape_text}`});
  column.append(el("div", {className: "head"}, el("b", {text: entry.name}), " ",
                   el("span", {text: title || info.label, title: info.explain})));
  const record = {element: column, entry, info, maps: [], kind: entry.kind};
  columns.set(entry.name, record);
  if (entry.kind === "maps") column.append(mapsElement(entry, record));
  else column.append(vectorElement(entry, record));
  const foot = el("div", {className: "foot"}, el("div", {text: info.shape_text}));
  if (info.params) foot.append(el("div", {text: t("weights", {n: info.params.toLocaleString("en-US")})}));
  if (entry.kind === "maps" && entry.shown < entry.count) {
    foot.append(el("div", {text: t("maps_of", {n: entry.shown, c: entry.count})}));
    const more = el("button", {className: "more", type: "button", text: t("show_all")});
    more.onclick = () => showAllMaps(entry.name);
    foot.append(more);
  } else if (entry.kind === "vector" && entry.shown < entry.length) {
    foot.append(el("div", {text: t("values_of", {n: entry.shown, c: entry.length})}));
  }
  foot.append(legend(entry.scale));
  column.append(foot);
  column.addEventListener("keydown", (event) => keyOnColumn(event, entry.name));
  column.addEventListener("focus", () => { if (!state.focus || state.focus.layer !== entry.name) focusCell(entry.name, 0, 0, 0); });
  return column;
}
function mapsElement(entry, record) {
  const data = bytes(entry.data);
  const [dh, dw] = mapSize(entry.height, entry.width);
  const perColumn = Math.max(1, Math.floor((stackHeight() + 3) / (dh + 3)));
  const stack = el("div", {className: "stack", style: {gridTemplateRows: `repeat(${Math.min(perColumn, entry.shown)}, auto)`}});
  for (let k = 0; k < entry.shown; k++) {
    const canvas = el("canvas", {width: entry.width, height: entry.height,
                                 style: {width: `${dw}px`, height: `${dh}px`}});
    paintBytes(canvas, data, k * entry.height * entry.width, entry.width, entry.height, entry.scale);
    const map = el("div", {className: "map", "data-map": k}, canvas);
    if (record.info.cell) {
      canvas.addEventListener("mousemove", (event) => hoverMap(event, entry, k, canvas));
      canvas.addEventListener("click", (event) => clickMap(event, entry, k, canvas));
    }
    record.maps.push(map);
    stack.append(map);
  }
  record.height = entry.height; record.width = entry.width;
  return stack;
}
function vectorElement(entry, record) {
  const classes = state.model.classes;
  const last = entry.name === String(state.model.layers.length - 1);
  const beforeLast = entry.name === String(state.model.layers.length - 2);
  const labelled = entry.length === classes.length && (last || beforeLast) && entry.values;
  const data = bytes(entry.data);
  if (labelled) {
    const list = el("div", {className: "labelled"});
    record.rows = [];
    for (let i = 0; i < entry.length; i++) {
      const swatch = el("div", {className: "swatch", style: {background: valueColour(entry.values[i], entry.scale)}});
      const row = [el("span", {className: "name", text: classes[i], title: classes[i]}), swatch,
                   el("span", {className: "value", text: last ? `${(100 * entry.values[i]).toFixed(1)}%` : short(entry.values[i])})];
      if (record.info.cell) for (const node of row) {
        node.addEventListener("mousemove", () => hoverUnit(entry.name, i));
        node.addEventListener("click", () => { holdCell({layer: entry.name, row: 0, column: 0, channel: i}); });
      }
      record.rows.push(swatch);
      list.append(...row);
    }
    return list;
  }
  const cellHeight = Math.max(2, Math.min(14, Math.floor(stackHeight() / entry.shown)));
  const perStrip = Math.max(1, Math.floor(stackHeight() / cellHeight));
  const strips = el("div", {className: "vector"});
  record.strips = [];
  for (let start = 0; start < entry.shown; start += perStrip) {
    const n = Math.min(perStrip, entry.shown - start);
    const canvas = el("canvas", {width: 1, height: n, style: {width: "14px", height: `${n * cellHeight}px`}});
    paintBytes(canvas, data, start, 1, n, entry.scale);
    const wrap = el("div", {className: "map"}, canvas);
    if (record.info.cell) {
      const unitAt = (event) => start + Math.min(n - 1, Math.floor(event.offsetY / cellHeight));
      canvas.addEventListener("mousemove", (event) => hoverUnit(entry.name, unitAt(event)));
      canvas.addEventListener("click", (event) => holdCell({layer: entry.name, row: 0, column: 0, channel: unitAt(event)}));
    }
    record.strips.push({wrap, start, n, cellHeight});
    strips.append(wrap);
  }
  return strips;
}
async function showAllMaps(name) {
  try {
    const entry = await api(`/api/layer?image=${state.image}&layer=${encodeURIComponent(name)}&maps=512`);
    const record = columns.get(name);
    const fresh = columnElement({...record.entry, ...entry});
    record.element.replaceWith(fresh);
  } catch (e) { showError(e.message); }
}

// ── following one number ────────────────────────────────────────────────────────────────────
function cellAt(event, entry, canvas) {
  const rect = canvas.getBoundingClientRect();
  const column = Math.min(entry.width - 1, Math.max(0, Math.floor((event.clientX - rect.left) / rect.width * entry.width)));
  const row = Math.min(entry.height - 1, Math.max(0, Math.floor((event.clientY - rect.top) / rect.height * entry.height)));
  return {row, column};
}
let hoverTimer = null;
function hoverMap(event, entry, k, canvas) {
  if (state.held) return;
  const {row, column} = cellAt(event, entry, canvas);
  clearTimeout(hoverTimer);
  hoverTimer = setTimeout(() => followCell({layer: entry.name, row, column, channel: k}), 40);
}
function hoverUnit(name, unit) {
  if (state.held) return;
  clearTimeout(hoverTimer);
  hoverTimer = setTimeout(() => followCell({layer: name, row: 0, column: 0, channel: unit}), 40);
}
function clickMap(event, entry, k, canvas) {
  const {row, column} = cellAt(event, entry, canvas);
  holdCell({layer: entry.name, row, column, channel: k});
}
function holdCell(where) { state.held = where; followCell(where, true); }

function focusCell(layer, row, column, channel) {
  const record = columns.get(layer);
  if (!record || !record.info?.cell) return;
  state.focus = {layer, row, column, channel};
  followCell(state.focus);
}
function keyOnColumn(event, name) {
  const record = columns.get(name);
  if (!record) return;
  if (event.key === "Escape") { state.held = null; clearBoxes(); return; }
  if (!record.info.cell) return;
  const focus = state.focus && state.focus.layer === name ? {...state.focus} : {layer: name, row: 0, column: 0, channel: 0};
  const vector = record.kind === "vector";
  const count = vector ? record.entry.shown : record.entry.shown;
  const moves = {ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1]};
  if (event.key in moves) {
    const [dr, dc] = moves[event.key];
    if (vector) focus.channel = Math.max(0, Math.min(count - 1, focus.channel + dr + dc));
    else {
      focus.row = Math.max(0, Math.min(record.height - 1, focus.row + dr));
      focus.column = Math.max(0, Math.min(record.width - 1, focus.column + dc));
    }
  } else if (event.key === "PageDown" || event.key === "]") {
    focus.channel = Math.min((vector ? 1 : count) - 1, focus.channel + 1);
  } else if (event.key === "PageUp" || event.key === "[") {
    focus.channel = Math.max(0, focus.channel - 1);
  } else if (event.key === "Enter" || event.key === " ") {
    state.held = {...focus};
  } else return;
  event.preventDefault();
  state.focus = focus;
  if (state.held && event.key !== "Enter" && event.key !== " ") state.held = {...focus};
  followCell(focus, Boolean(state.held));
}

let cellQuestion = 0;
async function followCell(where, held = false) {
  if (!state.image) return;
  const question = ++cellQuestion;
  const query = new URLSearchParams({image: state.image, layer: where.layer, row: where.row,
                                     column: where.column, channel: where.channel, lang});
  try {
    const cell = await api(`/api/cell?${query}`);
    if (question !== cellQuestion) return;
    state.lastCell = cell;
    drawBoxes(cell);
    drawCell(cell, held || Boolean(state.held));
  } catch (e) {
    if (question !== cellQuestion) return;
    if (e.status === 404 || e.status === 409) return lookAgain();
    $("cell-body").replaceChildren(el("div", {className: "error", text: e.message}));
  }
}

// boxes on the maps: the cell, its window in the layer before, what it sees of the input
function clearBoxes() {
  for (const node of document.querySelectorAll("#overview .box, #overview .on")) {
    if (node.classList.contains("box")) node.remove(); else node.classList.remove("on");
  }
  const svg = document.querySelector("#overview svg.links");
  if (svg) svg.replaceChildren();
}
function box(map, record, top, left, height, width, kind) {
  const canvas = map.firstChild;
  const sy = parseFloat(canvas.style.height) / record.height, sx = parseFloat(canvas.style.width) / record.width;
  const node = el("div", {className: `box ${kind}`, style: {
    top: `${top * sy - 1}px`, left: `${left * sx - 1}px`, height: `${height * sy + 2}px`, width: `${width * sx + 2}px`}});
  map.append(node);
  return node;
}
function drawBoxes(cell) {
  clearBoxes();
  const record = columns.get(cell.layer);
  if (!record) return;
  const links = [];
  let target = null;
  if (record.kind === "maps") {
    const map = record.maps[cell.channel];
    if (map) target = box(map, record, cell.row, cell.column, 1, 1, "cellbox");
  } else if (record.rows) {
    record.rows[cell.channel]?.classList.add("on");
    target = record.rows[cell.channel];
  } else if (record.strips) {
    const strip = record.strips.find((s) => cell.channel >= s.start && cell.channel < s.start + s.n);
    if (strip) {
      target = el("div", {className: "box cellbox", style: {top: `${(cell.channel - strip.start) * strip.cellHeight - 1}px`,
                                                            left: "-1px", width: "16px", height: `${strip.cellHeight + 2}px`}});
      strip.wrap.append(target);
    }
  }
  const source = columns.get(cell.source === "input" ? "input" : cell.source);
  if (source && source.kind === "maps" && cell.window && ["conv", "maxpool", "avgpool"].includes(cell.kind)) {
    const [oy, ox] = cell.origin;
    const kh = cell.window.length, kw = cell.window[0].length;
    const wanted = cell.kind === "conv" ? source.maps.map((_, i) => i) : [cell.channel];
    for (const i of wanted) if (source.maps[i]) links.push(box(source.maps[i], source, oy, ox, kh, kw, ""));
  } else if (source && source.kind === "maps" && ["elementwise", "globalavgpool"].includes(cell.kind)) {
    const map = source.maps[cell.channel];
    if (map) links.push(cell.kind === "elementwise" ? box(map, source, cell.row, cell.column, 1, 1, "")
                                                    : box(map, source, 0, 0, source.height, source.width, ""));
  } else if (source && source.kind === "vector" && cell.kind === "elementwise") {
    const strip = source.strips?.find((s) => cell.channel >= s.start && cell.channel < s.start + s.n);
    if (strip) {
      const node = el("div", {className: "box", style: {top: `${(cell.channel - strip.start) * strip.cellHeight - 1}px`, left: "-1px", width: "16px", height: `${strip.cellHeight + 2}px`}});
      strip.wrap.append(node); links.push(node);
    }
    source.rows?.[cell.channel]?.classList.add("on");
  } else if (source && cell.kind === "fc") {
    for (const strip of source.strips || []) links.push(strip.wrap);
    for (const row of source.rows || []) links.push(row);
  }
  if (cell.kind === "add") {
    const info = record.info;
    for (const path of info.paths) {
      const end = path.layers.length ? columns.get(path.layers[path.layers.length - 1].name) : source;
      if (end && end.maps?.[cell.channel]) links.push(box(end.maps[cell.channel], end, cell.row, cell.column, 1, 1, ""));
    }
    if (!info.paths.some((p) => p.name === "shortcut") && source?.maps?.[cell.channel]) {
      links.push(box(source.maps[cell.channel], source, cell.row, cell.column, 1, 1, ""));
    }
  }
  if (cell.receptive) {
    const input = columns.get("input");
    const [top, left, bottom, right] = cell.receptive;
    if (input && cell.source !== "input") box(input.maps[0], input, top, left, bottom - top + 1, right - left + 1, "field");
  }
  if (target) drawLinks(target, links.slice(0, 32));
}
function drawLinks(target, sources) {
  const overview = $("overview"), svg = overview.querySelector("svg.links");
  if (!svg) return;
  const base = overview.getBoundingClientRect();
  const x0 = overview.scrollLeft - base.left, y0 = overview.scrollTop - base.top;
  svg.setAttribute("width", overview.scrollWidth); svg.setAttribute("height", overview.scrollHeight);
  const to = target.getBoundingClientRect();
  for (const node of sources) {
    const from = node.getBoundingClientRect();
    for (const y of [from.top, from.bottom]) {
      const line = document.createElementNS("http://www.w3.org/2000/svg", "line");
      line.setAttribute("x1", from.right + x0); line.setAttribute("y1", y + y0);
      line.setAttribute("x2", to.left + x0); line.setAttribute("y2", (to.top + to.bottom) / 2 + y0);
      svg.append(line);
    }
  }
}

// the computation as grids
function gridTable(values, options = {}) {
  const scale = options.scale || scaleFor(values);
  const table = el("table", {className: "grid"});
  values.forEach((row, i) => {
    const tr = el("tr");
    row.forEach((v, j) => {
      const td = el("td", {text: v === null ? "−∞" : short(v),
                           style: {background: valueColour(v, scale), color: inkFor(v, scale)}});
      if (v === null) td.className = "pad";
      if (options.chosen && options.chosen[0] === i && options.chosen[1] === j) td.className = "chosen";
      if (options.padded && options.padded(i, j)) td.className = "pad";
      tr.append(td);
    });
    table.append(tr);
  });
  return table;
}
function channelOf(volume, k) { return volume.map((row) => row.map((cell) => cell[k])); }
function gridBox(caption, table) { return el("div", {className: "grid-box"}, table, el("div", {className: "caption", text: caption})); }
function drawCell(cell, held) {
  const body = $("cell-body");
  const text = layerInfo(cell.layer)?.label || cell.text;  // a block: its word, not all its layers
  const title = cell.kind === "fc" ? t("at_unit", {layer: cell.layer, text, map: cell.channel})
                                   : t("at_cell", {layer: cell.layer, text, map: cell.channel, row: cell.row, column: cell.column});
  const parts = [el("div", {className: "title"}, title, held ? el("span", {className: "muted", text: `  · ${t("held")}`}) : null)];
  if (cell.kind === "conv") parts.push(...convParts(cell));
  else if (cell.kind === "maxpool" || cell.kind === "avgpool") {
    const inside = cell.window.map((row) => row.map((v) => v));
    parts.push(el("div", {className: "equation"}, gridBox(t("pool_window", {map: cell.channel}),
      gridTable(inside, {chosen: cell.chosen, padded: (i, j) => cell.origin[0] + i < 0 || cell.origin[1] + j < 0}))));
    const flat = cell.window.flat().filter((v) => v !== null);
    parts.push(el("div", {className: "result"}, cell.kind === "maxpool" ? t("largest", {v: fmt(cell.total)})
      : t("mean", {s: fmt(flat.reduce((a, b) => a + b, 0)), n: flat.length, v: fmt(cell.total)})));
  } else if (cell.kind === "fc") parts.push(...fcParts(cell));
  else if (cell.kind === "globalavgpool") {
    parts.push(el("div", {className: "result", text: t("map_mean", {map: cell.channel, n: cell.window.flat().length, v: fmt(cell.total)})}));
  } else if (cell.kind === "elementwise") {
    parts.push(el("div", {className: "result", text: t("elementwise", {x: fmt(cell.window), v: fmt(cell.output)})}));
  } else if (cell.kind === "add") {
    parts.push(el("div", {className: "result", text: t("add", {a: fmt(cell.window[0]), s: cell.shortcut === "projection" ? "S(x)" : "x",
                                                             b: fmt(cell.window[1]), v: fmt(cell.total)})}));
  }
  parts.push(el("details", {className: "as-text"}, el("summary", {className: "small", text: t("as_text")}),
                 el("pre", {text: cell.lines.join("\n")})));
  body.className = "";
  body.dataset.where = [cell.layer, cell.row, cell.column, cell.channel].join(",");
  body.replaceChildren(...parts);
}
function convParts(cell) {
  const channels = cell.window[0][0].length;
  const shown = Math.min(channels, 3);
  const rows = [];
  const weightScale = scaleFor(cell.weights), productScale = scaleFor(cell.products), windowScale = scaleFor(cell.window);
  for (let k = 0; k < shown; k++) {
    rows.push(el("div", {className: "equation"},
      channels > 1 ? el("span", {className: "small muted", text: t("channel", {k})}) : null,
      gridBox(t("window"), gridTable(channelOf(cell.window, k), {scale: windowScale,
        padded: (i, j) => cell.origin[0] + i < 0 || cell.origin[1] + j < 0 || cell.origin[0] + i >= (columns.get(cell.source)?.height ?? 1e9) || cell.origin[1] + j >= (columns.get(cell.source)?.width ?? 1e9)})),
      el("span", {className: "op", text: "×"}),
      gridBox(t("filter"), gridTable(channelOf(cell.weights, k), {scale: weightScale})),
      el("span", {className: "op", text: "="}),
      gridBox(t("products"), gridTable(channelOf(cell.products, k), {scale: productScale}))));
  }
  if (channels > shown) {
    let rest = 0;
    for (const row of cell.products) for (const px of row) for (let k = shown; k < channels; k++) rest += px[k];
    rows.push(el("div", {className: "small muted", text: t("more_channels", {n: channels - shown, s: fmt(rest)})}));
  }
  const n = cell.products.flat(2).length;
  const sum = cell.total - cell.bias;
  const result = el("div", {className: "result"},
    `${t("sum_of", {n})} = ${fmt(sum)}   ${t("bias")} (${fmt(cell.bias)}) = `, el("b", {text: fmt(cell.total)}));
  rows.push(result);
  if (cell.relu !== null) rows.push(el("div", {className: "result"}, `ReLU(${fmt(cell.total)}) = max(0, ${fmt(cell.total)}) = `, el("b", {text: fmt(cell.relu)})));
  return rows;
}
function strip(values) {
  const scale = scaleFor(values);
  const canvas = el("canvas", {width: values.length, height: 1});
  const data = new Uint8Array(values.length);
  values.forEach((v, i) => { data[i] = Math.max(0, Math.min(255, Math.round((v - scale.low) / (scale.high - scale.low) * 255))); });
  paintBytes(canvas, data, 0, values.length, 1, scale);
  return canvas;
}
function fcParts(cell) {
  const terms = cell.products.map((p, i) => [p, i]).sort((a, b) => Math.abs(b[0]) - Math.abs(a[0])).slice(0, 8);
  const list = el("div", {className: "terms"}, ...terms.map(([p, i]) =>
    el("div", {text: `w[${i}]·x[${i}] = ${short(cell.weights[i])} × ${short(cell.window[i])} = ${fmt(p)}`})));
  const parts = [el("div", {className: "strips"},
    el("div", {className: "caption small", text: t("input_vector", {n: cell.window.length})}), strip(cell.window),
    el("div", {className: "caption small", text: t("weight_row", {k: cell.channel})}), strip(cell.weights),
    el("div", {className: "caption small", text: t("products")}), strip(cell.products)),
    el("div", {className: "small muted", text: t("largest_terms")}), list,
    el("div", {className: "result"}, `${t("sum_of", {n: cell.products.length})} = ${fmt(cell.total - cell.bias)}   ${t("bias")} (${fmt(cell.bias)}) = `, el("b", {text: fmt(cell.total)}))];
  if (cell.relu !== null) parts.push(el("div", {className: "result"}, `ReLU(${fmt(cell.total)}) = `, el("b", {text: fmt(cell.relu)})));
  return parts;
}

// ── softmax, taken apart ────────────────────────────────────────────────────────────────────
function drawSoftmax(answer) {
  const box = $("softmax");
  const s = answer.softmax;
  if (!s) { box.replaceChildren(el("p", {className: "muted", text: "—"})); return; }
  const bound = Math.max(...s.logits.map(Math.abs)) || 1;
  const best = s.probabilities.indexOf(Math.max(...s.probabilities));
  const head = el("tr", {}, ...[t("class"), t("logit"), "", t("exp"), "", t("prob"), ""].map((text) => el("th", {text})));
  const table = el("table", {}, head);
  answer.classes.forEach((name, i) => {
    const z = s.logits[i];
    const signed = el("div", {className: "signed"}, el("div", {className: "fill", style: {
      left: `${z < 0 ? 50 + 50 * z / bound : 50}%`, width: `${50 * Math.abs(z) / bound}%`, background: z < 0 ? "#4a7fc1" : "#c8553d"}}));
    const plain = (v, max) => el("div", {className: "plain"}, el("div", {className: "fill", style: {width: `${100 * v / (max || 1)}%`}}));
    table.append(el("tr", {className: i === best ? "best" : ""},
      el("td", {className: "name", text: name, title: name}), el("td", {className: "num", text: fmt(z)}), el("td", {}, signed),
      el("td", {className: "num", text: fmt(s.exp[i])}), el("td", {}, plain(s.exp[i], 1)),
      el("td", {className: "num", text: `${(100 * s.probabilities[i]).toFixed(2)}%`}), el("td", {}, plain(s.probabilities[i], 1))));
  });
  const parts = [table, el("div", {className: "formula", text: "p_i = e^(z_i − max z) / Σ_j e^(z_j − max z)"}),
                 el("div", {className: "formula", text: t("softmax_sum", {m: fmt(s.max), s: fmt(s.sum)})})];
  if (s.ensemble) parts.push(el("p", {className: "small muted", text: t("ensemble_note")}));
  box.replaceChildren(...parts);
}

// ── the convolution, animated ───────────────────────────────────────────────────────────────
const ANIMATIONS = ["stride1", "stride2", "stride3", "pad1", "maxpool", "custom", "model"];
function renderAnimationChoices() {
  const box = $("anim-choices");
  box.replaceChildren();
  for (const name of ANIMATIONS) {
    if (name === "model" && !state.model?.first_conv) continue;
    const button = el("button", {type: "button", role: "radio", "aria-checked": String(state.anim.name === name),
                                 tabindex: state.anim.name === name ? "0" : "-1", text: t(`anim_${name}`), "data-name": name});
    button.onclick = () => loadAnimation(name);
    button.onkeydown = (event) => {
      const names = [...box.querySelectorAll("button")].map((b) => b.dataset.name);
      const i = names.indexOf(name);
      const next = event.key === "ArrowRight" || event.key === "ArrowDown" ? names[(i + 1) % names.length]
                 : event.key === "ArrowLeft" || event.key === "ArrowUp" ? names[(i + names.length - 1) % names.length] : null;
      if (next) { event.preventDefault(); loadAnimation(next).then(() => box.querySelector(`[data-name="${next}"]`)?.focus()); }
    };
    box.append(button);
  }
  if (state.model?.first_conv && state.anim.name === "model" && state.anim.data) {
    const select = el("input", {type: "number", min: 0, max: state.anim.data.maps - 1, value: state.anim.map, id: "anim-map",
                                "aria-label": t("anim_map"), style: {width: "4.5em"}});
    select.onchange = () => { state.anim.map = Math.max(0, Math.min(state.anim.data.maps - 1, parseInt(select.value, 10) || 0)); loadAnimation("model"); };
    box.append(el("label", {className: "small"}, `${t("anim_map")} `, select));
  }
}
let animationQuestion = 0, playgroundPause = null;
const LIMITS = {pH: [1, 32], pW: [1, 32], pF: [1, 11], pS: [1, 8], pP: [0, 5]};
function playgroundSizes() {  // whole numbers within the limits, or a note saying so
  const values = {};
  for (const [id, [low, high]] of Object.entries(LIMITS)) {
    const text = $(id).value.trim();
    const ok = /^\d{1,2}$/.test(text) && Number(text) >= low && Number(text) <= high;
    $(id).setAttribute("aria-invalid", String(!ok));
    if (!ok) { $("playground-note").textContent = t("whole_numbers"); return null; }
    values[id] = Number(text);
  }
  $("playground-note").textContent = "";
  return {h: values.pH, w: values.pW, kernel: values.pF, stride: values.pS, pad: values.pP};
}
function playgroundSoon() { clearTimeout(playgroundPause); playgroundPause = setTimeout(() => loadAnimation("custom"), 250); }
async function loadAnimation(name) {
  stopAnimation();
  state.anim.name = name;
  const query = new URLSearchParams({name, lang});
  if (name === "model") {
    if (!state.image) { renderAnimationChoices(); $("anim-explain").textContent = t("pick_image"); return; }
    query.set("image", state.image); query.set("map", state.anim.map);
  }
  if (name === "custom") {
    const sizes = playgroundSizes();
    if (!sizes) return;
    for (const [key, value] of Object.entries(sizes)) query.set(key, value);
  }
  const asked = ++animationQuestion;
  // a new animation starts at its first step; steps (and play) pressed while it loads count
  state.anim.step = 0; state.anim.loading = true;
  try {
    const data = await api(`/api/animation?${query}`);
    if (asked !== animationQuestion) return;  // a later question was asked meanwhile
    state.anim.loading = false;
    let low = Infinity, high = -Infinity;  // once, for drawing the input
    for (const v of data.input.flat(2)) { if (v < low) low = v; if (v > high) high = v; }
    data.low = low; data.high = high;
    state.anim.data = data; state.anim.step = Math.min(state.anim.step, data.steps.length - 1);
    renderAnimationChoices();
    $("anim-explain").textContent = data.explain || data.description;
    $("anim-error").hidden = !data.error;
    $("anim-error").textContent = data.error ? `${t("does_not_fit")} ${data.error}` : "";
    drawAnimation();
    if (state.anim.waiting) { state.anim.waiting = false; playAnimation(); }  // pressed while it loaded
  } catch (e) {
    if (asked === animationQuestion) { state.anim.loading = false; stopAnimation(); }
    $("anim-explain").textContent = e.message;
  }
}
function stopAnimation() {
  clearInterval(state.anim.timer); state.anim.timer = null; state.anim.waiting = false;
  $("anim-play").textContent = t("play");
}
function playAnimation() {
  if (state.anim.timer || state.anim.waiting) return stopAnimation();
  const data = state.anim.data;
  if (!data || state.anim.loading) {  // it plays once the animation arrives
    state.anim.waiting = true; $("anim-play").textContent = t("pause"); return;
  }
  if (state.anim.step >= data.steps.length - 1) state.anim.step = 0;
  $("anim-play").textContent = t("pause");
  const tick = () => {
    if (state.anim.step >= data.steps.length - 1) return stopAnimation();
    state.anim.step += 1; drawAnimation();
  };
  state.anim.timer = setInterval(tick, 1000 / Number($("anim-speed").value));
}
function greyLevel(v) {  // an image as the network sees it: darkest to brightest
  const {low, high} = state.anim.data;
  return Math.max(0, Math.min(1, (v - low) / ((high - low) || 1)));
}
function greyColour(v) { const g = Math.round(255 * greyLevel(v)); return `rgb(${g},${g},${g})`; }
function lightColour(v, scale) {  // the lecture's numbers on paper: white to a light blue
  const q = Math.max(0, Math.min(1, (v - scale.low) / ((scale.high - scale.low) || 1)));
  return `rgb(${Math.round(255 - 120 * q)},${Math.round(255 - 75 * q)},${Math.round(255 - 25 * q)})`;
}
function animCellSize(h, w) { return Math.max(3, Math.min(40, Math.floor(Math.min(420 / Math.max(h, w), 40)))); }
function drawAnimation() {
  const data = state.anim.data;
  if (!data || state.anim.loading) return;  // (the one on its way is drawn when it comes)
  const [top, bottom, left, right] = data.pad;
  const h = data.input.length, w = data.input[0].length;
  const ph = h + top + bottom, pw = w + left + right;
  const kh = data.kernel[0], kw = data.kernel[1];
  const step = Math.min(state.anim.step, data.steps.length - 1);
  const [wy, wx] = data.steps[step];
  const offEdge = !data.fits && step === data.steps.length - 1;
  // wide enough for a window that falls off the edge
  const lastStep = data.steps[data.steps.length - 1];
  const extraW = data.fits ? 0 : Math.max(0, lastStep[1] + kw - pw);
  const extraH = data.fits ? 0 : Math.max(0, lastStep[0] + kh - ph);
  const size = animCellSize(ph + extraH, pw + extraW);
  const channel = (v) => (Array.isArray(v) ? v[0] : v);
  const inputValues = data.input.map((row) => row.map(channel));
  const scale = scaleFor(inputValues);
  const canvas = $("anim-input");
  canvas.width = (pw + extraW) * size + 2; canvas.height = (ph + extraH) * size + 2;
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, canvas.width, canvas.height);
  const numbers = size >= 22;
  g.font = `${Math.max(9, Math.min(14, size * 0.42))}px ui-monospace, monospace`;
  g.textAlign = "center"; g.textBaseline = "middle";
  const rgbOf = (r, c) => {  // a pixel of a 3-channel input in colour, as the model sees it
    const px = data.input[r][c];
    if (!Array.isArray(px) || data.channels !== 3) return null;
    return `rgb(${px.map((v) => Math.round(255 * (v - data.low) / ((data.high - data.low) || 1))).join(",")})`;
  };
  for (let r = 0; r < ph; r++) {
    for (let c = 0; c < pw; c++) {
      const inside = r >= top && r < top + h && c >= left && c < left + w;
      const x = 1 + c * size, y = 1 + r * size;
      if (inside) {
        const v = inputValues[r - top][c - left];
        g.fillStyle = rgbOf(r - top, c - left) || (data.name === "model" ? greyColour(v) : lightColour(v, scale));
        g.fillRect(x, y, size, size);
        if (numbers) { g.fillStyle = data.name === "model" ? (greyLevel(v) < 0.55 ? "#fff" : "#111") : "#1d232b"; g.fillText(short(v).replace(/\.00$/, ""), x + size / 2, y + size / 2); }
      } else {
        g.fillStyle = "#f1f1f1"; g.fillRect(x, y, size, size);
        if (numbers) { g.fillStyle = "#999"; g.fillText("0", x + size / 2, y + size / 2); }
      }
      if (size >= 6) { g.strokeStyle = inside ? "rgba(0,0,0,.12)" : "rgba(0,0,0,.25)"; g.setLineDash(inside ? [] : [2, 2]); g.strokeRect(x, y, size, size); }
    }
  }
  g.setLineDash([]);
  g.lineWidth = 3; g.strokeStyle = offEdge ? "#b3261e" : "#ff3d7f";
  g.strokeRect(1 + wx * size, 1 + wy * size, kw * size, kh * size);
  if (offEdge) {  // the part of the window outside the (padded) input
    g.fillStyle = "rgba(179,38,30,.15)";
    if (wx + kw > pw) g.fillRect(1 + pw * size, 1 + wy * size, (wx + kw - pw) * size, kh * size);
    if (wy + kh > ph) g.fillRect(1 + wx * size, 1 + ph * size, kw * size, (wy + kh - ph) * size);
  }
  g.lineWidth = 1;
  $("anim-input-caption").textContent = t("input_caption", {h, w, pad: top ? t("padded", {p: top}) : ""}) +
    (data.kind === "conv" ? ` · ${data.kernel.join("×")}, ${t("stride_word", {s: data.stride[0]})}` : "");
  // the output, filling cell by cell
  const out = $("anim-output");
  if (data.output) {
    const [oh, ow] = data.size;
    const osize = animCellSize(oh, ow);
    out.width = ow * osize + 2; out.height = oh * osize + 2;
    const o = out.getContext("2d");
    o.clearRect(0, 0, out.width, out.height);
    const outScale = scaleFor(data.output);
    o.font = `${Math.max(9, Math.min(14, osize * 0.42))}px ui-monospace, monospace`;
    o.textAlign = "center"; o.textBaseline = "middle";
    for (let i = 0; i <= step; i++) {
      const r = Math.floor(i / ow), c = i % ow, v = data.output[r][c];
      o.fillStyle = valueColour(v, outScale); o.fillRect(1 + c * osize, 1 + r * osize, osize, osize);
      if (osize >= 22) { o.fillStyle = inkFor(v, outScale); o.fillText(short(v).replace(/\.00$/, ""), 1 + c * osize + osize / 2, 1 + r * osize + osize / 2); }
    }
    o.strokeStyle = "rgba(0,0,0,.2)";
    for (let r = 0; r < oh; r++) for (let c = 0; c < ow; c++) if (osize >= 6) o.strokeRect(1 + c * osize, 1 + r * osize, osize, osize);
    o.lineWidth = 3; o.strokeStyle = "#ff3d7f";
    o.strokeRect(1 + (step % ow) * osize, 1 + Math.floor(step / ow) * osize, osize, osize); o.lineWidth = 1;
    $("anim-output-caption").textContent = t("output_caption", {h: oh, w: ow});
  } else {
    out.width = 10; out.height = 10; out.getContext("2d").clearRect(0, 0, 10, 10);
    $("anim-output-caption").textContent = t("no_output");
  }
  $("anim-counter").textContent = t("step_of", {i: step + 1, n: data.steps.length}) + (offEdge ? ` — ${t("falls_off")}` : "");
  $("anim-counter").dataset.steps = data.steps.length;
  drawAnimationSum(data, step, wy, wx, offEdge);
}
function drawAnimationSum(data, step, wy, wx, offEdge) {
  const box = $("anim-sum");
  if (offEdge) { box.replaceChildren(el("div", {className: "error", text: t("falls_off")})); return; }
  const [top, , left] = data.pad;
  const kh = data.kernel[0], kw = data.kernel[1];
  const value = (r, c, k) => {  // the padded input: zeros (or −∞ for max pooling) outside
    const y = r - top, x = c - left;
    if (y < 0 || x < 0 || y >= data.input.length || x >= data.input[0].length) return data.kind === "maxpool" ? null : 0;
    const px = data.input[y][x];
    return Array.isArray(px) ? px[k] : px;
  };
  const parts = [];
  const channels = data.channels;
  const windows = [];
  for (let k = 0; k < channels; k++) {
    windows.push(Array.from({length: kh}, (_, i) => Array.from({length: kw}, (_, j) => value(wy + i, wx + j, k))));
  }
  const padded = (i, j) => wy + i < top || wx + j < left || wy + i >= top + data.input.length || wx + j >= left + data.input[0].length;
  // the layer's own output at this step (none when the stride does not fit: the sum is shown)
  const out = data.output ? data.output[Math.floor(step / data.size[1])][step % data.size[1]] : null;
  if (data.kind === "maxpool") {
    const flat = windows[0].flat();
    const best = flat.indexOf(Math.max(...flat.filter((v) => v !== null)));
    parts.push(el("div", {className: "equation"}, gridBox(t("window"), gridTable(windows[0], {chosen: [Math.floor(best / kw), best % kw], padded})),
      el("span", {className: "op", text: "→"}), el("div", {className: "result"}, `max = `,
        el("b", {text: fmt(out ?? Math.max(...flat.filter((v) => v !== null)))}))));
  } else {
    let total = 0;
    for (let k = 0; k < Math.min(channels, 3); k++) {
      const filter = data.filter.map((row) => row.map((px) => px[k]));
      const products = windows[k].map((row, i) => row.map((v, j) => v * filter[i][j]));
      parts.push(el("div", {className: "equation"},
        channels > 1 ? el("span", {className: "small muted", text: t("channel", {k})}) : null,
        gridBox(t("window"), gridTable(windows[k], {padded})), el("span", {className: "op", text: "×"}),
        gridBox(t("filter"), gridTable(filter)), el("span", {className: "op", text: "="}),
        gridBox(t("products"), gridTable(products))));
    }
    for (let k = 0; k < channels; k++) {
      for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) total += windows[k][i][j] * data.filter[i][j][k];
    }
    if (channels > 3) parts.push(el("div", {className: "small muted", text: t("more_channels", {n: channels - 3, s: "…"})}));
    parts.push(el("div", {className: "result"}, `${t("sum_of", {n: kh * kw * channels})} = ${fmt(total)}   ${t("bias")} (${fmt(data.bias)}) = `,
                  el("b", {text: fmt(out ?? total + data.bias)})));
  }
  box.replaceChildren(...parts);
}

// ── watching training ───────────────────────────────────────────────────────────────────────
async function refreshTraining() {
  let report;
  try { report = await api("/api/training"); } catch { return; }
  state.training = report;
  const status = $("training-state");
  if (!report.run) {
    status.textContent = t("not_run");
  } else if (!report.rows.length) {
    status.textContent = t("waiting");
  } else {
    const e = report.rows[report.rows.length - 1].epoch;
    status.textContent = report.finished ? t("training_done", {e}) : t("training_now", {e, n: report.epochs ?? "?"});
  }
  const rows = report.rows || [];
  drawCurve($("curve-loss"), rows, [["train_loss", t("train"), "#2f5fb3"], ["val_loss", t("validation"), "#c8553d"]], t("loss"), report.epochs);
  drawCurve($("curve-accuracy"), rows, [["train_accuracy", t("train"), "#2f5fb3"], ["val_accuracy", t("validation"), "#c8553d"]], t("accuracy"), report.epochs, true);
  if (state.model) { drawFilters(); drawTrainingMaps(); }
}
function drawTrainingMaps() {  // the first conv layer's maps of the image shown, this epoch
  const box = $("train-maps");
  const entry = state.answer && state.model.first_conv &&
    (function find(entries) {
      for (const e of entries) {
        if (e.name === state.model.first_conv) return e;
        for (const p of e.paths || []) { const f = find(p.layers); if (f) return f; }
      }
      return null;
    })(state.answer.layers);
  if (!entry) { box.replaceChildren(el("span", {className: "muted", text: t("pick_image")})); return; }
  const data = bytes(entry.data);
  const size = Math.max(40, Math.min(96, entry.height * 2));
  const nodes = [];
  for (let k = 0; k < entry.shown; k++) {
    const canvas = el("canvas", {width: entry.width, height: entry.height,
                                 style: {width: `${size * entry.width / Math.max(entry.height, entry.width)}px`,
                                         height: `${size * entry.height / Math.max(entry.height, entry.width)}px`}});
    paintBytes(canvas, data, k * entry.height * entry.width, entry.width, entry.height, entry.scale);
    nodes.push(canvas);
  }
  box.replaceChildren(...nodes, legend(entry.scale));
}
function niceStep(raw) {  // 1, 2 or 5 times a power of ten
  const power = Math.pow(10, Math.floor(Math.log10(raw || 1)));
  return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) || 10 * power;
}
function drawCurve(canvas, rows, series, title, epochs, percent = false) {
  const g = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, L = 48, R = 12, T = 24, B = 32;
  g.clearRect(0, 0, W, H);
  g.fillStyle = "#1d232b"; g.font = "13px system-ui, sans-serif"; g.textAlign = "left"; g.fillText(title, L, 15);
  const reached = rows.length ? rows[rows.length - 1].epoch : 1;
  const last = Math.max(state.training?.finished ? reached : Math.max(epochs || 0, reached), 1);
  const values = rows.flatMap((row) => series.map(([key]) => row[key])).filter((v) => v !== null && v !== undefined && Number.isFinite(v));
  let low = 0, high = percent ? 1 : Math.max(...values, 1e-9);
  if (percent) low = Math.max(0, Math.floor((Math.min(...values, 1) - 0.02) * 10) / 10);
  else { const step = niceStep(high / 4); high = Math.ceil(high / step) * step; }
  const x = (e) => L + (W - L - R) * (last === 1 ? 0.5 : (e - 1) / (last - 1));
  const y = (v) => T + (H - T - B) * (1 - (v - low) / ((high - low) || 1));
  g.strokeStyle = "#dde2e8"; g.fillStyle = "#5f6b78"; g.font = "11px system-ui, sans-serif";
  const tick = percent ? niceStep((high - low) / 5) : niceStep(high / 4);
  for (let v = low; v <= high + 1e-9; v += tick) {
    g.beginPath(); g.moveTo(L, y(v)); g.lineTo(W - R, y(v)); g.stroke();
    g.textAlign = "right"; g.fillText(percent ? `${Math.round(100 * v)}%` : String(+v.toFixed(4)), L - 4, y(v) + 4);
  }
  const every = [1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000].find((n) => last / n <= 10) || Math.ceil(last / 10);
  g.textAlign = "center";  // whole epochs only: 1, then multiples of the step
  for (let e = 1; e <= last; e = e === 1 && every > 1 ? every : e + every) g.fillText(String(e), x(e), H - B + 14);
  g.fillText(t("epoch"), (L + W - R) / 2, H - 4);
  series.forEach(([key, name, colour], s) => {
    const points = rows.filter((row) => row[key] !== null && row[key] !== undefined && Number.isFinite(row[key]));
    g.strokeStyle = colour; g.fillStyle = colour; g.lineWidth = 2;
    g.beginPath();
    points.forEach((row, i) => { if (i === 0) g.moveTo(x(row.epoch), y(row[key])); else g.lineTo(x(row.epoch), y(row[key])); });
    g.stroke();
    for (const row of points) { g.beginPath(); g.arc(x(row.epoch), y(row[key]), 2.5, 0, 7); g.fill(); }
    g.lineWidth = 1; g.textAlign = "left"; g.font = "11.5px system-ui, sans-serif";
    g.fillRect(W - R - 150 + s * 75, 8, 10, 3); g.fillStyle = "#1d232b"; g.fillText(name, W - R - 136 + s * 75, 13);
  });
}
async function drawFilters() {
  const box = $("filters");
  if (!state.model.first_conv) { box.replaceChildren(el("span", {className: "muted", text: "—"})); return; }
  try {
    const f = await api("/api/filters");
    const data = bytes(f.data);
    const [k, kh, kw, c] = f.shape;
    const size = Math.max(36, Math.min(64, kh * 12));
    const nodes = [];
    const colour = painter(f.scale);
    for (let i = 0; i < k; i++) {
      const canvas = el("canvas", {width: kw, height: kh, style: {width: `${size * kw / Math.max(kh, kw)}px`, height: `${size * kh / Math.max(kh, kw)}px`},
                                   title: `${f.layer} ${f.text}: ${i}`});
      const g = canvas.getContext("2d"), image = g.createImageData(kw, kh);
      for (let p = 0; p < kh * kw; p++) {
        let rgb;
        if (c === 3) rgb = [0, 1, 2].map((ch) => data[(i * kh * kw + p) * 3 + ch]);  // a colour filter in colour
        else rgb = colour(data[(i * kh * kw + p) * c]);
        image.data.set([...rgb, 255], 4 * p);
      }
      g.putImageData(image, 0, 0);
      nodes.push(canvas);
    }
    box.replaceChildren(...nodes);
    $("filters-layer").textContent = `${f.layer} ${f.text}`;
  } catch (e) { box.replaceChildren(el("span", {className: "error", text: e.message})); }
}

// ── the test images ─────────────────────────────────────────────────────────────────────────
async function loadExamples() {
  if (!state.model || !state.model.examples) { $("examples-box").hidden = true; return; }
  $("examples-box").hidden = false;
  try {
    const list = await api("/api/examples");
    state.examples = list;
    renderExamples();
  } catch (e) { showError(e.message); }
}
function renderExamples() {
  const list = state.examples;
  if (!list) return;
  const only = $("mistakes-only").checked;
  const box = $("examples");
  box.replaceChildren();
  $("mistake-count").textContent = list.items.some((i) => i.correct !== null) ? t("mistakes", {n: list.mistakes, m: list.count}) : "";
  for (const item of list.items) {
    if (only && item.correct !== false) continue;
    const label = item.predicted === null ? t("label_only", {i: item.index, label: item.label ?? "?"})
                : item.label === null ? t("pred_only", {i: item.index, pred: item.predicted})
                : t("label_pred", {i: item.index, label: item.label, pred: item.predicted});
    const button = el("button", {type: "button", className: item.correct === false ? "wrong" : "", title: label,
                                 "aria-label": label, "aria-pressed": String(state.exampleIndex === item.index),
                                 "data-index": item.index},
                      el("img", {src: `/api/examples/${item.index}?v=${state.version}`, alt: "", loading: "lazy"}));
    button.onclick = () => lookInside(imageAt(`/api/examples/${item.index}?v=${state.version}`), item.index);
    button.onkeydown = (event) => moveInExamples(event, button);
    box.append(button);
  }
  rovingExamples();
}
function rovingExamples() {  // one Tab stop for the strip: the image shown (or the first)
  const buttons = [...document.querySelectorAll("#examples button")];
  const current = buttons.find((b) => b.getAttribute("aria-pressed") === "true") || buttons[0];
  for (const b of buttons) b.tabIndex = b === current ? 0 : -1;
}
function moveInExamples(event, button) {
  const buttons = [...document.querySelectorAll("#examples button")];
  const i = buttons.indexOf(button);
  const perRow = Math.max(1, Math.round($("examples").clientWidth / (button.offsetWidth + 4)));
  const moves = {ArrowRight: 1, ArrowLeft: -1, ArrowDown: perRow, ArrowUp: -perRow,
                 Home: -i, End: buttons.length - 1 - i};
  if (!(event.key in moves)) return;
  event.preventDefault();
  const next = buttons[Math.max(0, Math.min(buttons.length - 1, i + moves[event.key]))];
  for (const b of buttons) b.tabIndex = b === next ? 0 : -1;
  next.focus();
}
function markExample() {
  for (const button of document.querySelectorAll("#examples button")) {
    button.setAttribute("aria-pressed", String(Number(button.dataset.index) === state.exampleIndex));
  }
  if (!document.activeElement?.closest("#examples")) rovingExamples();
}

// ── tabs ────────────────────────────────────────────────────────────────────────────────────
const TABS = ["overview", "animation", "softmax", "training"];
function selectTab(name, focus = false) {
  for (const tab of TABS) {
    const on = tab === name;
    $(`tab-${tab}`).setAttribute("aria-selected", String(on));
    $(`tab-${tab}`).tabIndex = on ? 0 : -1;
    $(`view-${tab}`).hidden = !on;
  }
  if (focus) $(`tab-${name}`).focus();
  if (name === "animation" && !state.anim.data) loadAnimation(state.anim.name);
  if (name === "animation" && state.anim.name === "model") loadAnimation("model");
  if (name === "training") refreshTraining();
  if (name !== "animation") stopAnimation();
}

// ── drawing ─────────────────────────────────────────────────────────────────────────────────
let canvas, pen, drawing = false;
function clearCanvas() { pen.fillStyle = "#000"; pen.fillRect(0, 0, canvas.width, canvas.height); state.drawn = false; }
function canvasPoint(event) {
  const rect = canvas.getBoundingClientRect();
  return [(event.clientX - rect.left) * canvas.width / rect.width, (event.clientY - rect.top) * canvas.height / rect.height];
}

// ── watching the model on disk ──────────────────────────────────────────────────────────────
async function poll() {
  try {
    const now = await api("/api/version");
    if (now.state === "waiting") { showNotice(t("waiting")); if (!$("view-training").hidden) refreshTraining(); return; }
    if (now.state !== "ready") { if (now.message) showNotice(now.message); return; }
    if (state.model === null || now.version !== state.version) {
      const first = state.model === null;
      await loadModel(true);
      if (first) { await start2(); return; }
      showNotice(now.epoch ? t("changed", {e: now.epoch}) : t("changed_plain"));
      renderAnimationChoices();
      if (state.image) await lookAgain(); else await startImage();
      loadExamples();
      if (!$("view-training").hidden) refreshTraining();
      if (!$("view-animation").hidden) loadAnimation(state.anim.name);
    } else if (now.problem) {
      showNotice(t("problem", {p: now.problem}));
    }
    if (state.model?.run && !$("view-training").hidden) refreshTraining();
  } catch { /* the server is restarting; try again later */ }
}
async function startImage() {
  if (state.model.examples) {
    return lookInside(imageAt(`/api/examples/0?v=${state.version}`), 0);
  }
  return lookInside(imageAt("/api/sample"));
}
async function start2() {  // once a model is there
  renderAnimationChoices();
  await loadExamples();
  await startImage();
}

async function start() {
  applyLanguage();
  canvas = $("draw");
  pen = canvas.getContext("2d");
  canvas.onpointerdown = (e) => { drawing = true; canvas.setPointerCapture(e.pointerId); pen.beginPath(); pen.moveTo(...canvasPoint(e)); };
  canvas.onpointermove = (e) => {
    if (!drawing) return;
    pen.lineWidth = 16; pen.lineCap = "round"; pen.lineJoin = "round"; pen.strokeStyle = "#fff";
    pen.lineTo(...canvasPoint(e)); pen.stroke(); state.drawn = true;
  };
  canvas.onpointerup = () => { if (!drawing) return; drawing = false; canvas.toBlob((b) => lookInside(b)); };
  $("clear").onclick = clearCanvas;
  $("use").onclick = () => { if (!state.drawn) return showError(t("draw_first")); canvas.toBlob((b) => lookInside(b)); };
  $("draw-toggle").onclick = () => {
    const open = $("draw-box").hidden;
    $("draw-box").hidden = !open; $("draw-toggle").setAttribute("aria-expanded", String(open));
  };
  $("sample").onclick = () => lookInside(imageAt("/api/sample"));
  $("upload").onchange = () => { if ($("upload").files[0]) lookInside($("upload").files[0]); $("upload").value = ""; };
  $("lang").onclick = switchLanguage;
  $("mistakes-only").onchange = renderExamples;
  for (const tab of TABS) {
    $(`tab-${tab}`).onclick = () => selectTab(tab);
    $(`tab-${tab}`).onkeydown = (event) => {
      const i = TABS.indexOf(tab);
      if (event.key === "ArrowRight") selectTab(TABS[(i + 1) % TABS.length], true);
      else if (event.key === "ArrowLeft") selectTab(TABS[(i + TABS.length - 1) % TABS.length], true);
      else return;
      event.preventDefault();
    };
  }
  $("anim-play").onclick = playAnimation;
  for (const id of Object.keys(LIMITS)) $(id).oninput = playgroundSoon;
  $("playground").onsubmit = (event) => { event.preventDefault(); loadAnimation("custom"); };
  $("anim-step").onclick = () => {  // before the animation arrives too: it opens at that step
    stopAnimation();
    const last = state.anim.data && !state.anim.loading ? state.anim.data.steps.length - 1 : Infinity;
    state.anim.step = Math.min(last, state.anim.step + 1); drawAnimation();
  };
  $("anim-back").onclick = () => { stopAnimation(); state.anim.step = Math.max(0, state.anim.step - 1); drawAnimation(); };
  $("anim-speed").oninput = () => { if (state.anim.timer) { stopAnimation(); playAnimation(); } };
  document.addEventListener("keydown", (event) => { if (event.key === "Escape") { state.held = null; clearBoxes(); } });
  // a file dropped anywhere
  let depth = 0;
  document.addEventListener("dragenter", (e) => { if (e.dataTransfer?.types?.includes("Files")) { depth++; $("drop").hidden = false; } });
  document.addEventListener("dragleave", () => { depth = Math.max(0, depth - 1); if (!depth) $("drop").hidden = true; });
  document.addEventListener("dragover", (e) => e.preventDefault());
  document.addEventListener("drop", (e) => {
    e.preventDefault(); depth = 0; $("drop").hidden = true;
    const file = e.dataTransfer?.files?.[0];
    if (file) lookInside(file);
  });
  clearCanvas();
  const model = await loadModel();
  if (model.state === "ready") await start2();
  else refreshTraining();
  setInterval(poll, model.run || model.state === "waiting" ? 2000 : 5000);
}

document.addEventListener("DOMContentLoaded", () => start().catch((e) => showError(e.message)));
