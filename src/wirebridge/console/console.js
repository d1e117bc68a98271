// The wirebridge console: plain JavaScript, no build step, nothing loaded from elsewhere.
// The key is asked once and kept in this tab's sessionStorage; every data call sends it.
// Everything shown is set with textContent, never parsed as HTML.

const KEY = "wirebridge.console.key";
const API = "/console/api";
const POLL_MS = 2000;
const $ = (id) => document.getElementById(id);

class AuthError extends Error {}

let selected = null;
let timer = null;

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

async function api(path, raw = false) {
  const headers = {};
  const key = sessionStorage.getItem(KEY);
  if (key) headers.Authorization = `Bearer ${key}`;
  const response = await fetch(API + path, { headers, cache: "no-store" });
  if (response.status === 401) throw new AuthError();
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return raw ? response : response.json();
}

function ms(value) {
  if (value === null || value === undefined) return "–";
  return value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${value.toFixed(1)} ms`;
}

function clock(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString();
}

function pretty(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

function showAuth(message) {
  $("main").hidden = true;
  $("forget").hidden = true;
  $("auth").hidden = false;
  $("auth-message").textContent = message;
  $("status").textContent = "locked";
  $("key").focus();
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function emptyRow(columns, text) {
  const tr = el("tr");
  const td = el("td", text, "empty");
  td.colSpan = columns;
  tr.append(td);
  return tr;
}

// Output tokens so far: "~" marks deltas counted (the upstream reported no usage yet).
function outputTokens(x) {
  if (x.output_tokens === null || x.output_tokens === undefined) return "–";
  return x.output_tokens_source === "deltas" ? `~${x.output_tokens}` : `${x.output_tokens}`;
}

function renderLive(live) {
  $("live-count").textContent = `(${live.length})`;
  const rows = live.map((x) => {
    const tr = el("tr");
    tr.dataset.exchange = x.id;
    tr.append(el("td", x.id), el("td", x.model || "–"), el("td", x.provider || "–"),
      el("td", ms(x.duration_ms)), el("td", x.bytes_sent), el("td", x.events ?? 0),
      el("td", outputTokens(x)), el("td", x.tokens_per_s ?? "–"));
    return tr;
  });
  fill($("live").tBodies[0], rows.length ? rows : [emptyRow(8, "no stream running")]);
}

function renderRecent(recent) {
  $("recent-count").textContent = `(${recent.length})`;
  const rows = recent.map((x) => {
    const tr = el("tr");
    tr.dataset.exchange = x.id;
    if (x.id === selected) tr.classList.add("selected");
    const tokens = x.usage && x.usage.output !== undefined
      ? `${x.usage.input} in / ${x.usage.output} out` : "–";
    tr.append(el("td", clock(x.started_at)), el("td", x.model || "–"),
      el("td", x.provider || "–"), el("td", x.status), el("td", x.outcome, x.outcome),
      el("td", ms(x.ttfb_ms)), el("td", ms(x.duration_ms)), el("td", tokens),
      el("td", x.tokens_per_s ?? "–"), el("td", x.attempts));
    tr.addEventListener("click", () => openExchange(x.id));
    return tr;
  });
  fill($("recent").tBodies[0], rows.length ? rows : [emptyRow(10, "no request yet")]);
}

function percentile(values, q) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.round(q * (sorted.length - 1)))];
}

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

function chart(samples) {
  const width = 600, height = 70, pad = 4;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none" });
  const t0 = samples[0][0], t1 = samples[samples.length - 1][0];
  const top = Math.max(...samples.map((s) => s[4]), 1);
  const x = (t) => pad + (t1 > t0 ? ((t - t0) / (t1 - t0)) * (width - 2 * pad) : width / 2);
  const y = (v) => height - pad - (v / top) * (height - 2 * pad);
  const line = (index, color) => {
    const points = samples.filter((s) => s[index] !== null).map((s) => `${x(s[0])},${y(s[index])}`);
    root.append(svg("polyline", { points: points.join(" "), fill: "none", stroke: color,
      "stroke-width": 1.5, "vector-effect": "non-scaling-stroke" }));
  };
  line(4, "#8a94a6");
  line(3, "#2f5bd3");
  for (const s of samples) {
    if (!s[2]) root.append(svg("circle", { cx: x(s[0]), cy: y(s[4]), r: 3, fill: "#c62828" }));
  }
  return root;
}

function renderHealth(health) {
  const byProvider = new Map();
  for (const sample of health) {
    if (!byProvider.has(sample[1])) byProvider.set(sample[1], []);
    byProvider.get(sample[1]).push(sample);
  }
  const blocks = [];
  for (const [provider, samples] of byProvider) {
    const ok = samples.filter((s) => s[2]).length;
    const box = el("div", null, "chart");
    const label = el("div");
    label.append(el("div", provider, "name"),
      el("div", `${Math.round((100 * ok) / samples.length)}% ok of ${samples.length}`, "stats"),
      el("div", `TTFB p50 ${ms(percentile(samples.map((s) => s[3]).filter((v) => v !== null), 0.5))}`, "stats"),
      el("div", `duration p50 ${ms(percentile(samples.map((s) => s[4]), 0.5))}`, "stats"));
    box.append(label, chart(samples));
    box.dataset.provider = provider;
    blocks.push(box);
  }
  if (blocks.length) {
    const legend = el("div", null, "legend");
    legend.append(el("span", "— time to first byte ", "ttfb"), el("span", "— duration ", "dur"),
      el("span", "● failed"));
    blocks.push(legend);
  }
  $("health").replaceChildren(...(blocks.length ? blocks : [el("p", "no upstream traffic yet", "empty")]));
}

function renderDoctor(doctor) {
  if (!doctor) {
    $("doctor").replaceChildren(el("p", "No findings yet: run `wirebridge doctor` on this machine.", "empty"));
    return;
  }
  const head = el("p", `${doctor.provider} (${doctor.base_url}), model ${doctor.model}` +
    (doctor.saved_at ? `, ${new Date(doctor.saved_at * 1000).toLocaleString()}` : ""));
  const table = el("table");
  const thead = el("thead");
  const hr = el("tr");
  hr.append(el("th", "check"), el("th", ""), el("th", "finding"));
  thead.append(hr);
  const body = el("tbody");
  for (const [name, finding] of Object.entries(doctor.findings || {})) {
    const tr = el("tr");
    const status = finding.status;
    tr.append(el("td", name), el("td", status, status === "ok" ? "ok" : status === "fail" ? "failed" : "incomplete"),
      el("td", finding.summary));
    body.append(tr);
  }
  table.append(thead, body);
  $("doctor").replaceChildren(head, table);
}

function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = el("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

async function openExchange(id) {
  selected = id;
  for (const tr of $("recent").tBodies[0].rows) tr.classList.toggle("selected", tr.dataset.exchange === id);
  let exchange;
  try {
    exchange = await api(`/exchanges/${encodeURIComponent(id)}`);
  } catch (error) {
    return handle(error);
  }
  const s = exchange.summary;
  $("exchange").hidden = false;
  $("exchange-id").textContent = `${s.id}${s.response_id ? " · " + s.response_id : ""}`;
  const facts = [
    ["status", s.status], ["outcome", s.outcome], ["model", s.model],
    ["upstream", `${s.provider}:${s.upstream_model}`], ["TTFB", ms(s.ttfb_ms)],
    ["duration", ms(s.duration_ms)], ["tokens/s", s.tokens_per_s ?? "–"],
    ["input tokens", s.usage.input ?? "–"], ["output tokens", s.usage.output ?? "–"],
    ["reasoning", s.usage.reasoning ?? "–"], ["cached", s.usage.cached ?? "–"],
    ["request id", s.request_id ?? "–"],
  ];
  $("exchange-summary").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", k), el("dd", v)]));
  if (exchange.live) {
    for (const part of ["part-request", "upstream-payload", "part-upstream", "part-sent"]) $(part).textContent = "still running…";
    return;
  }
  fill($("attempts").tBodies[0], exchange.attempts.map((a, i) => {
    const tr = el("tr");
    tr.append(el("td", i + 1), el("td", a.url), el("td", ms(a.start_ms)), el("td", ms(a.headers_ms)),
      el("td", a.status ?? "–"), el("td", a.error ?? "", a.error ? "failed" : ""));
    return tr;
  }));
  const dropped = (part) => (part.dropped ? `\n… ${part.dropped} more bytes not kept` : "");
  $("part-request").textContent = pretty(exchange.request.text) + dropped(exchange.request);
  $("upstream-payload").textContent = exchange.upstream_request.text
    ? pretty(exchange.upstream_request.text) + dropped(exchange.upstream_request)
    : "nothing was sent upstream";
  const body = exchange.upstream_body;
  $("part-upstream").textContent = body === null
    ? "capture is off: start the bridge with --capture to keep the upstream's raw chunks"
    : body.text + dropped(body);
  $("part-sent").textContent = exchange.sent.text + dropped(exchange.sent);
  const replay = $("download-replay");
  replay.hidden = body === null || !body.text;
  replay.onclick = async (event) => {
    event.preventDefault();
    try {
      const response = await api(`/exchanges/${encodeURIComponent(id)}/replay`, true);
      saveBlob(await response.blob(), `${s.response_id || s.id}.sse`);
    } catch (error) {
      handle(error);
    }
  };
  $("download-request").onclick = (event) => {
    event.preventDefault();
    saveBlob(new Blob([exchange.request.text], { type: "application/json" }), `${s.response_id || s.id}-request.json`);
  };
}

function handle(error) {
  if (error instanceof AuthError) {
    const had = sessionStorage.getItem(KEY);
    sessionStorage.removeItem(KEY);
    showAuth(had ? "That key was refused: enter one of the bridge's API keys." : "This bridge needs one of its API keys.");
    return;
  }
  $("status").textContent = `error: ${error.message}`;
}

async function refresh() {
  clearTimeout(timer);
  try {
    const overview = await api("/overview");
    $("auth").hidden = true;
    $("main").hidden = false;
    $("forget").hidden = !sessionStorage.getItem(KEY);
    $("status").textContent = `updated ${clock(overview.now)}${overview.capture ? " · capture on" : ""}`;
    renderLive(overview.live);
    renderRecent(overview.recent);
    renderHealth(overview.health);
    renderDoctor(overview.doctor);
  } catch (error) {
    handle(error);
    if (error instanceof AuthError) return;
  }
  timer = setTimeout(refresh, POLL_MS);
}

$("auth").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY, $("key").value.trim());
  $("key").value = "";
  refresh();
});
$("forget").addEventListener("click", () => {
  sessionStorage.removeItem(KEY);
  showAuth("Key forgotten.");
});
$("close-exchange").addEventListener("click", () => {
  selected = null;
  $("exchange").hidden = true;
});
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) refresh();
});
refresh();
