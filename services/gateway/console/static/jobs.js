// Jobs of a project: image imports, QA runs and their findings, training runs with their loss and metric
// curves (models and inference jobs have the inference page). Progress comes from the event stream as on
// the releases page.

import { api, followEvents, get, post } from "./api.js";
import { projectContext } from "./app.js";
import { attempt, fmt, h, s, show, ticket } from "./ui.js";

// proto/training.py's Family (tests/console/test_static.py keeps them the same).
export const FAMILIES = ["detection", "segmentation", "tagging", "classification"];
const TITLES = { imports: "Image imports", qa: "Label QA", training: "Training runs" };
const EPOCH_LINE = /^epoch (\d+)\/\d+: loss ([\d.]+)(.*?);/;

export async function jobsPage(projectId) {
  const mine = ticket();
  const ctx = await projectContext(projectId);
  const sections = { imports: h("section.card#imports"), qa: h("section.card#qa"), training: h("section.card#training") };
  show(mine, h("h1", {}, `${ctx.project.name}: jobs`), ...Object.values(sections));
  const fill = { imports, qa: qaRuns, training: trainingRuns };
  // Each section on its own: a service that is down (training, say) leaves the others working.
  const refresh = () =>
    Promise.all(
      Object.entries(sections).map(([name, section]) =>
        fill[name](ctx, section).catch((error) => section.replaceChildren(h("h2", {}, TITLES[name]), h("p.error", {}, error.message))),
      ),
    );
  const stop = followEvents(projectId, (type) => {
    if (/ingest|qa|training/.test(type)) attempt(refresh);
  });
  const leave = () => (stop(), window.removeEventListener("hashchange", leave));
  window.addEventListener("hashchange", leave);
  await refresh();
}

async function imports(ctx, section) {
  const runs = (await get(`${ctx.base}/imports?limit=20`)).items;
  section.replaceChildren(
    h("h2", {}, TITLES.imports),
    runs.length
      ? h(
          "table.jobs",
          {},
          h("tbody", {}, runs.map((r) => h("tr", { dataset: { runId: r.id } }, h("td", {}, r.source), h("td", {}, r.state), h("td", {}, `${fmt(r.created)} new · ${fmt(r.duplicates)} duplicates · ${fmt(r.failed)} failed · ${fmt(r.pending)} pending of ${fmt(r.total)}`)))),
        )
      : h("p.muted", {}, "No imports yet."),
  );
}

async function qaRuns(ctx, section) {
  const runs = (await get(`${ctx.base}/qa-runs`)).items;
  const predictions = ctx.labelsets.filter((l) => !l.is_ground_truth);
  const labelset = h("select", { name: "qa-predictions" }, predictions.map((l) => h("option", {}, l.name)));
  const findings = h("div.findings");
  section.replaceChildren(
    h("h2", {}, TITLES.qa),
    predictions.length
      ? h("form.inline", { onsubmit: (e) => (e.preventDefault(), attempt(async () => (await post(`${ctx.base}/qa-runs`, { predictions: labelset.value }), qaRuns(ctx, section)))) }, "compare ground truth with", labelset, h("button", { type: "submit" }, "Start QA run"))
      : h("p.muted", {}, "QA compares a predictions labelset with ground truth; this project has none yet."),
    h(
      "ul",
      {},
      runs.map((r) =>
        h(
          "li",
          {},
          `${r.predictions} vs ${r.ground_truth}: ${r.state}, ${fmt(r.samples)} samples, ${fmt(r.findings)} findings `,
          h("span.muted", {}, Object.entries(r.counts).map(([k, v]) => `${k} ${v}`).join(", ")),
          " ",
          h("button", { onclick: () => attempt(() => showFindings(ctx, r, findings)) }, "Findings"),
        ),
      ),
    ),
    findings,
  );
}

async function showFindings(ctx, run, box) {
  const page = await get(`${ctx.base}/qa-runs/${run.id}/findings?limit=100`);
  const classes = new Map(ctx.schema.label_classes.map((c) => [c.id, c.name]));
  const resolve = (finding, resolution) =>
    attempt(async () => (await api("PATCH", `${ctx.base}/findings/${finding.id}`, { resolution }), showFindings(ctx, run, box)));
  box.replaceChildren(
    h("p.muted", {}, `${fmt(page.total)} findings, the first ${page.items.length}:`),
    h(
      "table.jobs",
      {},
      h(
        "tbody",
        {},
        page.items.map((f) =>
          h(
            "tr",
            {},
            h("td", {}, h("a", { href: `#/p/${ctx.project.id}/s/${f.sample_id}` }, f.kind)),
            h("td", {}, classes.get(f.class_id) || ""),
            h("td", {}, f.iou != null ? `IoU ${f.iou.toFixed(2)}` : ""),
            h("td", {}, f.resolution || "open"),
            h("td", {}, h("button", { onclick: () => resolve(f, "NOT_AN_ERROR") }, "Not an error"), h("button", { onclick: () => resolve(f, "FIXED") }, "Fixed")),
          ),
        ),
      ),
    ),
  );
}

async function trainingRuns(ctx, section) {
  const runs = (await get(`${ctx.base}/training/runs`)).items;
  const family = h("select", { name: "family" }, FAMILIES.map((f) => h("option", {}, f)));
  const chart = h("div.chart");
  section.replaceChildren(
    h("h2", {}, TITLES.training),
    h("form.inline", { onsubmit: (e) => (e.preventDefault(), attempt(async () => (await post(`${ctx.base}/training/runs`, { family: family.value }), trainingRuns(ctx, section)))) }, family, h("button", { type: "submit" }, "Train")),
    h(
      "ul",
      {},
      runs.map((r) =>
        h(
          "li",
          {},
          `${r.model} (${r.family}): ${r.state}, epoch ${r.epoch}/${r.epochs}`,
          r.loss != null ? `, loss ${r.loss.toFixed(4)}` : "",
          r.error ? h("span.muted", {}, ` · ${r.error}`) : "",
          " ",
          h("button", { onclick: () => attempt(() => showCurves(ctx, r, chart)) }, "Curves"),
        ),
      ),
    ),
    chart,
  );
}

// Loss and metrics per epoch, read from the run's log (one line per epoch), drawn as SVG polylines.
async function showCurves(ctx, run, box) {
  const series = {};
  let cursor = null;
  do {
    const page = await get(`${ctx.base}/training/runs/${run.id}/log?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    for (const line of page.items) {
      const match = EPOCH_LINE.exec(line.message);
      if (!match) continue;
      const epoch = Number(match[1]);
      (series.loss ||= []).push([epoch, Number(match[2])]);
      for (const [, name, value] of match[3].matchAll(/,\s*([\w.@-]+) ([\d.]+)/g)) (series[name] ||= []).push([epoch, Number(value)]);
    }
    cursor = page.items.length ? page.next_cursor : null;
  } while (cursor);
  box.replaceChildren(...(Object.keys(series).length ? Object.entries(series).map(([name, points]) => curve(name, points)) : [h("p.muted", {}, "No epoch finished yet.")]));
}

function curve(name, points) {
  const [w, ht] = [320, 120];
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs, Math.min(...xs) + 1), Math.min(...ys), Math.max(...ys, Math.min(...ys) + 1e-9)];
  const at = ([x, y]) => `${((x - x0) / (x1 - x0)) * w},${ht - ((y - y0) / (y1 - y0)) * ht}`;
  return h(
    "figure.curve",
    { dataset: { metric: name } },
    h("figcaption", {}, `${name}: ${ys[ys.length - 1]}`),
    s("svg", { viewBox: `-4 -4 ${w + 8} ${ht + 8}`, width: w, height: ht }, s("polyline", { points: points.map(at).join(" "), fill: "none", stroke: "#2f6fed", "stroke-width": 2 })),
  );
}
