// Inference: a project's auto-label, embeddings and ranking jobs (create, follow, cancel, results) and its
// models with their versions (activate one). Progress comes from the event stream: `inference.job.progressed`
// updates a job's row in place, `inference.job.changed` and model events redraw the list.

import { api, followEvents, get, post } from "./api.js";
import { projectContext } from "./app.js";
import { filterFromQuery } from "./filters.js";
import { FAMILIES } from "./jobs.js";
import { attempt, fmt, h, message, show, ticket } from "./ui.js";

// proto/inference.py's JobKind and FINISHED_STATES (tests/console/test_static.py keeps them the same).
const KINDS = ["autolabel", "embeddings", "ranking"];
const FINISHED_STATES = ["SUCCEEDED", "FAILED", "CANCELLED"];
const FINISHED = new Set(FINISHED_STATES);
const POLL_MS = 3000; // in case the event stream was cut

export async function inferencePage(projectId, query) {
  const mine = ticket();
  const ctx = await projectContext(projectId);
  const gridFilter = filterFromQuery(query); // the grid's filter when opened from the grid
  const [views, heuristics] = await Promise.all([get(`${ctx.base}/views?limit=200`), get("/v1/inference/heuristics")]);
  const jobs = h("section.card#inference-jobs");
  const results = h("section.card#job-results", { hidden: true });
  const models = h("section.card#models");
  const refresh = () =>
    Promise.all([
      listJobs(ctx, jobs, results).catch((error) => jobs.replaceChildren(h("h2", {}, "Jobs"), h("p.error", {}, error.message))),
      listModels(ctx, models).catch((error) => models.replaceChildren(h("h2", {}, "Models"), h("p.error", {}, error.message))),
    ]);
  show(
    mine,
    h("h1", {}, `${ctx.project.name}: inference`),
    createForm(ctx, gridFilter, views.items, heuristics.items, refresh),
    jobs,
    results,
    models,
  );
  const stop = followEvents(projectId, (type, envelope) => {
    if (type === "inference.job.progressed") showProgress(jobs, envelope.data);
    else if (/inference|model/.test(type)) attempt(refresh);
  });
  const timer = setInterval(() => attempt(() => listJobs(ctx, jobs, results)), POLL_MS);
  const leave = () => (stop(), clearInterval(timer), window.removeEventListener("hashchange", leave));
  window.addEventListener("hashchange", leave);
  await refresh();
}

// The job's spec from the form; the API checks it (model, filter, outputs) and answers a 4xx that says what to fix.
function createForm(ctx, gridFilter, views, heuristics, refresh) {
  const field = (label, control) => h("label", {}, label, " ", control);
  const kind = h("select", { name: "kind" }, KINDS.map((k) => h("option", {}, k)));
  const family = h("select", { name: "family" }, FAMILIES.map((f) => h("option", {}, f)));
  const model = h("input", { name: "model", placeholder: "active", size: 12 });
  const version = h("input", { name: "version", type: "number", min: 1, placeholder: "active", size: 5 });
  const hasFilter = Object.keys(gridFilter).length > 0;
  const selection = h(
    "select",
    { name: "selection" },
    h("option", { value: "all" }, "all samples"),
    hasFilter && h("option", { value: "grid", selected: true }, "the grid's filter"),
    views.map((v) => h("option", { value: v.id }, `view: ${v.name}`)),
  );
  const target = h("select", { name: "target" }, h("option", {}, "predictions"), h("option", {}, "ground-truth"));
  const replace = h("input", { name: "replace", type: "checkbox", checked: true });
  const heuristic = h("select", { name: "heuristic" }, heuristics.map((x) => h("option", { value: x.id, title: x.description }, x.id)));
  const count = h("input", { name: "count", type: "number", min: 1, value: 100, size: 6 });
  const autolabelOnly = h("span", {}, field("into", target), field("replace", replace));
  const rankingOnly = h("span", {}, field("heuristic", heuristic), field("keep", count));
  const showKindFields = () => {
    autolabelOnly.hidden = kind.value !== "autolabel";
    rankingOnly.hidden = kind.value !== "ranking";
  };
  kind.addEventListener("change", showKindFields);
  showKindFields();

  const spec = () => {
    const job = { kind: kind.value, model: { family: family.value } };
    if (model.value.trim()) job.model.model = model.value.trim();
    if (version.value) job.model.version = Number(version.value);
    if (selection.value === "grid") job.selection = { filter: gridFilter };
    else if (selection.value !== "all") job.selection = { view_id: selection.value };
    if (job.kind === "autolabel") Object.assign(job, { target: target.value, replace: replace.checked });
    if (job.kind === "ranking") Object.assign(job, { heuristic: heuristic.value, count: Number(count.value) });
    return job;
  };
  return h(
    "form.card.inline#new-job",
    {
      onsubmit: (event) => {
        event.preventDefault();
        attempt(async () => {
          const job = await post(`${ctx.base}/inference/jobs`, spec());
          message(`Started the ${job.kind} job with ${job.model} v${job.version}.`, { kind: "info" });
          await refresh();
        });
      },
    },
    field("job", kind),
    field("family", family),
    field("model", model),
    field("version", version),
    field("over", selection),
    autolabelOnly,
    rankingOnly,
    h("button.primary", { type: "submit" }, "Start job"),
  );
}

async function listJobs(ctx, section, results) {
  const jobs = (await get(`${ctx.base}/inference/jobs?limit=50`)).items;
  section.replaceChildren(
    h("h2", {}, "Jobs"),
    jobs.length
      ? h("table.jobs", {}, h("tbody", {}, jobs.map((job) => jobRow(ctx, job, section, results))))
      : h("p.muted", {}, "No inference jobs yet."),
  );
}

function jobRow(ctx, job, section, results) {
  const cancel = async () => {
    await post(`${ctx.base}/inference/jobs/${job.id}/cancel`);
    await listJobs(ctx, section, results);
  };
  const row = h(
    "tr",
    { dataset: { jobId: job.id, state: job.state } },
    h("td", {}, job.kind),
    h("td", {}, `${job.model} v${job.version} (${job.family})`),
    h("td.state", {}, job.state, job.cancel_requested && !FINISHED.has(job.state) ? " (cancelling)" : ""),
    h("td.progress", {}),
    h("td", {}, job.error ? h("span.error", {}, job.error) : `${fmt(job.skipped)} skipped · ${fmt(job.failed)} failed`),
    h(
      "td",
      {},
      FINISHED.has(job.state) ? null : h("button.cancel", { onclick: () => attempt(cancel) }, "Cancel"),
      h("button.results", { onclick: () => attempt(() => showResults(ctx, job, results)) }, "Results"),
      job.view_id ? h("span.muted", {}, " its picks are a saved view") : null,
    ),
  );
  fillProgress(row, job);
  return row;
}

function fillProgress(row, { done, total, written, images_per_s, eta_s }) {
  const parts = [`${fmt(done)}${total != null ? ` of ${fmt(total)}` : ""} done`, `${fmt(written)} written`];
  if (images_per_s) parts.push(`${images_per_s.toFixed(1)} images/s`);
  if (eta_s != null) parts.push(`${Math.ceil(eta_s)} s left`);
  const bar = total ? h("progress", { max: total, value: done }) : null;
  row.querySelector("td.progress").replaceChildren(bar || "", " ", parts.join(" · "));
}

function showProgress(section, progress) {
  const row = section.querySelector(`tr[data-job-id="${progress.job_id}"]`);
  if (row) fillProgress(row, progress);
}

// The first 100 samples the job went through: an auto-label job's predictions, a ranking's rank and score.
async function showResults(ctx, job, box) {
  const page = await get(`${ctx.base}/inference/jobs/${job.id}/results?limit=100`);
  const what = (r) =>
    r.rank != null
      ? `rank ${r.rank}, score ${r.score != null ? r.score.toFixed(3) : "–"}`
      : r.predictions
        ? `${r.predictions.objects.length} objects, ${r.predictions.tags.map((t) => `${t.group}: ${t.tag}`).join(", ") || "no tags"}`
        : "stored";
  box.hidden = false;
  box.replaceChildren(
    h("h2", {}, `Results of the ${job.kind} job`),
    page.items.length
      ? h(
          "table.jobs",
          {},
          h("tbody", {}, page.items.map((r) => h("tr", {}, h("td", {}, h("a", { href: `#/p/${ctx.project.id}/s/${r.sample_id}` }, r.sample_id.slice(0, 8))), h("td", {}, what(r))))),
        )
      : h("p.muted", {}, "No results yet."),
    page.next_cursor ? h("p.muted", {}, "The first 100; the API pages through the rest.") : null,
  );
}

async function listModels(ctx, section) {
  const models = (await get(`${ctx.base}/models`)).items;
  const versions = await Promise.all(models.map((m) => get(`${ctx.base}/models/${encodeURIComponent(m.name)}/versions`)));
  const activate = (m, v) => async () => {
    await api("PUT", `${ctx.base}/models/${encodeURIComponent(m.name)}/active-version`, { version: v.version });
    await listModels(ctx, section);
  };
  const metrics = (v) => Object.entries(v.metrics).map(([k, x]) => `${k} ${x.toFixed(3)}`).join(", ");
  section.replaceChildren(
    h("h2", {}, "Models"),
    ...(models.length
      ? models.map((m, i) =>
          h(
            "div.model",
            { dataset: { model: m.name } },
            h("h3", {}, `${m.name} (${m.family})`),
            h(
              "table.jobs",
              {},
              h(
                "tbody",
                {},
                versions[i].items.map((v) =>
                  h(
                    "tr",
                    { dataset: { version: v.version } },
                    h("td", {}, `v${v.version}`),
                    h("td", {}, metrics(v)),
                    h("td", {}, `${fmt(v.training_samples)} training samples`),
                    h(
                      "td",
                      {},
                      v.active ? h("strong", {}, "active") : v.weights_deleted ? "weights deleted" : h("button", { onclick: () => attempt(activate(m, v)) }, "Activate"),
                    ),
                  ),
                ),
              ),
            ),
          ),
        )
      : [h("p.muted", {}, "No models yet: train one on the jobs page.")]),
  );
}
