// The thumbnail grid: any number of samples in a scrolling window that draws only the rows in sight.
// Pages of samples are fetched by keyset cursor when the page before is known (scrolling on), else by
// offset (a jump with the scrollbar); pages far from sight are dropped, so memory, DOM nodes and requests
// stay bounded however far one scrolls. Thumbnail URLs are presigned (POST …/samples/urls, one call for the pages in sight), so <img>
// needs no key.

import { api, get, post } from "./api.js";
import { projectContext } from "./app.js";
import { filterControls, filterFromQuery, filterQuery, SAMPLE_STATUSES } from "./filters.js";
import { attempt, fmt, h, message, show, ticket } from "./ui.js";

const PAGE = 100;
const CELL = 168; // px, a cell and its gap
const KEEP_PAGES = 12;
const KEEP_URLS = 1500;
const SETTLE_MS = 120; // fetch only once scrolling pauses, not for every row that flew past
const MAX_OFFSET = 100_000; // the API's limit on offset paging

// Presigned thumbnail URLs by sample id, oldest first (a Map keeps insertion order), each with the time
// it stops working; one about to expire is asked for again.
const thumbnails = new Map();
const EXPIRY_MARGIN_S = 60;
const thumbnailOf = (sampleId) => {
  const known = thumbnails.get(sampleId);
  return known && known.until > Date.now() ? known.url : null;
};

export async function gridPage(projectId, query) {
  const mine = ticket();
  const ctx = await projectContext(projectId);
  const filter = filterFromQuery(query);
  const go = (next) => (location.hash = `#/p/${projectId}/samples?${filterQuery(next)}`);
  const viewport = h("div.grid-viewport", { tabindex: 0 });
  const spacer = h("div.grid-spacer");
  viewport.append(spacer);
  const selection = new Set();
  const bulkBar = h("div.bulk", { hidden: true });
  const [views, { count: total }] = await Promise.all([viewsControl(ctx, filter, go), post(`${ctx.base}/samples/count`, filter)]);
  show(
    mine,
    h(
      "div.grid-head",
      {},
      h("h1", {}, ctx.project.name),
      h("span.muted", {}, h("span#count", {}, fmt(total)), " samples"),
      views,
      h("a#infer-these", { href: `#/p/${projectId}/inference?${filterQuery(filter)}` }, "Run a model on these"),
    ),
    filterControls(ctx, filter, go),
    bulkBar,
    viewport,
  );

  const grid = new Grid(ctx, filter, total, viewport, spacer, selection, () => renderBulk(ctx, selection, bulkBar, grid));
  grid.schedule();
  viewport.focus();
}

class Grid {
  constructor(ctx, filter, total, viewport, spacer, selection, onSelect) {
    Object.assign(this, { ctx, filter, total, viewport, spacer, selection, onSelect });
    this.pages = new Map(); // page index → samples
    this.pending = new Map(); // page index → promise
    this.cursors = new Map([[0, null]]); // page index → the cursor that fetches it
    this.cells = new Map(); // sample index → its element in the DOM
    this.timer = null;
    this.asked = new Set(); // samples whose thumbnail URL is being fetched
    viewport.addEventListener("scroll", () => this.schedule());
    new ResizeObserver(() => this.schedule()).observe(viewport);
  }

  get columns() {
    return Math.max(1, Math.floor(this.viewport.clientWidth / CELL));
  }

  visibleRange() {
    const columns = this.columns;
    const firstRow = Math.max(0, Math.floor(this.viewport.scrollTop / CELL) - 1);
    const lastRow = Math.ceil((this.viewport.scrollTop + this.viewport.clientHeight) / CELL) + 1;
    return [firstRow * columns, Math.min(this.total, lastRow * columns)];
  }

  schedule() {
    this.render();
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.load(), SETTLE_MS);
  }

  render() {
    this.spacer.style.height = `${Math.ceil(this.total / this.columns) * CELL}px`;
    const [first, last] = this.visibleRange();
    for (const [index, cell] of this.cells) {
      if (index < first || index >= last) {
        cell.remove();
        this.cells.delete(index);
      }
    }
    for (let index = first; index < last; index++) {
      const sample = this.sampleAt(index);
      let cell = this.cells.get(index);
      if (cell && cell.dataset.sampleId !== (sample ? sample.id : "")) {
        cell.remove();
        cell = null;
      }
      if (!cell) {
        cell = this.cell(index, sample);
        this.cells.set(index, cell);
        this.spacer.append(cell);
      }
      cell.style.transform = `translate(${(index % this.columns) * CELL}px, ${Math.floor(index / this.columns) * CELL}px)`;
    }
  }

  sampleAt(index) {
    const page = this.pages.get(Math.floor(index / PAGE));
    return page ? page[index % PAGE] : null;
  }

  cell(index, sample) {
    if (!sample) return h("div.cell.placeholder", { dataset: { sampleId: "" } });
    // A thumbnail ingest has not made yet (signed URLs are not checked against the bucket): show the original.
    const img = h("img", { alt: sample.name, loading: "lazy", draggable: false, onerror: () => this.originalInstead(img, sample.id) });
    const url = thumbnailOf(sample.id);
    if (url) img.src = url;
    const cell = h(
      "a.cell",
      {
        href: `#/p/${this.ctx.project.id}/s/${sample.id}?i=${index}&${filterQuery(this.filter)}`,
        dataset: { sampleId: sample.id, index },
        title: `${sample.name} · ${sample.status}`,
        onclick: (event) => {
          if (!(event.ctrlKey || event.metaKey || event.shiftKey)) return;
          event.preventDefault();
          if (this.selection.has(sample.id)) this.selection.delete(sample.id);
          else this.selection.add(sample.id);
          cell.classList.toggle("selected", this.selection.has(sample.id));
          this.onSelect();
        },
      },
      img,
      h("span.caption", {}, sample.name),
      h("span.badge", {}, sample.status),
    );
    cell.classList.toggle("selected", this.selection.has(sample.id));
    return cell;
  }

  async originalInstead(img, sampleId) {
    if (img.dataset.fellBack) return;
    img.dataset.fellBack = "yes";
    const urls = await get(`${this.ctx.base}/samples/${sampleId}/urls`).catch(() => null);
    if (urls) img.src = urls.original_url;
  }

  clearSelection() {
    this.selection.clear();
    for (const cell of this.cells.values()) cell.classList.remove("selected");
    this.onSelect();
  }

  // Fetch what the window shows and lacks: its pages, then its thumbnails' URLs.
  async load() {
    this.timer = null;
    const [first, last] = this.visibleRange();
    const wanted = [];
    for (let page = Math.floor(first / PAGE); page <= Math.floor(Math.max(first, last - 1) / PAGE); page++) wanted.push(page);
    await attempt(async () => {
      await Promise.all(wanted.map((page) => this.page(page)));
      this.dropFarPages(wanted);
      this.render();
      await this.thumbnailsFor(wanted);
    });
  }

  page(index) {
    if (this.pages.has(index)) return Promise.resolve();
    if (!this.pending.has(index)) {
      const promise = this.fetchPage(index).finally(() => this.pending.delete(index));
      this.pending.set(index, promise);
    }
    return this.pending.get(index);
  }

  async fetchPage(index) {
    const body = { ...this.filter, limit: PAGE };
    if (this.cursors.has(index)) {
      if (this.cursors.get(index)) body.cursor = this.cursors.get(index);
    } else if (index * PAGE <= MAX_OFFSET) {
      body.offset = index * PAGE;
    } else {
      await this.page(index - 1); // past the offset limit: walk on from the page before
      return this.fetchPage(index);
    }
    const result = await post(`${this.ctx.base}/samples/search`, body);
    this.pages.set(index, result.items);
    if (result.next_cursor) this.cursors.set(index + 1, result.next_cursor);
  }

  dropFarPages(wanted) {
    const middle = wanted[0];
    const far = [...this.pages.keys()].sort((a, b) => Math.abs(b - middle) - Math.abs(a - middle));
    while (this.pages.size > KEEP_PAGES) this.pages.delete(far.shift());
  }

  // One call signs the thumbnails of every page in sight that lacks them, so scrolling within pages
  // already signed asks nothing.
  async thumbnailsFor(pages) {
    const missing = pages
      .flatMap((page) => this.pages.get(page) || [])
      .filter((sample) => !thumbnailOf(sample.id) && !this.asked.has(sample.id))
      .map((sample) => sample.id);
    if (!missing.length) return;
    missing.forEach((id) => this.asked.add(id));
    const signed = await post(`${this.ctx.base}/samples/urls`, { sample_ids: missing, variant: "thumbnail" }).finally(() =>
      missing.forEach((id) => this.asked.delete(id)),
    );
    const until = Date.now() + (signed.expires_in - EXPIRY_MARGIN_S) * 1000;
    for (const { sample_id, url } of signed.items) {
      thumbnails.delete(sample_id); // re-inserted as the newest
      thumbnails.set(sample_id, { url, until });
      if (thumbnails.size > KEEP_URLS) thumbnails.delete(thumbnails.keys().next().value);
      const img = this.viewport.querySelector(`[data-sample-id="${sample_id}"] img`);
      if (img) img.src = url;
    }
  }
}

async function viewsControl(ctx, filter, go) {
  const views = (await get(`${ctx.base}/views?limit=200`)).items.filter((v) => v.kind === "filter");
  const select = h(
    "select",
    { name: "view", onchange: () => select.value && go(views.find((v) => v.id === select.value).filter || {}) },
    h("option", { value: "" }, "saved views…"),
    views.map((v) => h("option", { value: v.id, selected: JSON.stringify(v.filter) === JSON.stringify(filter) }, v.name)),
  );
  const save = h(
    "button",
    {
      onclick: () =>
        attempt(async () => {
          const name = prompt("Name of the view");
          if (!name) return;
          await post(`${ctx.base}/views`, { name, filter });
          message(`Saved the view “${name}”.`, { kind: "info" });
        }),
    },
    "Save view",
  );
  return h("span.views", {}, select, save);
}

function renderBulk(ctx, selection, bar, grid) {
  bar.hidden = selection.size === 0;
  if (!selection.size) return;
  const ids = [...selection];
  const action = (tag, label, run) => h(tag, { onclick: () => attempt(run) }, label);
  // The grid again (statuses, datasets and membership have changed), then the outcome: once it shows, the
  // new grid is the one on screen, so a click that follows the message cannot land on the old one.
  const done = async (text) => {
    selection.clear();
    await gridPage(ctx.project.id, new URLSearchParams(location.hash.split("?")[1] || ""));
    message(text, { kind: "info" });
  };
  const status = h("select", { name: "bulk-status" }, SAMPLE_STATUSES.map((st) => h("option", {}, st)));
  const dataset = h("select", { name: "bulk-dataset" }, ctx.datasets.map((d) => h("option", { value: d.id }, d.name)));
  bar.replaceChildren(
    h("strong", {}, `${ids.length} selected`),
    status,
    action("button", "Set status", async () => {
      await api("PATCH", `${ctx.base}/samples`, { items: ids.map((id) => ({ id, status: status.value })) });
      await done(`Set ${ids.length} samples to ${status.value}.`);
    }),
    dataset,
    action("button", "Move", async () => {
      const moved = await post(`${ctx.base}/samples/move`, { ids, dataset_id: dataset.value });
      await done(`Moved ${moved.moved} samples.`);
    }),
    action("button", "Add to view", async () => {
      const name = prompt("Add to which view (a new one is made if none has this name)?");
      if (!name) return;
      const views = (await get(`${ctx.base}/views?limit=200`)).items;
      const view = views.find((v) => v.kind === "items" && v.name === name);
      if (view) await post(`${ctx.base}/views/${view.id}/items`, { sample_ids: ids });
      else await post(`${ctx.base}/views`, { name, sample_ids: ids });
      await done(`Added ${ids.length} samples to the view “${name}”.`);
    }),
    action("button.danger", "Delete", async () => {
      if (!confirm(`Delete ${ids.length} samples?`)) return;
      const deleted = await post(`${ctx.base}/samples/delete`, { ids });
      await done(`Deleted ${deleted.deleted} samples.`);
    }),
    h("button", { onclick: () => grid.clearSelection() }, "Clear selection"),
  );
}
