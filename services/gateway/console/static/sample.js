// One sample: its image with every label drawn in SVG, zoom and pan, the object list, and the labelling
// tools (box, polygon, move, resize, drag the points of polygons, polylines, points and keypoints one by
// one, class, delete, undo, save with the label's version), and predictions of the active model on demand.

import { api, ApiError, get, post } from "./api.js";
import { projectContext } from "./app.js";
import { filterFromQuery, filterQuery } from "./filters.js";
import { FAMILIES } from "./jobs.js";
import { nextFromQueue, reviewPanel } from "./review.js";
import { objectShape } from "./shapes.js";
import { attempt, clearMessage, h, message, s, show, ticket } from "./ui.js";

const GROUND_TRUTH = "ground-truth";
// A label in these statuses becomes LABELED when its labeler saves; later ones keep their status.
const SAVED_AS_LABELED = new Set(["UNLABELED", "PRELABELED", "LABELING_IN_PROGRESS", "SKIPPED", "REJECTED"]);
// The model family offered first for predictions, by the project's task type.
const FAMILY_OF_TASK = { bboxes: "detection", "segmentation-bitmap": "segmentation", classification: "classification" };
const OBJECT_INPUT = ["id", "class_id", "shape", "z_index", "attributes", "confidence", "external_id"];

let stopKeys = null; // the key handler of the sample on screen

export async function samplePage(projectId, sampleId, query) {
  const mine = ticket();
  const ctx = await projectContext(projectId);
  const base = `${ctx.base}/samples/${sampleId}`;
  const predictionSets = ctx.labelsets.filter((l) => !l.is_ground_truth).map((l) => l.name);
  const [sample, urls, label, predictions] = await Promise.all([
    get(base),
    get(`${base}/urls`),
    get(`${base}/labels/${GROUND_TRUTH}`),
    predictionSets.length ? get(`${base}/labels/${encodeURIComponent(predictionSets[0])}`) : null,
  ]);
  const editor = new Editor(ctx, sample, urls, label, predictions, query);
  editor.mount(mine);
}

class Editor {
  constructor(ctx, sample, urls, label, predictions, query) {
    Object.assign(this, { ctx, sample, urls, label, predictions, query });
    this.classes = ctx.schema.label_classes.filter((c) => !c.archived);
    this.classById = new Map(ctx.schema.label_classes.map((c) => [c.id, c]));
    this.skeletons = new Map(ctx.schema.keypoint_schemas.map((k) => [k.id, k]));
    this.objects = label.objects.map((o) => ({ ...o }));
    this.tags = new Set(label.tag_class_ids);
    this.imageAttributes = { ...label.attributes };
    this.history = [];
    this.selected = null;
    this.tool = "select";
    this.currentClass = this.classes[0] ? this.classes[0].id : null;
    this.show = "ground-truth"; // or "predictions" or "both"
    this.dirty = false;
    this.view = [0, 0, sample.width, sample.height]; // the viewBox: zoom and pan
    this.draft = null; // a box or polygon being drawn
  }

  mount(pageTicket) {
    const { sample } = this;
    this.svg = s("svg", { id: "canvas", viewBox: this.view.join(" "), preserveAspectRatio: "xMidYMid meet" });
    this.image = s("image", { id: "photo", href: this.urls.original_url, x: 0, y: 0, width: sample.width, height: sample.height });
    this.layer = s("g", { id: "objects" });
    this.overlay = s("g", { id: "overlay" });
    this.svg.append(this.image, this.layer, this.overlay);
    this.list = h("ol#object-list");
    this.status = h("span#label-status", {}, this.label.status);
    this.version = h("span#label-version", {}, `v${this.label.version}`);
    this.saveButton = h("button#save.primary", { onclick: () => this.save() }, "Save");
    const toolButtons = [
      ["select", "Select / move (v)"],
      ["box", "Box (b)"],
      ["polygon", "Polygon (g)"],
      ["hole", "Hole (h)"],
    ].map(([tool, text]) => h("button.tool", { dataset: { tool }, onclick: () => this.setTool(tool) }, text));
    this.toolButtons = toolButtons;
    this.classSelect = h(
      "select#class",
      { name: "class", onchange: () => this.setClass(this.classSelect.value) },
      this.classes.map((c, i) => h("option", { value: c.id }, `${i + 1}. ${c.name}`)),
    );
    this.showSelect = h("select#show", { name: "show", onchange: () => ((this.show = this.showSelect.value), this.draw()) });
    this.fillShowSelect();
    const family = h("select", { name: "predict-family" }, FAMILIES.map((f) => h("option", { selected: f === FAMILY_OF_TASK[this.ctx.project.task_type] }, f)));
    const confidence = h("input", { name: "predict-confidence", type: "number", min: 0, max: 1, step: 0.05, value: 0.3, title: "lowest confidence shown" });
    const predict = h("button#predict", { title: "Run the family's active model on this image" }, "Predict");
    predict.addEventListener("click", () => attempt(() => this.predictNow(family.value, Number(confidence.value))));
    this.issues = issuesPanel(this.ctx, sample);
    const back = `#/p/${this.ctx.project.id}/samples?${filterQuery(filterFromQuery(this.query))}`;
    show(
      pageTicket,
      h(
        "div.sample-head",
        {},
        h("a", { href: back }, "← grid"),
        h("h1", {}, sample.name),
        h("span.muted", {}, `${sample.width}×${sample.height} · sample ${sample.status} · label `, this.status, " ", this.version),
        h("span.spacer"),
        h("button", { onclick: () => this.neighbour(-1), title: "p" }, "‹ previous"),
        h("button", { onclick: () => this.neighbour(1), title: "n" }, "next ›"),
      ),
      h(
        "div.toolbar",
        {},
        toolButtons,
        this.classSelect,
        h("button", { onclick: () => this.undo(), title: "Ctrl+Z" }, "Undo"),
        h("button", { onclick: () => this.deleteSelected(), title: "Delete" }, "Delete"),
        h("span.sep"),
        this.showSelect,
        family,
        confidence,
        predict,
        h("button", { onclick: () => this.zoom(0.8) }, "+"),
        h("button", { onclick: () => this.zoom(1.25) }, "−"),
        h("button", { onclick: () => this.fit() }, "Fit"),
        h("span.spacer"),
        this.saveButton,
      ),
      h(
        "div.workspace",
        {},
        h("div.stage", {}, this.svg),
        h(
          "aside.side",
          {},
          this.query.get("review") ? reviewPanel(this) : null,
          h("h2", {}, "Objects"),
          this.list,
          this.tagsPanel(),
          this.attributesPanel(),
          this.issues,
        ),
      ),
    );
    this.bindPointer();
    this.bindKeys();
    this.setTool("select");
    this.draw();
  }

  fillShowSelect() {
    const option = (value, text) => h("option", { value, selected: value === this.show }, text);
    this.showSelect.replaceChildren(
      option("ground-truth", "ground truth"),
      ...(this.predictions ? [option("predictions", `predictions (${this.predictions.labelset})`), option("both", "both")] : []),
    );
  }

  // Predictions of the active model, drawn as the predictions overlay beside the ground truth; nothing is
  // saved. Objects of classes the schema no longer has (no class id) are left out.
  async predictNow(family, confidence) {
    const request = { model: { family }, sample_id: this.sample.id, thresholds: { confidence } };
    const answer = await post(`${this.ctx.base}/inference/predict`, request);
    const objects = answer.objects.filter((o) => o.class_id);
    this.predictions = { labelset: `${answer.model} v${answer.version}, now`, objects };
    this.show = "both";
    this.fillShowSelect();
    this.draw();
    const tags = answer.tags.map((t) => `${t.group}: ${t.tag} (${t.confidence.toFixed(2)})`);
    message(`${answer.model} v${answer.version} predicts ${objects.length} objects${tags.length ? `; ${tags.join(", ")}` : ""}.`, { kind: "info" });
  }

  // -- drawing ------------------------------------------------------------------------------------------

  // Everything again: after a change of the object list (an edit, an undo, a save, the labelsets shown).
  draw() {
    const shapes = [];
    this.owners = new Map(); // each drawn <g> of ground truth → its object, for clicks
    this.nodes = new Map(); // and back: object → its <g>
    if (this.show !== "predictions") {
      const ordered = [...this.objects].sort((a, b) => (a.z_index || 0) - (b.z_index || 0));
      for (const o of ordered) shapes.push(this.shapeOf(o));
    }
    if (this.show !== "ground-truth" && this.predictions) {
      for (const o of this.predictions.objects) shapes.push(this.shapeOf(o, true));
    }
    this.layer.replaceChildren(...shapes);
    this.drawHandles();
    this.drawList();
    this.saveButton.textContent = this.dirty ? "Save*" : "Save";
  }

  shapeOf(object, prediction = false) {
    const cls = this.classById.get(object.class_id);
    const skeleton = cls && cls.keypoint_schema_id ? this.skeletons.get(cls.keypoint_schema_id) : null;
    const size = { width: this.sample.width, height: this.sample.height };
    const shape = objectShape(object, cls, skeleton, { prediction, selected: object === this.selected, ...size });
    if (!prediction) {
      this.owners.set(shape, object);
      this.nodes.set(object, shape);
    }
    return shape;
  }

  // Just this object again, while it is dragged: a sample with a thousand objects stays responsive.
  redrawObject(object) {
    const old = this.nodes.get(object);
    if (!old) return this.draw();
    this.owners.delete(old);
    old.replaceWith(this.shapeOf(object));
    this.drawHandles();
  }

  drawHandles() {
    const handles = [];
    const o = this.selected;
    const r = this.view[2] / 150;
    if (o && o.shape.type === "bbox") {
      const [x1, y1, x2, y2] = o.shape.box;
      for (const [corner, x, y] of [["nw", x1, y1], ["ne", x2, y1], ["sw", x1, y2], ["se", x2, y2]]) {
        handles.push(s("rect", { class: "handle", "data-corner": corner, x: x - r / 2, y: y - r / 2, width: r, height: r }));
      }
    } else if (o) {
      vertices(o.shape).forEach(([x, y, visibility], i) => {
        if (visibility !== 0) handles.push(s("circle", { class: "handle", "data-vertex": i, cx: x, cy: y, r: r / 2 }));
      });
    }
    if (this.draft && this.draft.type === "polygon") {
      const pts = this.draft.points.map((p) => p.join(",")).join(" ");
      handles.push(s("polyline", { class: "draft", points: pts, "vector-effect": "non-scaling-stroke" }));
    }
    if (this.draft && this.draft.type === "bbox") {
      const [x1, y1, x2, y2] = normalised(this.draft.box);
      handles.push(s("rect", { class: "draft", x: x1, y: y1, width: x2 - x1, height: y2 - y1, "vector-effect": "non-scaling-stroke" }));
    }
    this.overlay.replaceChildren(...handles);
  }

  drawList() {
    this.rows = new Map(); // object → its row in the list
    const rows = this.objects.map((o, i) => {
      const cls = this.classById.get(o.class_id);
      return h(
        "li",
        {
          class: o === this.selected ? "selected" : "",
          dataset: { objectId: o.id || "" },
          onclick: () => this.select(o),
        },
        h("span.swatch", { style: `background:${cls ? cls.color : "#f0f"}` }),
        `${i + 1}. ${cls ? cls.name : "?"} · ${o.shape.type}`,
        o.confidence != null ? h("span.muted", {}, ` ${o.confidence.toFixed(2)}`) : null,
      );
    });
    this.objects.forEach((o, i) => this.rows.set(o, rows[i]));
    this.list.replaceChildren(...rows);
  }

  // -- editing --------------------------------------------------------------------------------------------

  change(apply) {
    this.history.push({
      objects: this.objects.map((o) => ({ ...o, shape: structuredClone(o.shape), attributes: { ...o.attributes } })),
      tags: new Set(this.tags),
      imageAttributes: { ...this.imageAttributes },
    });
    if (this.history.length > 200) this.history.shift();
    apply();
    this.dirty = true;
    this.draw();
  }

  undo() {
    const previous = this.history.pop();
    if (!previous) return;
    this.objects = previous.objects;
    this.tags = previous.tags;
    this.imageAttributes = previous.imageAttributes;
    this.selected = null;
    this.dirty = true;
    this.draw();
    this.redrawTags();
    this.redrawAttributes();
  }

  // Marks the object (or none) as selected, touching only it and the one selected before.
  select(object) {
    const before = this.selected;
    this.selected = object;
    if (object) this.classSelect.value = object.class_id;
    for (const o of [before, object]) {
      if (!o) continue;
      this.nodes.get(o)?.classList.toggle("selected", o === object);
      this.rows.get(o)?.classList.toggle("selected", o === object);
    }
    this.drawHandles();
    if (before !== object) this.redrawAttributes();
  }

  setTool(tool) {
    this.tool = tool;
    this.draft = null;
    for (const button of this.toolButtons) button.classList.toggle("active", button.dataset.tool === tool);
    this.svg.dataset.tool = tool;
    this.drawHandles();
  }

  setClass(classId) {
    this.currentClass = classId;
    this.classSelect.value = classId;
    if (this.selected && this.selected.class_id !== classId) {
      const target = this.selected;
      this.change(() => (target.class_id = classId));
    }
  }

  deleteSelected() {
    const target = this.selected;
    if (!target) return;
    this.change(() => {
      this.objects = this.objects.filter((o) => o !== target);
      this.selected = null;
    });
  }

  addObject(shape) {
    if (!this.currentClass) return message("The project has no label class yet: add one on the Schema page.");
    const object = { class_id: this.currentClass, shape, z_index: 0, attributes: {} };
    this.change(() => this.objects.push(object));
    this.select(object);
  }

  // -- pointer: draw, move, resize, pan, zoom ----------------------------------------------------------

  point(event) {
    const p = this.svg.createSVGPoint();
    p.x = event.clientX;
    p.y = event.clientY;
    const q = p.matrixTransform(this.svg.getScreenCTM().inverse());
    return [clamp(q.x, 0, this.sample.width), clamp(q.y, 0, this.sample.height)];
  }

  bindPointer() {
    const svg = this.svg;
    svg.addEventListener("wheel", (event) => {
      event.preventDefault();
      this.zoom(event.deltaY > 0 ? 1.15 : 1 / 1.15, this.point(event));
    });
    const drawsRing = () => this.tool === "polygon" || this.tool === "hole";
    svg.addEventListener("dblclick", () => drawsRing() && this.finishPolygon());
    svg.addEventListener("pointerdown", (event) => {
      if (event.button !== 0) return;
      const start = this.point(event);
      const target = event.target;
      if (this.tool === "box") {
        this.draft = { type: "bbox", box: [...start, ...start] };
        return this.drag(event, (p) => ((this.draft.box = [...start, ...p]), this.drawHandles()), () => {
          const box = normalised(this.draft.box);
          this.draft = null;
          if (box[2] - box[0] >= 2 && box[3] - box[1] >= 2) this.addObject({ type: "bbox", box: box.map(round) });
          else this.drawHandles();
        });
      }
      if (this.tool === "hole" && !(this.selected && this.selected.shape.type === "polygon")) {
        return message("Select a polygon first, then draw its hole.", { kind: "info" });
      }
      if (drawsRing()) {
        if (!this.draft) this.draft = { type: "polygon", points: [] };
        const first = this.draft.points[0];
        const near = first && Math.hypot(first[0] - start[0], first[1] - start[1]) < this.view[2] / 100;
        if (near && this.draft.points.length >= 3) return this.finishPolygon();
        this.draft.points.push(start.map(round));
        return this.drawHandles();
      }
      const o = this.selected;
      if (target.dataset.corner && o) return this.resizeBox(event, o, target.dataset.corner);
      if (target.dataset.vertex && o) return this.moveVertex(event, o, Number(target.dataset.vertex));
      const hit = target.closest("g.object:not(.prediction)");
      const object = hit ? this.owners.get(hit) : null;
      if (object) {
        this.select(object);
        return this.moveObject(event, object, start);
      }
      this.select(null);
      this.pan(event);
    });
  }

  // Follows the pointer until it is released: `move(point)` on each move, `end()` at the end.
  drag(event, move, end) {
    this.svg.setPointerCapture(event.pointerId);
    const onMove = (e) => move(this.point(e), e);
    const onUp = () => {
      this.svg.removeEventListener("pointermove", onMove);
      this.svg.removeEventListener("pointerup", onUp);
      end();
    };
    this.svg.addEventListener("pointermove", onMove);
    this.svg.addEventListener("pointerup", onUp);
  }

  // A drag that changes `object`: one undo step for the whole drag, recorded once it really moves.
  editDrag(event, object, update) {
    const before = structuredClone(object.shape);
    let recorded = false;
    this.drag(
      event,
      (p) => {
        if (!recorded) {
          const now = object.shape;
          object.shape = before;
          this.change(() => (object.shape = now));
          recorded = true;
        }
        object.shape = update(before, p);
        this.redrawObject(object);
      },
      () => {},
    );
  }

  moveObject(event, object, start) {
    this.editDrag(event, object, (before, p) => translated(before, p[0] - start[0], p[1] - start[1]));
  }

  resizeBox(event, object, corner) {
    this.editDrag(event, object, (before, p) => {
      const box = [...before.box];
      if (corner.includes("w")) box[0] = round(p[0]);
      if (corner.includes("e")) box[2] = round(p[0]);
      if (corner.includes("n")) box[1] = round(p[1]);
      if (corner.includes("s")) box[3] = round(p[1]);
      return { ...before, box: normalised(box) };
    });
  }

  moveVertex(event, object, index) {
    this.editDrag(event, object, (before, p) => withVertex(before, index, [round(p[0]), round(p[1])]));
  }

  // Closes the ring being drawn: a new polygon, or with the hole tool a hole in the selected polygon.
  finishPolygon() {
    const draft = this.draft;
    this.draft = null;
    const target = this.selected;
    if (!draft || draft.points.length < 3) return this.drawHandles();
    if (this.tool !== "hole") return this.addObject({ type: "polygon", points: draft.points, holes: [] });
    this.change(() => (target.shape = { ...target.shape, holes: [...(target.shape.holes || []), draft.points] }));
  }

  pan(event) {
    const startX = event.clientX;
    const startY = event.clientY;
    const [x0, y0] = this.view;
    const perPixel = this.view[2] / this.svg.getBoundingClientRect().width;
    this.svg.setPointerCapture(event.pointerId);
    const onMove = (e) => {
      this.view[0] = x0 - (e.clientX - startX) * perPixel;
      this.view[1] = y0 - (e.clientY - startY) * perPixel;
      this.svg.setAttribute("viewBox", this.view.join(" "));
    };
    const onUp = () => {
      this.svg.removeEventListener("pointermove", onMove);
      this.svg.removeEventListener("pointerup", onUp);
    };
    this.svg.addEventListener("pointermove", onMove);
    this.svg.addEventListener("pointerup", onUp);
  }

  zoom(factor, around) {
    const [x, y, w, hgt] = this.view;
    const [cx, cy] = around || [x + w / 2, y + hgt / 2];
    this.view = [cx - (cx - x) * factor, cy - (cy - y) * factor, w * factor, hgt * factor];
    this.svg.setAttribute("viewBox", this.view.join(" "));
    this.drawHandles();
  }

  fit() {
    this.view = [0, 0, this.sample.width, this.sample.height];
    this.svg.setAttribute("viewBox", this.view.join(" "));
    this.drawHandles();
  }

  // -- keys ---------------------------------------------------------------------------------------------

  bindKeys() {
    if (stopKeys) stopKeys();
    const onKey = (event) => {
      if (event.target.closest && event.target.closest("input, textarea, select")) return;
      const key = event.key;
      if ((event.ctrlKey || event.metaKey) && key === "z") return event.preventDefault(), this.undo();
      if ((event.ctrlKey || event.metaKey) && key === "s") return event.preventDefault(), this.save();
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      if (/^[1-9]$/.test(key) && this.classes[Number(key) - 1]) return this.setClass(this.classes[Number(key) - 1].id);
      const actions = {
        n: () => this.neighbour(1),
        p: () => this.neighbour(-1),
        v: () => this.setTool("select"),
        b: () => this.setTool("box"),
        g: () => this.setTool("polygon"),
        h: () => this.setTool("hole"),
        Delete: () => this.deleteSelected(),
        Backspace: () => this.deleteSelected(),
        Enter: () => (this.tool === "polygon" || this.tool === "hole") && this.finishPolygon(),
        Escape: () => (this.draft ? this.setTool(this.tool) : this.select(null)),
      };
      if (actions[key]) {
        event.preventDefault();
        actions[key]();
      }
    };
    document.addEventListener("keydown", onKey);
    const onHash = () => {
      document.removeEventListener("keydown", onKey);
      window.removeEventListener("hashchange", onHash);
      stopKeys = null;
    };
    window.addEventListener("hashchange", onHash);
    stopKeys = onHash;
  }

  // The sample before or after this one in the grid it was opened from (same filter, same order).
  async neighbour(step) {
    const index = Number(this.query.get("i") || 0) + step;
    if (index < 0) return message("This is the first sample.", { kind: "info" });
    const filter = filterFromQuery(this.query);
    const page = await attempt(() => post(`${this.ctx.base}/samples/search`, { ...filter, limit: 1, offset: index }));
    if (!page) return;
    if (!page.items.length) return message("This is the last sample.", { kind: "info" });
    location.hash = `#/p/${this.ctx.project.id}/s/${page.items[0].id}?i=${index}&${filterQuery(filter)}`;
  }

  // -- tags, attributes ---------------------------------------------------------------------------------

  tagsPanel() {
    this.tagsBox = h("div#tags");
    this.redrawTags();
    return h("section", {}, h("h2", {}, "Image tags"), this.tagsBox);
  }

  redrawTags() {
    const groups = this.ctx.schema.tag_groups.filter((g) => !g.archived);
    this.tagsBox.replaceChildren(
      ...(groups.length
        ? groups.map((group) =>
            h(
              "div.tag-group",
              {},
              h("strong", {}, group.name),
              group.tags.map((tag) =>
                h(
                  "label",
                  {},
                  h("input", {
                    type: group.selection === "SINGLE" ? "radio" : "checkbox",
                    name: `tag-${group.id}`,
                    checked: this.tags.has(tag.id),
                    onchange: (e) =>
                      this.change(() => {
                        if (group.selection === "SINGLE") group.tags.forEach((t) => this.tags.delete(t.id));
                        if (e.target.checked) this.tags.add(tag.id);
                        else this.tags.delete(tag.id);
                      }),
                  }),
                  tag.name,
                ),
              ),
            ),
          )
        : [h("p.muted", {}, "No tag groups in the schema.")]),
    );
  }

  attributesPanel() {
    this.attributesBox = h("div#attributes");
    this.redrawAttributes();
    return h("section", {}, h("h2", {}, "Attributes"), this.attributesBox);
  }

  // The image's attributes, then the selected object's (those of the schema that apply to its class).
  redrawAttributes() {
    const active = this.ctx.schema.attributes.filter((a) => !a.archived);
    const rows = (attributes, values, update) =>
      attributes.map((a) => h("label.attribute", {}, h("span", {}, a.name), attributeInput(a, values[a.id], (v) => this.change(() => update(a.id, v)))));
    const setValue = (target) => (id, value) => {
      if (value === undefined) delete target[id];
      else target[id] = value;
    };
    const forImage = active.filter((a) => a.subject === "IMAGE");
    const o = this.selected;
    const forObject = o ? active.filter((a) => a.subject === "LABEL" && (!a.class_ids.length || a.class_ids.includes(o.class_id))) : [];
    this.attributesBox.replaceChildren(
      h("h3", {}, "image"),
      ...(forImage.length ? rows(forImage, this.imageAttributes, setValue(this.imageAttributes)) : [h("p.muted", {}, "none in the schema")]),
      h("h3", {}, o ? "selected object" : "select an object for its attributes"),
      ...(o ? rows(forObject, o.attributes, setValue(o.attributes)) : []),
    );
  }

  // -- saving -------------------------------------------------------------------------------------------

  async save() {
    const body = {
      status: SAVED_AS_LABELED.has(this.label.status) ? "LABELED" : this.label.status,
      objects: this.objects.map((o) => Object.fromEntries(OBJECT_INPUT.filter((k) => o[k] != null).map((k) => [k, o[k]]))),
      tag_class_ids: [...this.tags],
      attributes: this.imageAttributes,
      version: this.label.version,
    };
    try {
      this.label = await api("PUT", `${this.ctx.base}/samples/${this.sample.id}/labels/${GROUND_TRUTH}`, body);
    } catch (error) {
      if (error instanceof ApiError && error.status === 409) {
        return message(
          `Conflict: someone else saved this label after you opened it (you had version ${body.version}). ` +
            "Reload to see their changes; your unsaved edits here will be lost.",
          { actions: [h("button#reload", { onclick: () => (clearMessage(), samplePage(this.ctx.project.id, this.sample.id, this.query)) }, "Reload")] },
        );
      }
      return message(error.message);
    }
    this.objects = this.label.objects.map((o) => ({ ...o }));
    this.imageAttributes = { ...this.label.attributes };
    this.selected = null;
    this.dirty = false;
    this.redrawAttributes();
    this.status.textContent = this.label.status;
    this.version.textContent = `v${this.label.version}`;
    const fromQueue = this.query.get("queue") === "label";
    message(`Saved (label version ${this.label.version}).`, {
      kind: "info",
      actions: fromQueue ? [h("button#label-next", { onclick: () => nextFromQueue(this.ctx.project.id, "label") }, "Next to label")] : [],
    });
    this.draw();
  }
}

// The sample's issues and their comments; `reload()` on the section shows new ones.
// An input for one attribute of the schema: its `value` now; `set(value)` on a change, undefined to clear.
function attributeInput(attribute, value, set) {
  const name = `attr-${attribute.name}`;
  const choices = attribute.values.filter((v) => !v.archived);
  const isChosen = (v, chosen) => chosen.includes(v.id) || chosen.includes(v.value);
  if (attribute.type === "SELECTION") {
    return h(
      "select",
      { name, onchange: (e) => set(e.target.value || undefined) },
      h("option", { value: "" }, "–"),
      choices.map((v) => h("option", { value: v.id, selected: isChosen(v, [value]) }, v.value)),
    );
  }
  if (attribute.type === "MULTIPLE_SELECTION") {
    const chosen = choices.filter((v) => isChosen(v, value || [])).map((v) => v.id);
    return h(
      "span",
      {},
      choices.map((v) =>
        h(
          "label",
          {},
          h("input", {
            type: "checkbox",
            name,
            checked: chosen.includes(v.id),
            onchange: (e) => {
              const next = e.target.checked ? [...chosen, v.id] : chosen.filter((id) => id !== v.id);
              set(next.length ? next : undefined);
            },
          }),
          v.value,
        ),
      ),
    );
  }
  if (attribute.type === "BOOL") return h("input", { type: "checkbox", name, checked: value === true, onchange: (e) => set(e.target.checked) });
  if (attribute.type === "INT" || attribute.type === "FLOAT") {
    return h("input", {
      type: "number",
      name,
      step: attribute.type === "INT" ? 1 : "any",
      min: attribute.min,
      max: attribute.max,
      value: value ?? "",
      onchange: (e) => set(e.target.value === "" ? undefined : Number(e.target.value)),
    });
  }
  return h("input", { name, value: value ?? "", onchange: (e) => set(e.target.value || undefined) });
}

function issuesPanel(ctx, sample) {
  const box = h("div#issues");
  const load = () =>
    attempt(async () => {
      const issues = (await get(`${ctx.base}/issues?sample_id=${sample.id}&limit=100`)).items;
      box.replaceChildren(
        ...issues.map((issue) =>
          h(
            "div.issue",
            { dataset: { issueId: issue.id } },
            h("div", {}, h("strong", {}, issue.status), " ", issue.description),
            issue.comments.map((c) => h("div.comment", {}, c.text)),
            commentForm((text) => post(`${ctx.base}/issues/${issue.id}/comments`, { text }).then(load), "Comment"),
          ),
        ),
        commentForm((text) => post(`${ctx.base}/samples/${sample.id}/issues`, { description: text, labelset: GROUND_TRUTH }).then(load), "Open issue"),
      );
    });
  load();
  const section = h("section", {}, h("h2", {}, "Issues"), box);
  section.reload = load;
  return section;
}

function commentForm(send, label) {
  const text = h("input", { placeholder: label === "Comment" ? "reply…" : "describe a problem…" });
  return h(
    "form.inline",
    { onsubmit: (e) => (e.preventDefault(), text.value.trim() && attempt(() => send(text.value.trim()))) },
    text,
    h("button", { type: "submit" }, label),
  );
}

const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
const round = (v) => Math.round(v * 10) / 10;
const normalised = ([x1, y1, x2, y2]) => [Math.min(x1, x2), Math.min(y1, y2), Math.max(x1, x2), Math.max(y1, y2)];

// The points of a shape that can be dragged one by one, in order (a keypoint's visibility follows its x, y;
// one not labelled, visibility 0, gets no handle).
const VERTICES = { polygon: "points", polyline: "points", keypoints: "keypoints" };
function vertices(shape) {
  if (shape.type === "point") return [shape.point];
  return VERTICES[shape.type] ? shape[VERTICES[shape.type]] : [];
}

function withVertex(shape, index, [x, y]) {
  const moved = (q) => [x, y, ...q.slice(2)];
  if (shape.type === "point") return { ...shape, point: moved(shape.point) };
  const field = VERTICES[shape.type];
  return { ...shape, [field]: shape[field].map((q, i) => (i === index ? moved(q) : q)) };
}

function translated(shape, dx, dy) {
  const move = ([x, y, ...rest]) => [round(x + dx), round(y + dy), ...rest];
  if (shape.type === "bbox") {
    const [x1, y1, x2, y2] = shape.box;
    return { ...shape, box: [x1 + dx, y1 + dy, x2 + dx, y2 + dy].map(round) };
  }
  if (shape.type === "polygon") return { ...shape, points: shape.points.map(move), holes: (shape.holes || []).map((r) => r.map(move)) };
  if (shape.type === "polyline") return { ...shape, points: shape.points.map(move) };
  if (shape.type === "point") return { ...shape, point: move(shape.point) };
  if (shape.type === "keypoints") return { ...shape, keypoints: shape.keypoints.map(move) };
  return shape; // masks stay where they are
}
