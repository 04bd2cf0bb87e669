// Shared by every page: API calls, errors in words, the page shell, the now-playing bar,
// a reorderable list, and small formatting helpers. Plain ES module, no dependencies.

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

// Every write carries the CSRF header of http-api.md.
export async function api(method, path, body, headers = {}) {
  const options = { method, headers: { Accept: "application/json", ...headers }, credentials: "same-origin" };
  if (method !== "GET" && method !== "HEAD") options.headers["X-Requested-With"] = "kryten-playlist";
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch (exc) {
    throw new ApiError(0, "network", "The server could not be reached. Check the connection and try again.", {});
  }
  let data = null;
  if (response.status !== 204) {
    try { data = await response.json(); } catch (exc) { data = null; }
  }
  if (!response.ok) {
    const error = (data && data.error) || { code: `http_${response.status}`,
      message: `The server answered ${response.status}.`, details: {} };
    throw new ApiError(response.status, error.code, error.message, error.details);
  }
  return { status: response.status, data, headers: response.headers };
}

// The server's message, plus what its details add, as one sentence or two.
export function describeError(exc) {
  if (!(exc instanceof ApiError)) return `Something went wrong: ${exc && exc.message ? exc.message : exc}`;
  const parts = [exc.message];
  const d = exc.details || {};
  if (d.fields && typeof d.fields === "object") {
    parts.push(Object.entries(d.fields).map(([field, what]) => `${field}: ${what}`).join("; "));
  }
  if (typeof d.retry_after_seconds === "number") parts.push(`Try again in ${formatWait(d.retry_after_seconds)}.`);
  if (d.required_role) parts.push(`Your role is too low: this needs ${d.required_role}.`);
  if (exc.code === "unauthenticated") parts.push("Sign in to continue.");
  return parts.filter(Boolean).join(" ");
}

export function formatDuration(seconds) {
  seconds = Math.max(0, Math.round(Number(seconds) || 0));
  const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
  const two = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${two(m)}:${two(s)}` : `${m}:${two(s)}`;
}

export function formatWait(seconds) {
  seconds = Math.max(0, Math.round(seconds));
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.ceil(seconds / 60)} min`;
  const hours = Math.floor(seconds / 3600), minutes = Math.ceil((seconds % 3600) / 60);
  return minutes ? `${hours} h ${minutes} min` : `${hours} h`;
}

export function formatTime(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

// h("button", {type: "button", onclick: f}, "text", child…)
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function main() {
  const el = document.getElementById("main");
  el.querySelectorAll(":scope > :not(h1)").forEach((node) => node.remove());
  return el;
}

// A status line: kind is "busy", "ok" or "error".
export function setStatus(el, kind, text) {
  el.className = `status ${kind || ""}`;
  el.textContent = text || "";
  if (kind === "error") el.setAttribute("role", "alert"); else el.setAttribute("role", "status");
}

export function toast(text) {
  const el = document.getElementById("toast");
  if (!el) return;
  el.textContent = text;
  el.classList.add("shown");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => el.classList.remove("shown"), 4000);
}

// Run `work` with the button busy; returns its result.
export async function busy(button, work) {
  const label = button.textContent;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
    button.textContent = label;
  }
}

export async function currentUser() {
  try {
    return (await api("GET", "/api/v1/auth/me")).data;
  } catch (exc) {
    if (exc instanceof ApiError && exc.status === 401) return null;
    throw exc;
  }
}

const NAV = [
  ["/", "Catalog", null],
  ["/playlists", "Playlists", "signed_in"],
  ["/marathon", "Marathon", "signed_in"],
  ["/apply", "Apply", "apply"],
  ["/stats", "Stats", "view_stats"],
];

// Draw the header (who, role, Sign out, the links the role may use) and the now-playing bar.
export async function initShell() {
  let me = null, problem = null;
  try { me = await currentUser(); } catch (exc) { problem = describeError(exc); }
  const header = document.getElementById("shell");
  header.replaceChildren();
  const links = NAV.filter(([, , need]) => !need || (me && (need === "signed_in" || me.can[need])))
    .map(([href, label]) => h("a", { href, "aria-current": isCurrent(href) ? "page" : null }, label));
  header.append(h("a", { class: "brand", href: "/" }, "Kryten playlist"), h("nav", { "aria-label": "Pages" }, links));
  const who = h("div", { class: "who" });
  if (me) {
    who.append(h("span", { class: "user", "data-testid": "user" }, me.username),
      h("span", { class: `role role-${me.role}`, "data-testid": "role" }, me.role),
      h("button", { type: "button", class: "link", onclick: signOut }, "Sign out"));
  } else if (location.pathname !== "/login") {
    who.append(h("a", { href: `/login?next=${encodeURIComponent(location.pathname + location.search)}` }, "Sign in"));
  }
  if (problem) who.append(h("span", { class: "status error" }, problem));
  header.append(who);
  if (me) startNowPlaying();
  return me;
}

function isCurrent(href) {
  return href === "/" ? location.pathname === "/" : location.pathname.startsWith(href);
}

async function signOut(event) {
  try {
    await busy(event.currentTarget, () => api("POST", "/api/v1/auth/logout", {}));
    location.href = "/login";
  } catch (exc) {
    toast(describeError(exc));
  }
}

// ---- now playing ----------------------------------------------------------------------------

let nowTimer = null;

export function startNowPlaying() {
  const bar = document.getElementById("nowplaying");
  if (!bar) return;
  bar.hidden = false;
  const title = h("span", { class: "np-title", "data-testid": "np-title" }, "Nothing is known to be playing.");
  const count = h("span", { class: "np-count", "data-testid": "np-count", "aria-label": "Likes" }, "");
  const like = h("button", { type: "button", class: "like", "aria-label": "Like what is playing" }, "♥ Like");
  const status = h("span", { class: "status", role: "status" });
  bar.replaceChildren(h("span", { class: "np-label" }, "Now playing:"), title, count, like, status);
  const refresh = async () => {
    try {
      const now = (await api("GET", "/api/v1/nowplaying")).data;
      title.textContent = now.title || (now.started_at ? "(untitled media)" : "Nothing is known to be playing.");
      count.textContent = now.started_at || now.title ? `♥ ${now.like_count}` : "";
      like.disabled = !(now.title || now.started_at);
    } catch (exc) {
      title.textContent = describeError(exc);
    }
  };
  like.addEventListener("click", async () => {
    setStatus(status, "busy", "Liking…");
    try {
      const answer = (await busy(like, () => api("POST", "/api/v1/likes/current", {}))).data;
      count.textContent = `♥ ${answer.like_count}`;
      setStatus(status, "ok", answer.status === "duplicate" ? "You already liked this." : "Liked!");
    } catch (exc) {
      setStatus(status, "error", exc.code === "no_current_item" ? "Nothing is playing right now." : describeError(exc));
    }
  });
  refresh();
  clearInterval(nowTimer);
  nowTimer = setInterval(refresh, 15000);
}

// ---- a reorderable list: drag-and-drop, move up/down buttons, remove ---------------------------

// items: array (mutated in place); describe(item, index) -> Node|string; onChange(items) after any change.
export function reorderableList({ items, describe, onChange, readOnly = false, label = "Items", mark }) {
  const list = h("ol", { class: "reorder", "aria-label": label });
  let dragFrom = null;
  const move = (from, to) => {
    if (from === to || to < 0 || to >= items.length) return;
    const [item] = items.splice(from, 1);
    items.splice(to, 0, item);
    render();
    onChange && onChange(items);
  };
  const render = () => {
    list.replaceChildren();
    items.forEach((item, index) => {
      const text = describe(item, index);
      const name = item.title || item.video_id;
      const row = h("li", { class: `row ${mark && mark(item) ? "marked" : ""}`, draggable: readOnly ? null : "true",
        dataset: { index: String(index), videoId: item.video_id } },
      readOnly ? null : h("span", { class: "handle", "aria-hidden": "true", title: "Drag to reorder" }, "⠿"),
      h("span", { class: "pos" }, `${index + 1}.`), h("span", { class: "desc" }, text),
      readOnly ? null : h("span", { class: "row-actions" },
        h("button", { type: "button", "aria-label": `Move ${name} up`, disabled: index === 0,
          onclick: () => { move(index, index - 1); focusRow(index - 1, "up"); } }, "↑"),
        h("button", { type: "button", "aria-label": `Move ${name} down`, disabled: index === items.length - 1,
          onclick: () => { move(index, index + 1); focusRow(index + 1, "down"); } }, "↓"),
        h("button", { type: "button", "aria-label": `Remove ${name}`,
          onclick: () => { items.splice(index, 1); render(); onChange && onChange(items); } }, "✕")));
      if (!readOnly) {
        row.addEventListener("dragstart", (event) => {
          dragFrom = index;
          event.dataTransfer.effectAllowed = "move";
          event.dataTransfer.setData("text/plain", String(index));
          row.classList.add("dragging");
        });
        row.addEventListener("dragend", () => row.classList.remove("dragging"));
        row.addEventListener("dragover", (event) => { event.preventDefault(); row.classList.add("over"); });
        row.addEventListener("dragleave", () => row.classList.remove("over"));
        row.addEventListener("drop", (event) => {
          event.preventDefault();
          row.classList.remove("over");
          const from = dragFrom !== null ? dragFrom : Number(event.dataTransfer.getData("text/plain"));
          dragFrom = null;
          if (!Number.isNaN(from)) move(from, index);
        });
      }
      list.append(row);
    });
    if (!items.length) list.append(h("li", { class: "empty" }, "No items yet."));
  };
  const focusRow = (index, which) => {
    const row = list.children[index];
    const button = row && row.querySelector(which === "up" ? "button[aria-label^='Move'][aria-label$='up']"
      : "button[aria-label^='Move'][aria-label$='down']");
    if (button && !button.disabled) button.focus();
  };
  render();
  return { element: list, render };
}

export function totalDuration(items) {
  return items.reduce((sum, item) => sum + (Number(item.duration_seconds) || 0), 0);
}

export function labelled(labelText, control, hint) {
  const id = control.id || `f${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, labelText), control,
    hint ? h("small", { class: "hint" }, hint) : null);
}
