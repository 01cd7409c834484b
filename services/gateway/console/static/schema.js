// The label schema: add, rename, recolour and archive classes; add tag groups; see attributes and
// keypoint schemas. Every change is the schema's own REST route, so its rules (no orphaned labels) hold.

import { api, post } from "./api.js";
import { projectContext } from "./app.js";
import { attempt, h, show, ticket } from "./ui.js";

// proto/schema.py's AttributeType (tests/console/test_static.py keeps them the same).
const ATTRIBUTE_TYPES = ["SELECTION", "MULTIPLE_SELECTION", "TEXT", "INT", "FLOAT", "BOOL"];

export async function schemaPage(projectId) {
  const mine = ticket();
  const ctx = await projectContext(projectId, { fresh: true });
  const base = ctx.base;
  const reload = () => schemaPage(projectId);
  const { label_classes: classes, attributes, tag_groups: groups, keypoint_schemas: skeletons } = ctx.schema;
  const newClass = h("input", { name: "new-class", placeholder: "class name", required: true });
  const newGroup = h("input", { name: "new-group", placeholder: "tag group name", required: true });
  const newTags = h("input", { name: "new-group-tags", placeholder: "tags, comma separated", required: true });
  const attrName = h("input", { name: "new-attribute", placeholder: "attribute name", required: true });
  const attrType = h("select", { name: "new-attribute-type" }, ATTRIBUTE_TYPES.map((t) => h("option", {}, t)));
  const attrSubject = h("select", { name: "new-attribute-subject" }, h("option", { value: "LABEL" }, "on objects"), h("option", { value: "IMAGE" }, "on the image"));
  const attrValues = h("input", { name: "new-attribute-values", placeholder: "values, comma separated (selections)" });
  const submit = (action) => (e) => (e.preventDefault(), attempt(async () => (await action(), reload())));
  show(
    mine,
    h("h1", {}, `${ctx.project.name}: schema v${ctx.schema.version}`),
    h(
      "section.card",
      {},
      h("h2", {}, "Label classes"),
      h(
        "table#classes",
        {},
        h(
          "tbody",
          {},
          classes.filter((c) => !c.archived).map((c) => {
            const name = h("input", { value: c.name, name: "class-name" });
            const color = h("input", { type: "color", value: c.color, name: "class-color" });
            return h(
              "tr",
              { dataset: { classId: c.id } },
              h("td", {}, color),
              h("td", {}, name),
              h("td.muted", {}, c.kind),
              h("td", {}, h("button", { onclick: () => attempt(async () => (await api("PATCH", `${base}/label-classes/${c.id}`, { name: name.value, color: color.value, version: c.version }), reload())) }, "Save")),
              h("td", {}, h("button.danger", { onclick: () => attempt(async () => (await api("DELETE", `${base}/label-classes/${c.id}`), reload())) }, "Archive")),
            );
          }),
        ),
      ),
      h("form.inline", { onsubmit: submit(() => post(`${base}/label-classes`, { name: newClass.value.trim() })) }, newClass, h("button", { type: "submit" }, "Add class")),
    ),
    h(
      "section.card",
      {},
      h("h2", {}, "Tag groups"),
      h("ul", {}, groups.filter((g) => !g.archived).map((g) => h("li", {}, h("strong", {}, g.name), ` (${g.selection}): `, g.tags.map((t) => t.name).join(", ")))),
      h(
        "form.inline",
        {
          onsubmit: submit(() =>
            post(`${base}/tag-groups`, { name: newGroup.value.trim(), tags: newTags.value.split(",").map((t) => t.trim()).filter(Boolean).map((name) => ({ name })) }),
          ),
        },
        newGroup,
        newTags,
        h("button", { type: "submit" }, "Add tag group"),
      ),
    ),
    h(
      "section.card",
      {},
      h("h2", {}, "Attributes"),
      h(
        "ul#attribute-list",
        {},
        attributes
          .filter((a) => !a.archived)
          .map((a) =>
            h(
              "li",
              {},
              `${a.name}: ${a.type} on ${a.subject === "IMAGE" ? "the image" : "objects"}`,
              a.values.length ? ` (${a.values.filter((v) => !v.archived).map((v) => v.value).join(", ")})` : "",
              " ",
              h("button.danger", { onclick: () => attempt(async () => (await api("DELETE", `${base}/attributes/${a.id}`), reload())) }, "Archive"),
            ),
          ),
      ),
      h(
        "form.inline",
        {
          onsubmit: submit(() => {
            const values = attrValues.value.split(",").map((v) => v.trim()).filter(Boolean);
            return post(`${base}/attributes`, { name: attrName.value.trim(), type: attrType.value, subject: attrSubject.value, values });
          }),
        },
        attrName,
        attrType,
        attrSubject,
        attrValues,
        h("button", { type: "submit" }, "Add attribute"),
      ),
    ),
    h("section.card", {}, h("h2", {}, "Keypoint schemas"), h("ul", {}, skeletons.filter((k) => !k.archived).map((k) => h("li", {}, `${k.name}: ${k.keypoints.join(", ")}`)))),
  );
}
