// Releases and exports: cut a release, export it in any format, download it; their progress arrives
// live on the project's event stream (and a slow poll, in case the stream was interrupted).

import { followEvents, get, post } from "./api.js";
import { projectContext } from "./app.js";
import { attempt, h, message, show, ticket } from "./ui.js";

// proto/releases.py's EXPORT_FORMATS, COCO first (tests/console/test_static.py keeps them the same).
const FORMATS = ["coco", "yolo", "voc", "native", "semantic_png", "segments", "hasty", "images"];
const POLL_MS = 3000;

export async function releasesPage(projectId) {
  const mine = ticket();
  const ctx = await projectContext(projectId);
  const list = h("div#releases");
  const log = h("ol#event-log.muted");
  const name = h("input", { name: "release-name", placeholder: "release name", required: true });
  show(
    mine,
    h("h1", {}, `${ctx.project.name}: releases`),
    h(
      "form.card.inline",
      {
        onsubmit: (e) => {
          e.preventDefault();
          attempt(async () => {
            await post(`${ctx.base}/releases`, { name: name.value.trim() });
            name.value = "";
            await refresh();
          });
        },
      },
      name,
      h("button.primary", { type: "submit", name: "cut" }, "Cut release"),
    ),
    list,
    h("h2", {}, "Live events"),
    log,
  );

  async function refresh() {
    const releases = (await get(`${ctx.base}/releases?limit=100`)).items;
    const exports = await Promise.all(releases.map((r) => get(`${ctx.base}/releases/${r.id}/exports`).then((x) => x.items)));
    list.replaceChildren(...releases.map((r, i) => releaseCard(ctx, r, exports[i], refresh)));
    return releases.some((r) => !finished(r)) || exports.flat().some((x) => !finished(x));
  }

  const stop = followEvents(projectId, (type, envelope) => {
    log.prepend(h("li", {}, `${new Date().toLocaleTimeString()} ${type}`));
    while (log.children.length > 20) log.lastChild.remove();
    if (type.includes("release") || type.includes("export")) attempt(refresh);
  });
  const timer = setInterval(() => attempt(refresh), POLL_MS);
  const leave = () => (stop(), clearInterval(timer), window.removeEventListener("hashchange", leave));
  window.addEventListener("hashchange", leave);
  await refresh();
}

const finished = (job) => job.state === "SUCCEEDED" || job.state === "FAILED";

function releaseCard(ctx, release, exports, refresh) {
  const format = h("select", { name: "format" }, FORMATS.map((f) => h("option", {}, f)));
  const task = h("select", { name: "task" }, h("option", {}, "detection"), h("option", {}, "segmentation"));
  return h(
    "section.card.release",
    { dataset: { releaseId: release.id, state: release.state } },
    h("h2", {}, release.name, " ", h("span.state", {}, release.state)),
    h("p.muted", {}, `${release.samples} samples · ${release.objects} objects`, release.error ? ` · ${release.error}` : ""),
    release.state === "SUCCEEDED"
      ? h(
          "form.inline",
          {
            onsubmit: (e) => {
              e.preventDefault();
              attempt(async () => {
                await post(`${ctx.base}/releases/${release.id}/exports`, { format: format.value, task: task.value });
                await refresh();
              });
            },
          },
          format,
          task,
          h("button", { type: "submit", name: "export" }, "Export"),
        )
      : null,
    h(
      "ul.exports",
      {},
      exports.map((x) =>
        h(
          "li",
          { dataset: { exportId: x.id, state: x.state } },
          `${x.format} (${x.task}) · ${x.state}`,
          x.error ? ` · ${x.error}` : "",
          x.download_url ? [" · ", h("a.download", { href: "#", onclick: (e) => (e.preventDefault(), download(x, release)) }, "Download")] : null,
        ),
      ),
    ),
  );
}

// Saves the export under a readable name. The presigned URL needs no key; fetching it (rather than
// following a link) lets the browser save a JSON file instead of showing it. Storage that does not allow
// this origin (no CORS) still serves the file in a new tab.
async function download(exported, release) {
  const fromUrl = new URL(exported.download_url).pathname.split("/").pop();
  const name = `${release.name}-${fromUrl}`.replace(/[^\w.-]+/g, "_");
  let response;
  try {
    response = await fetch(exported.download_url);
  } catch {
    window.open(exported.download_url, "_blank");
    return;
  }
  if (!response.ok) return message(`Could not download the export (${response.status}): the link may have expired; reload the page.`);
  const url = URL.createObjectURL(await response.blob());
  const link = h("a", { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
