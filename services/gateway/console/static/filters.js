// The search filter as form controls, and as the `f` query parameter of a page's address (so a filtered
// grid can be linked, and a sample opened from it knows its neighbours).

import { h } from "./ui.js";

// proto/samples.py's SampleStatus (tests/console/test_static.py keeps them the same).
export const SAMPLE_STATUSES = ["NEW", "IN_PROGRESS", "TO_REVIEW", "DONE", "SKIPPED", "AUTO_LABELLED", "COMPLETED"];

export function filterFromQuery(query) {
  try {
    return JSON.parse(query.get("f") || "{}");
  } catch {
    return {};
  }
}

export function filterQuery(filter) {
  return Object.keys(filter).length ? `f=${encodeURIComponent(JSON.stringify(filter))}` : "";
}

// A metadata value typed in a box: numbers and booleans as such, so `index=3` matches the number 3; a
// condition or a list of alternatives as JSON (`{"gt": 3}`, `["rain", "snow"]`).
function typed(text) {
  if (text === "true" || text === "false") return text === "true";
  if (text !== "" && !Number.isNaN(Number(text))) return Number(text);
  if (/^[[{]/.test(text)) {
    try {
      return JSON.parse(text);
    } catch {
      /* a value that only looks like JSON */
    }
  }
  return text;
}

const shown = (value) => (typeof value === "object" ? JSON.stringify(value) : String(value));

// Rows of conditions that can be added and removed; `make(condition)` gives a row's controls and
// `read(row)` its condition (null when left empty).
function conditionRows(conditions, make, addText) {
  const box = h("span.group.rows");
  const add = (condition) => {
    const controls = make(condition);
    const row = h("span.row", {}, ...controls.elements, h("button.remove", { type: "button", title: "Remove this condition", onclick: () => (row.remove(), box.querySelector(".row") || add(null)) }, "×"));
    row.read = controls.read;
    box.insertBefore(row, plus);
  };
  const plus = h("button.add", { type: "button", onclick: () => add(null) }, addText);
  box.append(plus);
  (conditions.length ? conditions : [null]).forEach(add);
  return { box, read: () => [...box.querySelectorAll(".row")].map((row) => row.read()).filter(Boolean) };
}

const SHOWN = ["dataset_ids", "statuses", "metadata", "labels", "tags_any", "name_contains", "labeler"]; // by the controls
const without = (object, keys) => Object.fromEntries(Object.entries(object).filter(([key]) => !keys.includes(key)));

// The controls of `filter`; `onApply(newFilter)` when the user applies them. Fields of the filter the
// controls do not show (an address written by hand, say) are kept.
export function filterControls(ctx, filter, onApply) {
  const select = (name, options, value) =>
    h("select", { name }, options.map(([v, label]) => h("option", { value: v, selected: v === value }, label)));
  const classes = ctx.schema.label_classes.filter((c) => !c.archived).map((c) => [c.id, c.name]);
  const metadata = conditionRows(
    Object.entries(filter.metadata || {}),
    (entry) => {
      const key = h("input", { name: "meta-key", placeholder: "metadata key", value: entry ? entry[0] : "", size: 10 });
      const value = h("input", { name: "meta-value", placeholder: "value", value: entry ? shown(entry[1]) : "", size: 8 });
      return { elements: [key, "=", value], read: () => key.value.trim() && [key.value.trim(), typed(value.value.trim())] };
    },
    "+ metadata",
  );
  const classRows = conditionRows(
    (filter.labels && filter.labels.classes) || [],
    (cond) => {
      const mode = !cond ? "present" : cond.max === 0 ? "absent" : cond.min > 1 ? "atleast" : "present";
      const cls = select("class", [["", "any class"], ...classes], cond ? cond.class_id : "");
      const clsMode = select("class-mode", [["present", "present"], ["absent", "absent"], ["atleast", "at least"]], mode);
      const clsCount = h("input", { name: "class-min", type: "number", min: 1, value: cond && cond.min > 1 ? cond.min : 2, size: 3, hidden: mode !== "atleast" });
      clsMode.addEventListener("change", () => (clsCount.hidden = clsMode.value !== "atleast"));
      const read = () => {
        if (!cls.value) return null;
        if (clsMode.value === "absent") return { class_id: cls.value, max: 0 };
        return { class_id: cls.value, min: clsMode.value === "atleast" ? Math.max(1, Number(clsCount.value) || 1) : 1 };
      };
      return { elements: [cls, clsMode, clsCount], read };
    },
    "+ class",
  );
  const controls = {
    dataset: select("dataset", [["", "all datasets"], ...ctx.datasets.map((d) => [d.id, d.name])], (filter.dataset_ids || [""])[0]),
    status: select("status", [["", "any status"], ...SAMPLE_STATUSES.map((st) => [st, st])], (filter.statuses || [""])[0]),
    tags: h("input", { name: "tags", placeholder: "tags (any of, comma)", value: (filter.tags_any || []).join(", "), size: 12 }),
    name: h("input", { name: "name", placeholder: "name contains", value: filter.name_contains || "", size: 12 }),
    labeler: h("input", { name: "labeler", placeholder: "labeler id / unassigned", value: filter.labeler || "", size: 14 }),
  };

  function read() {
    const next = without(filter, SHOWN);
    const c = controls;
    if (c.dataset.value) next.dataset_ids = [c.dataset.value];
    if (c.status.value) next.statuses = [c.status.value];
    const conditions = metadata.read();
    if (conditions.length) next.metadata = Object.fromEntries(conditions);
    const otherLabelFilters = without(filter.labels || {}, ["classes"]);
    const counts = classRows.read();
    if (counts.length || Object.keys(otherLabelFilters).length) next.labels = { ...otherLabelFilters, ...(counts.length ? { classes: counts } : {}) };
    const tags = c.tags.value.split(",").map((t) => t.trim()).filter(Boolean);
    if (tags.length) next.tags_any = tags;
    if (c.name.value.trim()) next.name_contains = c.name.value.trim();
    if (c.labeler.value.trim()) next.labeler = c.labeler.value.trim();
    return next;
  }

  return h(
    "form.filters",
    { onsubmit: (e) => (e.preventDefault(), onApply(read())) },
    controls.dataset,
    controls.status,
    metadata.box,
    classRows.box,
    controls.tags,
    controls.name,
    controls.labeler,
    h("button.primary", { type: "submit", name: "apply" }, "Apply"),
    h("button", { type: "button", onclick: () => onApply({}) }, "Clear"),
  );
}
