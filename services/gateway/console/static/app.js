// The console's shell: sign-in, the hash router, the project list and a project's overview.

import { apiKey, get, post } from "./api.js";
import { attempt, clearMessage, fmt, h, message, nextTicket, show, StaleRoute, ticket } from "./ui.js";
import { SAMPLE_STATUSES } from "./filters.js";
import { gridPage } from "./grid.js";
import { samplePage } from "./sample.js";
import { releasesPage } from "./releases.js";
import { nextFromQueue } from "./review.js";
import { schemaPage } from "./schema.js";
import { inferencePage } from "./inference.js";
import { jobsPage } from "./jobs.js";

// What every page of one project needs, loaded once per project and reloaded after schema edits.
const projects = new Map();

export async function projectContext(projectId, { fresh = false } = {}) {
  if (fresh || !projects.has(projectId)) {
    const base = `/v1/projects/${projectId}`;
    const [project, schema, datasets, labelsets] = await Promise.all([
      get(base),
      get(`${base}/schema`),
      get(`${base}/datasets?limit=500`),
      get(`${base}/labelsets`),
    ]);
    projects.set(projectId, { project, schema, datasets: datasets.items, labelsets: labelsets.items, base });
  }
  return projects.get(projectId);
}

function signIn() {
  const key = h("input", { type: "password", name: "api-key", placeholder: "API key", autocomplete: "off", required: true });
  const form = h(
    "form.card.signin",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        apiKey.set(key.value.trim());
        const me = await attempt(() => get("/v1/me"));
        if (!me) {
          apiKey.clear();
          return;
        }
        clearMessage();
        showWho();
        route();
      },
    },
    h("h1", {}, "Sign in to Loupe"),
    h("p.muted", {}, "Paste an API key. It stays in this tab only (sessionStorage)."),
    key,
    h("button.primary", { type: "submit" }, "Sign in"),
  );
  show(ticket(), form);
  key.focus();
}

async function projectList() {
  const mine = ticket();
  const page = await get("/v1/projects?limit=500");
  show(
    mine,
    h("h1", {}, "Projects"),
    page.items.length
      ? h(
          "ul.projects",
          {},
          page.items.map((p) =>
            h("li.card", {}, h("a.project-link", { href: `#/p/${p.id}` }, p.name), h("span.muted", {}, ` ${p.task_type} · ${p.role || ""}`)),
          ),
        )
      : h("p.muted", {}, "No projects yet. Create one through the API (POST /v1/projects)."),
  );
}

async function overview(projectId) {
  const mine = ticket();
  const ctx = await projectContext(projectId, { fresh: true });
  const count = (filter) => post(`${ctx.base}/samples/count`, filter).then((r) => r.count);
  const classes = ctx.schema.label_classes.filter((c) => !c.archived);
  const [total, byStatus, byDataset, byClass] = await Promise.all([
    count({}),
    Promise.all(SAMPLE_STATUSES.map((status) => count({ statuses: [status] }))),
    Promise.all(ctx.datasets.map((d) => count({ dataset_ids: [d.id] }))),
    Promise.all(classes.map((c) => count({ labels: { classes: [{ class_id: c.id, min: 1 }] } }))),
  ]);
  const most = Math.max(1, ...byClass);
  show(
    mine,
    h("h1", {}, ctx.project.name),
    h("p.muted", {}, `${ctx.project.task_type} · your role: ${ctx.project.role || "–"} · `, h("span#total", {}, fmt(total)), " samples"),
    h(
      "div.columns",
      {},
      h("section.card", {}, h("h2", {}, "By status"), table(SAMPLE_STATUSES.map((st, i) => [st, byStatus[i]]), "status-counts")),
      h("section.card", {}, h("h2", {}, "By dataset"), table(ctx.datasets.map((d, i) => [d.name, byDataset[i]]), "dataset-counts")),
      h(
        "section.card",
        {},
        h("h2", {}, "Samples with each class"),
        h(
          "div.histogram",
          {},
          classes.map((c, i) =>
            h(
              "div.bar-row",
              { dataset: { classId: c.id } },
              h("span.name", {}, c.name),
              h("span.bar", { style: `width:${(100 * byClass[i]) / most}%;background:${c.color}` }),
              h("span.value", {}, fmt(byClass[i])),
            ),
          ),
        ),
      ),
    ),
  );
}

function table(rows, id) {
  return h("table", { id }, h("tbody", {}, rows.map(([name, value]) => h("tr", {}, h("th", {}, name), h("td", {}, fmt(value))))));
}

function navFor(projectId) {
  const nav = document.getElementById("nav");
  if (!projectId) {
    nav.replaceChildren(h("a", { href: "#/" }, "Projects"));
    return;
  }
  const link = (path, text) => h("a", { href: `#/p/${projectId}${path}` }, text);
  nav.replaceChildren(
    h("a", { href: "#/" }, "Projects"),
    link("", "Overview"),
    link("/samples", "Samples"),
    h("a", { href: "#", onclick: (e) => (e.preventDefault(), nextFromQueue(projectId, "label")) }, "Label next"),
    h("a", { href: "#", onclick: (e) => (e.preventDefault(), nextFromQueue(projectId, "review")) }, "Review next"),
    link("/releases", "Releases"),
    link("/schema", "Schema"),
    link("/jobs", "Jobs"),
    link("/inference", "Inference"),
  );
}

async function route() {
  nextTicket();
  if (!apiKey.get()) {
    navFor(null);
    return signIn();
  }
  const parts = location.hash.replace(/^#\/?/, "").split("?")[0].split("/").filter(Boolean);
  const query = new URLSearchParams(location.hash.split("?")[1] || "");
  const [, projectId, page, sampleId] = parts;
  navFor(parts[0] === "p" ? projectId : null);
  await attempt(async () => {
    if (parts[0] !== "p") return projectList();
    if (!page) return overview(projectId);
    if (page === "samples") return gridPage(projectId, query);
    if (page === "s") return samplePage(projectId, sampleId, query);
    if (page === "releases") return releasesPage(projectId);
    if (page === "schema") return schemaPage(projectId);
    if (page === "jobs") return jobsPage(projectId);
    if (page === "inference") return inferencePage(projectId, query);
    throw new Error(`There is no page ${location.hash}.`);
  });
}

async function showWho() {
  const who = document.getElementById("who");
  if (!apiKey.get()) return who.replaceChildren();
  const me = await get("/v1/me").catch(() => null);
  who.replaceChildren(
    h("span.muted", {}, me ? (me.user ? me.user.name : `${me.org_name} (organisation key)`) : ""),
    h("button.link", { onclick: () => (apiKey.clear(), showWho(), route()) }, "Sign out"),
  );
}

// A 401 anywhere: the key was revoked or mistyped; the message comes from the call that failed.
window.addEventListener("loupe:unauthenticated", () => {
  apiKey.clear();
  showWho();
  signIn();
});
window.addEventListener("hashchange", () => {
  clearMessage();
  route();
});
// An error nobody caught still reaches the page, never a blank screen.
window.addEventListener("unhandledrejection", (event) => {
  if (!(event.reason instanceof StaleRoute)) message(event.reason?.message || String(event.reason));
});
window.addEventListener("error", (event) => message(event.message));

showWho();
route();
