// Page D: combine saved playlists into a marathon, preview it, reorder and save it as a new playlist.
import { api, busy, describeError, formatDuration, h, initShell, labelled, main, reorderableList, setStatus,
  totalDuration } from "./common.js";

const LABELS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const me = await initShell();
const root = main();

if (!me) {
  root.append(h("p", { class: "note" }, h("a", { href: "/login?next=/marathon" }, "Sign in"), " to build a marathon."));
} else {
  build();
}

async function build() {
  const loadStatus = h("p", { class: "status busy", role: "status" }, "Loading playlists…");
  root.append(loadStatus);
  let playlists = [];
  try {
    playlists = (await api("GET", "/api/v1/playlists")).data.playlists;
    setStatus(loadStatus, "", playlists.length ? "" : "There are no saved playlists to combine yet.");
  } catch (exc) {
    setStatus(loadStatus, "error", describeError(exc));
    return;
  }
  const byId = new Map(playlists.map((p) => [p.playlist_id, p]));
  const sources = [];

  // ---- sources, in order: A, B, C… -----------------------------------------------------------
  const picker = h("select", { name: "playlist" }, playlists.map((p) =>
    h("option", { value: p.playlist_id }, `${p.name} (${p.item_count} items)`)));
  const addSource = h("button", { type: "button" }, "Add source");
  const sourceList = h("ol", { class: "sources", "aria-label": "Sources", "data-testid": "sources" });
  const renderSources = () => {
    sourceList.replaceChildren(...sources.map((id, index) => h("li", {},
      h("span", { class: "label-badge" }, LABELS[index]), h("span", {}, byId.get(id).name),
      h("button", { type: "button", class: "danger", "aria-label": `Remove source ${LABELS[index]}`,
        onclick: () => { sources.splice(index, 1); renderSources(); } }, "✕"))));
    if (!sources.length) sourceList.append(h("li", { class: "muted" }, "Add two or more playlists."));
    previewButton.disabled = sources.length < 2;
    addSource.disabled = sources.length >= LABELS.length || !playlists.length;
    updateExamples();
  };
  addSource.addEventListener("click", () => { if (picker.value) { sources.push(picker.value); renderSources(); } });

  // ---- method and options ---------------------------------------------------------------------
  const method = h("select", { name: "method" }, h("option", { value: "concatenate" }, "Concatenate"),
    h("option", { value: "shuffle" }, "Shuffle"), h("option", { value: "interleave" }, "Interleave"));
  const seed = h("input", { name: "seed", autocomplete: "off", placeholder: "any text; empty for a new one" });
  const pattern = h("input", { name: "pattern", autocomplete: "off", placeholder: "e.g. A2 B1" });
  const examples = h("small", { class: "hint", "data-testid": "pattern-examples" });
  const keepOrder = h("input", { type: "checkbox", name: "preserve_episode_order", checked: true });
  const keepOrderId = "keep-order";
  keepOrder.id = keepOrderId;
  const updateExamples = (fromServer) => {
    const labels = LABELS.slice(0, Math.max(2, sources.length)).split("");
    const list = fromServer || [labels.join(" "), labels.map((l) => `${l}2`).join(""), `${labels[0]}3,${labels.at(-1)}`];
    examples.replaceChildren("Examples: ", ...list.map((example) => h("code", {}, example)),
      ". Blank takes one from each source in turn.");
  };
  const methodChanged = () => {
    pattern.disabled = method.value !== "interleave";
    seed.disabled = method.value !== "shuffle";
  };
  method.addEventListener("change", methodChanged);
  methodChanged();

  const previewButton = h("button", { type: "submit" }, "Preview");
  const previewStatus = h("div", { class: "status", role: "status", "data-testid": "preview-status" });
  const form = h("form", { class: "panel", "aria-label": "Marathon options" },
    h("h2", {}, "Sources"), h("div", { class: "search-form" }, labelled("Playlist", picker), h("div", { class: "field" },
      h("span", { "aria-hidden": "true" }, " "), addSource)), sourceList,
    h("h2", {}, "Method"), labelled("Method", method), labelled("Shuffle seed", seed),
    labelled("Interleave pattern", pattern), examples,
    h("div", { class: "field" }, h("label", { for: keepOrderId }, keepOrder, " Keep episode order")),
    previewButton, previewStatus);
  const result = h("section", { class: "panel", "aria-label": "Preview", hidden: true });
  root.append(h("div", { class: "columns" }, form, result));
  renderSources();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setStatus(previewStatus, "busy", "Building the preview…");
    const body = { sources: sources.map((id) => ({ type: "playlist", playlist_id: id })), method: method.value,
      shuffle_seed: method.value === "shuffle" && seed.value.trim() ? seed.value.trim() : null,
      interleave_pattern: method.value === "interleave" && pattern.value.trim() ? pattern.value.trim() : null,
      preserve_episode_order: keepOrder.checked };
    try {
      const preview = (await busy(previewButton, () => api("POST", "/api/v1/marathons/preview", body))).data;
      setStatus(previewStatus, "ok", `Preview ready: ${preview.items.length} items.`);
      updateExamples();
      if (preview.seed) seed.value = preview.seed;
      showPreview(preview);
    } catch (exc) {
      setStatus(previewStatus, "error", describeError(exc));
      if (exc.code === "invalid_pattern") {
        if (typeof exc.details.position === "number") {
          previewStatus.append(` (at character ${exc.details.position + 1})`);
          pattern.focus();
          pattern.setSelectionRange(exc.details.position, exc.details.position + 1);
        }
        updateExamples(exc.details.examples);
      }
    }
  });

  function showPreview(preview) {
    result.hidden = false;
    const items = preview.items.slice();
    const total = h("p", { class: "runtime", "data-testid": "preview-runtime" });
    const list = reorderableList({ items, readOnly: !me.can.edit_playlists, label: "Marathon items",
      onChange: redraw, describe: describe });
    function describe(item, index) {
      let start = 0;
      for (let i = 0; i < index; i += 1) start += Number(items[i].duration_seconds) || 0;
      const episode = item.season != null || item.episode != null
        ? `S${String(item.season ?? "?").padStart(2, "0")}E${String(item.episode ?? "?").padStart(2, "0")} · ` : "";
      return [h("span", { class: "label-badge" }, item.source), " ", item.title || item.video_id, " ",
        h("span", { class: "muted" }, `${episode}starts at ${formatDuration(start)} · ${formatDuration(item.duration_seconds)}`)];
    }
    function redraw() {
      total.textContent = `${items.length} items, total runtime ${formatDuration(totalDuration(items))}`;
      list.render();
    }
    const warnings = h("ul", { class: "warn", "aria-label": "Warnings" }, (preview.warnings || []).map((w) => h("li", {}, w)));
    result.replaceChildren(h("h2", {}, "Preview"), total, warnings, list.element);
    redraw();
    if (!me.can.edit_playlists) {
      result.append(h("p", { class: "note" }, "Your role can preview but not save playlists."));
      return;
    }
    const name = h("input", { name: "name", maxlength: "100", required: true, autocomplete: "off" });
    const save = h("button", { type: "submit" }, "Save as playlist");
    const saveStatus = h("p", { class: "status", role: "status", "data-testid": "marathon-save-status" });
    result.append(h("form", { onsubmit: async (event) => {
      event.preventDefault();
      setStatus(saveStatus, "busy", "Saving…");
      try {
        const answer = (await busy(save, () => api("POST", "/api/v1/playlists",
          { name: name.value.trim(), items: items.map((item) => ({ video_id: item.video_id })) }))).data;
        saveStatus.replaceChildren();
        setStatus(saveStatus, "ok", `Saved as “${name.value.trim()}”. `);
        saveStatus.append(h("a", { href: `/playlists/${encodeURIComponent(answer.playlist_id)}` }, "Open it"));
      } catch (exc) {
        setStatus(saveStatus, "error", describeError(exc));
      }
    } }, labelled("New playlist name", name), save), saveStatus);
  }
}
