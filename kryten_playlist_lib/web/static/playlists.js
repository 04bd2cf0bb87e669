// Page C: the saved playlists (/playlists) and one playlist's editor (/playlists/{id}).
import { api, busy, describeError, formatDuration, formatTime, h, initShell, labelled, main, reorderableList,
  setStatus, totalDuration } from "./common.js";

const me = await initShell();
const root = main();
const match = location.pathname.match(/^\/playlists\/([^/]+)\/?$/);

if (!me) {
  root.append(h("p", { class: "note" }, h("a", { href: `/login?next=${encodeURIComponent(location.pathname)}` },
    "Sign in"), " to see the saved playlists."));
} else if (match) {
  editor(decodeURIComponent(match[1]));
} else {
  listing();
}

async function listing() {
  const status = h("p", { class: "status busy", role: "status" }, "Loading…");
  root.append(status);
  try {
    const { playlists } = (await api("GET", "/api/v1/playlists")).data;
    setStatus(status, "", playlists.length ? `${playlists.length} playlist${playlists.length === 1 ? "" : "s"}`
      : "No playlists yet. Build one on the catalog page.");
    if (!playlists.length) return;
    root.append(h("table", { "aria-label": "Saved playlists" },
      h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Items"), h("th", {}, "Runtime"),
        h("th", {}, "Last change"), h("th", {}, "By"))),
      h("tbody", {}, playlists.map((p) => h("tr", { dataset: { playlistId: p.playlist_id } },
        h("td", {}, h("a", { href: `/playlists/${encodeURIComponent(p.playlist_id)}` }, p.name)),
        h("td", {}, String(p.item_count)), h("td", {}, formatDuration(p.duration_seconds)),
        h("td", {}, formatTime(p.updated_at)), h("td", {}, p.created_by || "–"))))));
  } catch (exc) {
    setStatus(status, "error", describeError(exc));
  }
}

async function editor(playlistId) {
  const canEdit = Boolean(me.can.edit_playlists);
  const status = h("p", { class: "status busy", role: "status", "data-testid": "editor-status" }, "Loading…");
  root.append(h("p", {}, h("a", { href: "/playlists" }, "← All playlists")), status);
  let doc;
  try {
    doc = await fetchDoc(playlistId);
  } catch (exc) {
    setStatus(status, "error", describeError(exc));
    return;
  }
  setStatus(status, "", "");
  let revision = doc.revision;
  const items = doc.items.slice();
  const heading = root.querySelector("h1");
  heading.textContent = doc.name;
  const summary = h("p", { class: "runtime", "data-testid": "editor-runtime" });
  const refreshSummary = () => {
    const missing = items.filter((item) => item.available === false).length;
    summary.textContent = `${items.length} items, total runtime ${formatDuration(totalDuration(items))}` +
      (missing ? `, ${missing} unavailable` : "");
  };
  const list = reorderableList({ items, readOnly: !canEdit, label: "Playlist items", onChange: refreshSummary,
    mark: (item) => item.available === false,
    describe: (item) => [item.title || item.video_id, " ", h("span", { class: "muted" }, formatDuration(item.duration_seconds)),
      item.available === false ? h("span", { class: "status error" }, " unavailable: not in the current catalog") : null] });
  refreshSummary();
  root.append(h("p", { class: "muted" }, `Created by ${doc.created_by || "–"}, last changed ${formatTime(doc.updated_at)}`),
    summary, list.element);
  if (!canEdit) {
    root.append(h("p", { class: "note" }, "Read only: your role cannot change playlists."));
    return;
  }
  const name = h("input", { name: "name", maxlength: "100", required: true, value: doc.name, autocomplete: "off" });
  const save = h("button", { type: "submit" }, "Save");
  const saveStatus = h("div", { class: "status", role: "status", "data-testid": "save-status" });
  const remove = h("button", { type: "button", class: "danger" }, "Delete…");
  const confirmBox = h("div", { class: "note", hidden: true, role: "alertdialog", "aria-label": "Confirm delete" });
  root.append(h("form", { class: "panel", onsubmit: onSave }, labelled("Playlist name", name),
    h("div", { class: "actions" }, save, remove), saveStatus, confirmBox));

  async function onSave(event) {
    event.preventDefault();
    setStatus(saveStatus, "busy", "Saving…");
    try {
      const answer = await busy(save, () => api("PUT", `/api/v1/playlists/${encodeURIComponent(playlistId)}`,
        { name: name.value.trim(), items: items.map((item) => ({ video_id: item.video_id })) },
        { "If-Match": `"${revision}"` }));
      if (answer.status === 202) {
        setStatus(saveStatus, "ok", "Saved; it will sync when NATS is back.");
        return;
      }
      revision = answer.data.revision;
      heading.textContent = answer.data.name;
      setStatus(saveStatus, "ok", `Saved (revision ${revision}).`);
    } catch (exc) {
      if (exc.code === "conflict") {
        setStatus(saveStatus, "error", "Someone else changed this playlist since you opened it; your changes were not saved.");
        saveStatus.append(" ", h("button", { type: "button", onclick: () => location.reload() }, "Reload their version"));
      } else {
        setStatus(saveStatus, "error", describeError(exc));
      }
    }
  }

  remove.addEventListener("click", () => {
    confirmBox.hidden = false;
    const yes = h("button", { type: "button", class: "danger" }, "Yes, delete it");
    const no = h("button", { type: "button", onclick: () => { confirmBox.hidden = true; remove.focus(); } }, "Cancel");
    confirmBox.replaceChildren(h("p", {}, `Delete “${heading.textContent}” for everyone? This cannot be undone.`),
      h("div", { class: "actions" }, yes, no));
    yes.addEventListener("click", async () => {
      try {
        await busy(yes, () => api("DELETE", `/api/v1/playlists/${encodeURIComponent(playlistId)}`));
        location.href = "/playlists";
      } catch (exc) {
        setStatus(saveStatus, "error", describeError(exc));
      }
    });
    yes.focus();
  });
}

async function fetchDoc(playlistId) {
  return (await api("GET", `/api/v1/playlists/${encodeURIComponent(playlistId)}`)).data;
}
