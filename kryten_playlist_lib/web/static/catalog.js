// Page B: search the catalog and build a working playlist kept in this browser.
import { api, ApiError, busy, describeError, formatDuration, h, initShell, labelled, main, reorderableList,
  setStatus, totalDuration } from "./common.js";

const STORE = "kryten_playlist.working";
const PAGE_SIZE = 25;
const me = await initShell();
const canEdit = Boolean(me && me.can.edit_playlists);
const root = main();

// ---- search ----------------------------------------------------------------------------------
const query = h("input", { type: "search", name: "q", autocomplete: "off", placeholder: "Title words…" });
const category = h("select", { name: "category" }, h("option", { value: "" }, "All categories"));
const searchStatus = h("p", { class: "status", role: "status", "data-testid": "search-status" });
const results = h("ul", { class: "results", "aria-label": "Search results" });
const prev = h("button", { type: "button" }, "← Previous");
const next = h("button", { type: "button" }, "Next →");
const pager = h("div", { class: "pager" }, prev, next);
const searchPanel = h("section", { class: "panel search", "aria-label": "Catalog search" },
  h("h2", {}, "Search"),
  h("form", { class: "search-form", role: "search", onsubmit: (e) => { e.preventDefault(); search(0); } },
    labelled("Search titles", query), labelled("Category", category)),
  searchStatus, results, pager);

// ---- working playlist ------------------------------------------------------------------------
let working = load();
const runtime = h("p", { class: "runtime", "data-testid": "working-runtime" });
const list = reorderableList({ items: working, label: "Working playlist", onChange: changed,
  describe: (item) => [item.title || item.video_id, " ", h("span", { class: "muted" }, formatDuration(item.duration_seconds))] });
const nameInput = h("input", { name: "name", maxlength: "100", required: true, autocomplete: "off" });
const saveButton = h("button", { type: "submit" }, "Save as…");
const saveStatus = h("p", { class: "status", role: "status", "data-testid": "save-status" });
const clearButton = h("button", { type: "button", class: "danger", onclick: () => {
  working.splice(0, working.length); list.render(); changed(); setStatus(saveStatus, "ok", "Cleared.");
} }, "Clear");
const workPanel = h("section", { class: "panel working", "aria-label": "Working playlist" },
  h("h2", {}, "Working playlist"), runtime, list.element,
  h("form", { class: "save-form", onsubmit: save }, labelled("Playlist name", nameInput), saveButton, clearButton),
  saveStatus);

root.append(h("div", { class: "columns" }, searchPanel, canEdit ? workPanel : null));
if (!me) root.prepend(h("p", { class: "note" }, h("a", { href: "/login" }, "Sign in"), " to build and save playlists."));
else if (!canEdit) root.prepend(h("p", { class: "note" }, "Your role can search the catalog but not save playlists."));
changed();

function load() {
  try {
    const data = JSON.parse(localStorage.getItem(STORE) || "[]");
    return Array.isArray(data) ? data.filter((item) => item && typeof item.video_id === "string") : [];
  } catch (exc) {
    return [];
  }
}

function changed() {
  try { localStorage.setItem(STORE, JSON.stringify(working)); } catch (exc) { /* storage full or disabled */ }
  runtime.textContent = `${working.length} item${working.length === 1 ? "" : "s"}, total runtime ${formatDuration(totalDuration(working))}`;
  saveButton.disabled = clearButton.disabled = working.length === 0;
}

function add(item) {
  working.push({ video_id: item.video_id, title: item.title, duration_seconds: item.duration_seconds,
    categories: item.categories });
  list.render();
  changed();
  setStatus(saveStatus, "ok", `Added “${item.title}”.`);
}

async function save(event) {
  event.preventDefault();
  const name = nameInput.value.trim();
  if (!name) { setStatus(saveStatus, "error", "Give the playlist a name."); nameInput.focus(); return; }
  setStatus(saveStatus, "busy", "Saving…");
  try {
    const answer = await busy(saveButton, () => api("POST", "/api/v1/playlists",
      { name, items: working.map((item) => ({ video_id: item.video_id })) }));
    const id = answer.data.playlist_id;
    saveStatus.replaceChildren();
    setStatus(saveStatus, "ok", answer.status === 202 ? `Saved “${name}”; it will sync when NATS is back. `
      : `Saved as “${name}”. `);
    saveStatus.append(h("a", { href: `/playlists/${encodeURIComponent(id)}` }, "Open it"));
  } catch (exc) {
    // The work stays: only the message changes.
    setStatus(saveStatus, "error", describeError(exc));
    if (exc.code === "name_taken") nameInput.select();
  }
}

// ---- searching: debounced, stale answers dropped -----------------------------------------------
let sequence = 0, timer = null, offset = 0;

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(() => search(0), 250);
}

async function search(from) {
  const mine = ++sequence;
  offset = from;
  const params = new URLSearchParams({ limit: String(PAGE_SIZE), offset: String(from) });
  if (query.value.trim()) params.set("q", query.value.trim());
  if (category.value) params.append("category", category.value);
  setStatus(searchStatus, "busy", "Searching…");
  try {
    const data = (await api("GET", `/api/v1/catalog/search?${params}`)).data;
    if (mine !== sequence) return; // a newer search was started meanwhile
    showResults(data);
  } catch (exc) {
    if (mine !== sequence) return;
    results.replaceChildren();
    pager.hidden = true;
    setStatus(searchStatus, "error", exc instanceof ApiError && exc.code === "no_snapshot"
      ? "The catalog has not been loaded yet. Try again after the first refresh." : describeError(exc));
  }
}

function showResults(data) {
  const first = data.total ? offset + 1 : 0, last = offset + data.items.length;
  setStatus(searchStatus, "", data.total ? `Showing ${first}–${last} of ${data.total}` : "No matches.");
  results.replaceChildren(...data.items.map((item) => h("li", { class: "result", dataset: { videoId: item.video_id } },
    item.thumbnail_url ? h("img", { src: item.thumbnail_url, alt: "", loading: "lazy", width: "96", height: "54",
      // On a LAN without internet the thumbnail host may be out of reach: show the empty frame, not a broken image.
      onerror: (event) => event.target.replaceWith(h("span", { class: "thumb-none", "aria-hidden": "true" })) })
      : h("span", { class: "thumb-none", "aria-hidden": "true" }),
    h("div", { class: "info" }, h("span", { class: "title" }, item.title),
      h("span", { class: "muted" }, `${formatDuration(item.duration_seconds)} · ${(item.categories || []).join(", ") || "no category"}`)),
    canEdit ? h("button", { type: "button", "aria-label": `Add ${item.title}`, onclick: () => add(item) }, "Add") : null)));
  prev.disabled = offset === 0;
  next.disabled = last >= data.total;
  pager.hidden = data.total <= PAGE_SIZE;
}

prev.addEventListener("click", () => search(Math.max(0, offset - PAGE_SIZE)));
next.addEventListener("click", () => search(offset + PAGE_SIZE));
query.addEventListener("input", schedule);
category.addEventListener("change", () => search(0));

api("GET", "/api/v1/catalog/categories").then(({ data }) => {
  for (const name of data.categories) category.append(h("option", { value: name }, `${name} (${data.counts[name] ?? 0})`));
}).catch(() => { /* the search reports the same problem in words */ });
search(0);
