// Page F: top played and top liked over a window (blessed and admin).
import { api, describeError, h, initShell, labelled, main, setStatus } from "./common.js";

const me = await initShell();
const root = main();

if (!me) {
  root.append(h("p", { class: "note" }, h("a", { href: "/login?next=/stats" }, "Sign in"), " to see statistics."));
} else if (!me.can.view_stats) {
  root.append(h("p", { class: "note" }, "Statistics are for blessed and admin users."));
} else {
  const windowDays = h("select", { name: "window_days" }, [7, 30, 90, 365].map((days) =>
    h("option", { value: String(days), selected: days === 30 }, `Last ${days} days`)));
  const status = h("p", { class: "status", role: "status" });
  const played = h("section", { class: "panel", "aria-label": "Top played" });
  const liked = h("section", { class: "panel", "aria-label": "Top liked" });
  root.append(labelled("Window", windowDays), status, h("div", { class: "columns" }, played, liked));
  const table = (title, items, countKey, countLabel) => [h("h2", {}, title), items.length
    ? h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "#"), h("th", {}, "Title"), h("th", {}, countLabel))),
      h("tbody", {}, items.map((item, index) => h("tr", {}, h("td", {}, String(index + 1)),
        h("td", {}, item.title || item.video_id), h("td", {}, String(item[countKey]))))))
    : h("p", { class: "muted" }, "Nothing in this window.")];
  const load = async () => {
    setStatus(status, "busy", "Loading…");
    try {
      const query = `window_days=${windowDays.value}&limit=50`;
      const [p, l] = await Promise.all([api("GET", `/api/v1/stats/top-played?${query}`),
        api("GET", `/api/v1/stats/top-liked?${query}`)]);
      played.replaceChildren(...table("Top played", p.data.items, "play_count", "Plays"));
      liked.replaceChildren(...table("Top liked", l.data.items, "like_count", "Likes"));
      setStatus(status, "", "");
    } catch (exc) {
      setStatus(status, "error", describeError(exc));
    }
  };
  windowDays.addEventListener("change", load);
  load();
}
