// Page E: apply a saved playlist to the channel's queue, with progress and every failure's reason.
import { api, busy, describeError, formatDuration, h, initShell, labelled, main, setStatus } from "./common.js";

const MODES = [
  ["preserve_current", "Preserve current", "Keep what is playing; replace everything after it."],
  ["append", "Append", "Add the playlist after everything already queued."],
  ["hard_replace", "Hard replace", "Warning: removes the whole queue, cutting the video that is playing now."],
];
const POLL_MS = 500;
const me = await initShell();
const root = main();

if (!me) {
  root.append(h("p", { class: "note" }, h("a", { href: "/login?next=/apply" }, "Sign in"), " to apply a playlist."));
} else if (!me.can.apply) {
  root.append(h("p", { class: "note" }, "Your role cannot change the channel's queue."));
} else {
  build();
}

async function build() {
  const health = h("p", { class: "status", role: "status", "data-testid": "health" });
  const playlist = h("select", { name: "playlist" });
  const modes = h("fieldset", {}, h("legend", {}, "Mode"), MODES.filter(([mode]) => mode !== "hard_replace" || me.can.hard_replace)
    .map(([mode, label, help], index) => h("div", { class: "field" }, h("label", {},
      h("input", { type: "radio", name: "mode", value: mode, checked: index === 0 }), ` ${label}`),
    h("small", { class: mode === "hard_replace" ? "warn" : "hint" }, help))));
  const applyButton = h("button", { type: "submit" }, "Apply");
  const reason = h("p", { class: "status error", role: "alert", "data-testid": "apply-disabled-reason", hidden: true });
  const progress = h("progress", { max: "1", value: "0", hidden: true, "aria-label": "Apply progress" });
  const status = h("div", { class: "status", role: "status", "data-testid": "apply-status" });
  const outcome = h("div", { "data-testid": "apply-result" });
  const form = h("form", { class: "panel", "aria-label": "Apply a playlist" }, health, labelled("Playlist", playlist),
    modes, applyButton, reason, progress, status, outcome);
  root.append(form);

  try {
    const { playlists } = (await api("GET", "/api/v1/playlists")).data;
    playlist.append(...playlists.map((p) => h("option", { value: p.playlist_id },
      `${p.name} (${p.item_count} items, ${formatDuration(p.duration_seconds)})`)));
    const wanted = new URLSearchParams(location.search).get("playlist");
    if (wanted) playlist.value = wanted;
    if (!playlists.length) setStatus(status, "error", "There are no saved playlists yet.");
  } catch (exc) {
    setStatus(status, "error", describeError(exc));
  }

  let running = false, blocked = null;
  const checkHealth = async () => {
    try {
      const data = (await api("GET", "/api/v1/health")).data;
      blocked = data.nats === "disconnected" ? "The service has lost its NATS connection, so the queue cannot be changed." : null;
      if (data.robot === "unknown" && !blocked) {
        setStatus(health, "warn", "The channel bot has not been heard from in the last minute; applying may fail.");
      } else {
        setStatus(health, "", blocked ? "" : "NATS connected; the channel bot is answering.");
      }
    } catch (exc) {
      blocked = `The service's health could not be read: ${describeError(exc)}`;
    }
    reason.hidden = !blocked;
    reason.textContent = blocked || "";
    applyButton.disabled = running || Boolean(blocked) || !playlist.value;
  };
  await checkHealth();
  setInterval(checkHealth, 10000);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const mode = form.querySelector("input[name=mode]:checked").value;
    running = true;
    applyButton.disabled = true;
    outcome.replaceChildren();
    progress.hidden = false;
    progress.value = 0;
    setStatus(status, "busy", "Starting…");
    try {
      const started = (await api("POST", "/api/v1/queue/apply", { playlist_id: playlist.value, mode, async: true })).data;
      let record = started.status && started.status !== "running" ? started : null;
      while (!record) {
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        const now = (await api("GET", `/api/v1/queue/apply/${encodeURIComponent(started.apply_id)}`)).data;
        progress.max = Math.max(1, now.total || 0);
        progress.value = now.done || 0;
        setStatus(status, "busy", `Applying: ${now.done || 0} of ${now.total || 0} items done…`);
        if (now.status !== "running") record = now;
      }
      showResult(record);
    } catch (exc) {
      setStatus(status, "error", describeError(exc));
      progress.hidden = true;
    } finally {
      running = false;
      checkHealth();
    }
  });

  function showResult(record) {
    progress.value = progress.max;
    const words = { queued: "Done: every item was queued.", partial: "Done, but some items failed.",
      failed: "Nothing was queued." }[record.status] || `Finished: ${record.status}.`;
    setStatus(status, record.status === "queued" ? "ok" : "error", words);
    const failed = record.failed || [];
    outcome.replaceChildren(...[h("p", { "data-testid": "apply-counts" },
      `${record.enqueued_count} queued, ${record.removed_count} removed from the queue, ${failed.length} failed.`),
    failed.length ? h("table", { "aria-label": "Failed items" }, h("thead", {}, h("tr", {}, h("th", {}, "Video"),
      h("th", {}, "Reason"))), h("tbody", {}, failed.map((f) => h("tr", {}, h("td", {}, f.video_id),
      h("td", {}, f.reason))))) : null].filter(Boolean));
  }
}
