// The operator page: the account's devices, and their registration state kept live by the
// Server-Sent Events stream GET /v2/accounts/{A}/registrations/events. The stream is read with
// fetch() rather than EventSource so the token travels in the X-Auth-Token header, not the URL.
"use strict";

const $ = (id) => document.getElementById(id);
const rows = new Map(); // device id -> <tr>
let session = null; // {account, token}
let stream = null; // AbortController of the open stream
let expiryTimer = null;

function say(text) { const el = $("error"); el.textContent = text; el.hidden = !text; }
function setState(text, kind) { const el = $("state"); el.textContent = text; el.className = "state " + kind; }

async function api(method, path, body) {
  const headers = {"Content-Type": "application/json"};
  if (session && session.token) headers["X-Auth-Token"] = session.token;
  const response = await fetch(path, {method, headers, body: body ? JSON.stringify(body) : undefined});
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = answer.data && answer.data.message ? ": " + answer.data.message : "";
    throw new Error(`${method} ${path}: HTTP ${response.status} ${answer.message || ""}${detail}`);
  }
  return answer;
}

function cell(tr, name) { return tr.querySelector("td." + name); }

function addRow(device) {
  const tr = document.createElement("tr");
  tr.dataset.deviceId = device.id;
  for (const name of ["name", "username", "id", "status", "expires", "event"]) {
    const td = document.createElement("td");
    td.className = name;
    tr.appendChild(td);
  }
  cell(tr, "name").textContent = device.name || "";
  cell(tr, "username").textContent = device.username || "";
  cell(tr, "id").textContent = device.id;
  rows.set(device.id, tr);
  $("devices").tBodies[0].appendChild(tr);
  setRegistered(device.id, device.registered ? Infinity : 0, null);
  return tr;
}

function setRegistered(deviceId, expiresAt, eventName) {
  const tr = rows.get(deviceId);
  if (!tr) return false;
  const registered = expiresAt > Date.now() / 1000;
  const was = tr.classList.contains("registered");
  tr.classList.toggle("registered", registered);
  tr.classList.toggle("unregistered", !registered);
  tr.dataset.expiresAt = registered && isFinite(expiresAt) ? String(expiresAt) : "";
  cell(tr, "status").textContent = registered ? "registered" : "unregistered";
  if (eventName) {
    cell(tr, "event").textContent = `${eventName} at ${new Date().toLocaleTimeString()}`;
    if (was !== registered) { tr.classList.remove("flash"); void tr.offsetWidth; tr.classList.add("flash"); }
  }
  renderExpiry(tr);
  summarise();
  return true;
}

function renderExpiry(tr) {
  const at = Number(tr.dataset.expiresAt);
  cell(tr, "expires").textContent = at ? `in ${Math.max(0, Math.round(at - Date.now() / 1000))} s` : "";
}

function summarise() {
  const registered = [...rows.values()].filter((tr) => tr.classList.contains("registered")).length;
  $("summary").textContent = `${rows.size} devices, ${registered} registered`;
}

async function loadDevices() {
  const answer = await api("GET", `/v2/accounts/${session.account}/devices?paginate=false&with_status=true`);
  rows.clear();
  $("devices").tBodies[0].replaceChildren();
  answer.data.forEach(addRow);
  $("devices").hidden = false;
  summarise();
}

function apply(name, data) {
  if (name === "snapshot") {
    const live = new Map(data.registered.map((r) => [r.device_id, r.expires_at]));
    for (const id of rows.keys()) setRegistered(id, live.get(id) || 0, null);
    if ([...live.keys()].some((id) => !rows.has(id))) loadDevices().then(() => apply(name, data));
  } else if (name === "register" || name === "refresh") {
    if (!setRegistered(data.device_id, data.expires_at, name)) {
      loadDevices().then(() => setRegistered(data.device_id, data.expires_at, name));
    }
  } else if (name === "unregister" || name === "expired") {
    setRegistered(data.device_id, 0, name);
  }
}

async function follow() {
  const controller = new AbortController();
  stream = controller;
  const response = await fetch(`/v2/accounts/${session.account}/registrations/events`,
    {headers: {"X-Auth-Token": session.token}, signal: controller.signal});
  if (!response.ok) {
    const answer = await response.json().catch(() => ({}));
    throw new Error(`registration events: HTTP ${response.status} ${answer.message || ""}`);
  }
  setState("live", "live");
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, {stream: true});
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message"; const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      if (data.length) apply(name, JSON.parse(data.join("\n")));
    }
  }
}

async function run() {
  // Reconnect for ever (each new stream starts with a snapshot, so nothing is missed).
  for (let delay = 1000; session; delay = Math.min(delay * 2, 15000)) {
    try {
      await follow();
      delay = 1000;
    } catch (error) {
      if (error.name === "AbortError") return;
      say(error.message);
      if (/HTTP 40[134]/.test(error.message)) { setState("stopped", "retrying"); return; }
    }
    setState("reconnecting…", "retrying");
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

async function start(account, token, apiKey) {
  if (stream) stream.abort();
  say("");
  session = {account, token};
  try {
    if (apiKey) {
      session = {account: "", token: ""};
      const auth = await api("PUT", "/v2/api_auth", {data: {api_key: apiKey}});
      session = {account: auth.data.account_id, token: auth.auth_token};
      $("account").value = session.account;
    }
    if (!session.account || !session.token) throw new Error("give the account id and a token, or an API key");
    sessionStorage.setItem("sipsvc-ui", JSON.stringify(session));
    setState("connecting…", "idle");
    await loadDevices();
  } catch (error) {
    say(error.message);
    setState("not connected", "idle");
    return;
  }
  run();
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  start($("account").value.trim(), $("token").value.trim(), $("api_key").value.trim());
});

expiryTimer = setInterval(() => {
  for (const [id, tr] of rows) {
    const at = Number(tr.dataset.expiresAt);
    renderExpiry(tr);
    // The stream will say "expired"; until then, show it as soon as it is due.
    if (at && at <= Date.now() / 1000) setRegistered(id, 0, null);
  }
}, 1000);

// #account=<id>&token=<token> (or #api_key=<key>) fills the form and connects; the fragment
// never reaches the server and is cleared from the address bar. Otherwise the last session of
// this tab is reused.
function fromFragment() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (!fragment.get("token") && !fragment.get("api_key")) return false;
  $("account").value = fragment.get("account") || "";
  history.replaceState(null, "", location.pathname);
  start(fragment.get("account") || "", fragment.get("token") || "", fragment.get("api_key") || "");
  return true;
}

window.addEventListener("hashchange", fromFragment);
const saved = JSON.parse(sessionStorage.getItem("sipsvc-ui") || "null");
if (!fromFragment() && saved) {
  $("account").value = saved.account;
  start(saved.account, saved.token, "");
}
