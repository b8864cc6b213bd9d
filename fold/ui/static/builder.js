// The rule builder: rows of field / operator / value, kept as the form's `rules` JSON,
// with the count, sentence and first records from the preview endpoint and every problem
// from the validate endpoint shown beside its rule, as the rules change.
"use strict";

(function () {
  const SYSTEM_FIELDS = [
    { field: "display_value", type: "string", label: "Name (display value)" },
    { field: "created", type: "datetime", label: "Created" },
    { field: "last_updated", type: "datetime", label: "Last updated" },
    { field: "uid", type: "string", label: "uid" },
  ];
  const ORDERED = ["greater_than", "greater_than_or_equals", "less_than", "less_than_or_equals"];
  const OPERATORS = {
    string: ["equals", "exact", "not_equal_to", "starts_with", "starts_with_case_insensitive",
      "ends_with", "or_list", "none_of"].concat(ORDERED),
    number: ["equals", "not_equal_to"].concat(ORDERED, ["or_list", "none_of"]),
    date: ["equals", "not_equal_to"].concat(ORDERED, ["or_list", "none_of"]),
    datetime: ["equals", "not_equal_to"].concat(ORDERED),
    boolean: ["equals", "not_equal_to"],
    list: ["equals", "and_list", "or_list", "none_of"],
    geo: ["near"],
    uri: ["equals", "not_equal_to", "or_list", "none_of"],
    object: ["equals", "not_equal_to"],
    segment: ["or_list", "and_list", "none_of"],
    raw: ["raw"],
  };
  const LABELS = {
    equals: "equals", exact: "is exactly", not_equal_to: "is not",
    starts_with: "starts with", starts_with_case_insensitive: "starts with (any case)",
    ends_with: "ends with",
    or_list: "is any of", and_list: "has all of", none_of: "is none of",
    greater_than: "is more than / after", greater_than_or_equals: "is at least / on or after",
    less_than: "is less than / before", less_than_or_equals: "is at most / on or before",
    near: "is within", raw: "matches the filter document",
  };
  const LISTS = ["or_list", "and_list", "none_of"];
  const RELATIVE = ["today", "today-30d", "today-90d", "today-1y", "today+30d", "now", "now-1wk"];

  const data = JSON.parse(document.getElementById("builder-data").textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  const form = document.getElementById("segment-form");
  const list = document.getElementById("rules");
  const rulesInput = document.getElementById("rules-json");
  const typeSelect = document.getElementById("segment_type");
  const resourceSelect = document.getElementById("resource_type");
  const preview = document.querySelector(".preview");
  let fields = [];
  let sequence = 0;
  let timer = null;
  let uid = 0;

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(function ([k, v]) { node.setAttribute(k, v); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function fieldType(name) {
    if (name === "segment") return "segment";
    if (name === "") return "raw";
    const found = fields.find(function (f) { return f.field === name; });
    return found ? found.type : "string";
  }

  function api(path, body) {
    return fetch("/segments/v2/" + encodeURIComponent(data.bucket) + path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
    }).then(function (r) { return r.json().then(function (j) { return { status: r.status, body: j }; }); });
  }

  function loadFields() {
    const type = resourceSelect.value === "contact" ? "person" : resourceSelect.value;
    return fetch("/api/v2/" + encodeURIComponent(data.bucket) + "/" + encodeURIComponent(type) + "/fields",
      { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : { fields: [] }; })
      .then(function (schema) {
        fields = SYSTEM_FIELDS.concat(schema.fields.map(function (f) {
          return { field: f.field, type: f.type, label: f.label };
        }));
        const datalist = document.getElementById("field-names") || el("datalist", { id: "field-names" });
        datalist.textContent = "";
        fields.forEach(function (f) { datalist.appendChild(el("option", { value: f.field }, f.label)); });
        datalist.appendChild(el("option", { value: "segment" }, "Membership of other segments"));
        if (!datalist.parentNode) document.body.appendChild(datalist);
      });
  }

  function valueInput(row, type, operator, value) {
    const box = row.querySelector(".value");
    box.textContent = "";
    const id = "value-" + row.dataset.n;
    box.appendChild(el("label", { for: id, class: "visually-hidden" }, "Value"));
    let input;
    if (type === "raw") {
      input = el("textarea", { id: id, rows: "3", class: "json", spellcheck: "false",
        placeholder: '{"tags": {"$all": ["donor"]}}' });
      input.value = value === undefined ? "" : (typeof value === "string" ? value : JSON.stringify(value));
    } else if (type === "segment") {
      input = el("select", { id: id, multiple: "", size: "4" });
      const chosen = Array.isArray(value) ? value : [];
      data.segments.forEach(function (s) {
        const option = el("option", { value: s.uri }, s.name + " (" + s.type + ")");
        if (chosen.indexOf(s.uri) !== -1) option.selected = true;
        input.appendChild(option);
      });
    } else if (LISTS.indexOf(operator) !== -1) {
      input = el("input", { id: id, type: "text", placeholder: "one, two, three" });
      input.value = Array.isArray(value) ? value.join(", ") : (value || "");
    } else if (type === "boolean") {
      input = el("select", { id: id });
      ["true", "false"].forEach(function (v) { input.appendChild(el("option", { value: v }, v)); });
      input.value = String(value === undefined ? "true" : value);
    } else if (type === "number") {
      input = el("input", { id: id, type: "number", step: "any" });
      input.value = value === undefined ? "" : value;
    } else if (type === "date" || type === "datetime") {
      input = el("input", { id: id, type: "text", list: "relative-dates",
        placeholder: "2024-01-31 or today-30d" });
      input.value = value === undefined ? "" : value;
      const picker = el("input", { type: "date", "aria-label": "Pick a date" });
      picker.addEventListener("change", function () { input.value = picker.value; changed(); });
      box.appendChild(input);
      box.appendChild(picker);
      return input;
    } else if (type === "geo") {
      input = el("input", { id: id, type: "text", placeholder: "51.5,-0.12,5 or SW1A 1AA,5mi" });
      if (value && typeof value === "object") {
        const unit = value.unit === "mi" && !/mi$/.test(String(value.distance)) ? "mi" : "";
        value = [value.postcode || [value.lat, value.lng].join(","), value.distance + unit].join(",");
      }
      input.value = value === undefined ? "" : value;
    } else {
      input = el("input", { id: id, type: "text" });
      input.value = value === undefined ? "" : value;
    }
    box.appendChild(input);
    return input;
  }

  function operatorOptions(row, type, chosen) {
    const select = row.querySelector(".operator select");
    const ops = OPERATORS[type] || OPERATORS.string;
    select.textContent = "";
    ops.forEach(function (op) { select.appendChild(el("option", { value: op }, LABELS[op] || op)); });
    select.value = ops.indexOf(chosen) !== -1 ? chosen : ops[0];
  }

  function addRow(rule) {
    const n = ++uid;
    const row = el("li", { class: "rule" });
    row.dataset.n = String(n);
    const fieldBox = el("div", { class: "field" });
    fieldBox.appendChild(el("label", { for: "field-" + n }, "Field"));
    const fieldInput = el("input", { id: "field-" + n, list: "field-names", autocomplete: "off",
      placeholder: "search fields" });
    fieldInput.value = rule.operator === "raw" ? "" : (rule.field || "");
    fieldBox.appendChild(fieldInput);
    const rawToggle = el("label", { class: "raw-toggle" });
    const rawBox = el("input", { type: "checkbox" });
    rawBox.checked = rule.operator === "raw";
    rawToggle.appendChild(rawBox);
    rawToggle.appendChild(document.createTextNode(" JSON filter"));
    fieldBox.appendChild(rawToggle);
    const opBox = el("div", { class: "operator" });
    opBox.appendChild(el("label", { for: "op-" + n }, "Operator"));
    opBox.appendChild(el("select", { id: "op-" + n }));
    const valueBox = el("div", { class: "value" });
    const remove = el("button", { type: "button", class: "remove", "aria-label": "Remove rule " + n }, "Remove");
    const problem = el("p", { class: "problem", "aria-live": "polite" });
    row.append(fieldBox, opBox, valueBox, remove, problem);
    list.appendChild(row);

    function retype(keepValue) {
      const type = rawBox.checked ? "raw" : fieldType(fieldInput.value.trim());
      fieldInput.disabled = rawBox.checked;
      operatorOptions(row, type, rule.operator);
      const input = valueInput(row, type, row.querySelector(".operator select").value,
        keepValue ? rule.value : undefined);
      input.addEventListener("input", changed);
      input.addEventListener("change", changed);
    }
    fieldInput.addEventListener("change", function () { retype(false); changed(); });
    fieldInput.addEventListener("input", function () {
      if (fields.some(function (f) { return f.field === fieldInput.value.trim(); }) || fieldInput.value === "segment") {
        retype(false);
      }
      changed();
    });
    rawBox.addEventListener("change", function () { retype(false); changed(); });
    row.querySelector(".operator select").addEventListener("change", function (e) {
      rule.operator = e.target.value;
      const type = rawBox.checked ? "raw" : fieldType(fieldInput.value.trim());
      const input = valueInput(row, type, e.target.value, undefined);
      input.addEventListener("input", changed);
      input.addEventListener("change", changed);
      changed();
    });
    remove.addEventListener("click", function () { row.remove(); changed(); });
    retype(true);
    return row;
  }

  // A rule the builder has no editor for (a related-record rule, which holds a rule set of
  // its own): shown as its JSON and kept exactly as it is, or removed whole.
  function keptRow(rule) {
    const n = ++uid;
    const row = el("li", { class: "rule kept" });
    row.dataset.n = String(n);
    row.keptRule = rule;
    const text = el("p", {}, "A " + (rule.operator === "related" ? "related-record" : rule.operator) +
      " rule, kept as it is (change it through the API or as a JSON filter): ");
    text.appendChild(el("code", { "data-kept": "" }, JSON.stringify(rule)));
    const remove = el("button", { type: "button", class: "remove", "aria-label": "Remove rule " + n }, "Remove");
    remove.addEventListener("click", function () { row.remove(); changed(); });
    row.append(text, remove, el("p", { class: "problem", "aria-live": "polite" }));
    list.appendChild(row);
    return row;
  }

  function readRow(row) {
    if (row.keptRule) return row.keptRule;
    const raw = row.querySelector(".raw-toggle input").checked;
    const field = raw ? "" : row.querySelector(".field input").value.trim();
    const operator = row.querySelector(".operator select").value;
    const input = row.querySelector(".value select, .value textarea, .value input:not([type=date])");
    const type = raw ? "raw" : fieldType(field);
    let value;
    row.classList.remove("invalid");
    if (type === "raw") {
      try {
        value = JSON.parse(input.value || "{}");
        row.querySelector(".problem").textContent = "";
      } catch (err) {
        row.classList.add("invalid");
        row.querySelector(".problem").textContent = "Not valid JSON yet: " + err.message;
        value = input.value;
      }
    } else if (type === "segment") {
      value = Array.from(input.selectedOptions).map(function (o) { return o.value; });
    } else if (LISTS.indexOf(operator) !== -1) {
      value = input.value.split(",").map(function (v) { return v.trim(); }).filter(Boolean);
    } else {
      value = input.value;
    }
    return { field: field, operator: operator, value: value };
  }

  function definition(extra) {
    const rows = Array.from(list.querySelectorAll("li.rule"));
    const rules = rows.map(readRow);
    const kind = typeSelect.value;
    const body = {
      segment_type: kind,
      resource_type: resourceSelect.value,
      parent_segment: document.getElementById("parent_segment").value || null,
      rules: kind === "dynamic" || kind === "hybrid" ? rules : [],
      uris_include: kind === "static" || kind === "hybrid" ? lines("uris_include") : [],
      uris_exclude: kind === "static" || kind === "hybrid" ? lines("uris_exclude") : [],
    };
    return Object.assign(body, extra || {});
  }

  function lines(id) {
    return document.getElementById(id).value.split(/[\n,]/).map(function (v) { return v.trim(); }).filter(Boolean);
  }

  function showKind() {
    const kind = typeSelect.value;
    document.getElementById("rules-box").hidden = !(kind === "dynamic" || kind === "hybrid");
    document.getElementById("lists-box").hidden = !(kind === "static" || kind === "hybrid");
  }

  function changed() {
    rulesInput.value = JSON.stringify(definition().rules);
    preview.dataset.state = "pending";
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  }

  function refresh() {
    const mine = ++sequence;
    // validate takes a definition only; preview also a page size.
    const body = definition({});
    const rows = Array.from(list.querySelectorAll("li.rule"));
    const started = performance.now();
    Promise.all([api("/validate", body), api("/preview", definition({ page_size: 5 }))]).then(function ([checked, shown]) {
      if (mine !== sequence) return;
      const problems = document.getElementById("preview-problems");
      problems.textContent = "";
      rows.forEach(function (row) {
        if (!row.classList.contains("invalid")) row.querySelector(".problem").textContent = "";
      });
      const errors = checked.status === 200 ? checked.body.errors : [checked.body];
      (errors || []).forEach(function (p) {
        const match = /^rules\[(\d+)\]/.exec(p.param || "");
        if (match && rows[Number(match[1])]) {
          const row = rows[Number(match[1])];
          row.classList.add("invalid");
          row.querySelector(".problem").textContent = p.description;
        } else if (p.param !== "name") {
          problems.appendChild(el("li", {}, (p.param ? p.param + ": " : "") + p.description));
        }
      });
      const count = document.getElementById("preview-count");
      const records = document.getElementById("preview-records");
      records.textContent = "";
      if (shown.status === 200) {
        count.textContent = shown.body.count.toLocaleString("en");
        document.getElementById("preview-sentence").textContent = shown.body.description || "";
        document.getElementById("preview-time").textContent =
          "computed at " + shown.body.computed_at + " · " + Math.round(performance.now() - started) + " ms";
        shown.body.results.forEach(function (r) { records.appendChild(el("li", {}, r.display_value || r.uid)); });
      } else {
        count.textContent = "—";
        document.getElementById("preview-sentence").textContent = "";
      }
      preview.dataset.state = "ready";
    }).catch(function () {
      if (mine === sequence) preview.dataset.state = "ready";
    });
  }

  function lookup(term) {
    const results = document.getElementById("lookup-results");
    if (term.trim().length < 2) { results.textContent = ""; return; }
    api("/preview", { resource_type: resourceSelect.value, segment_type: "dynamic", rules: [], q: term, page_size: 8 })
      .then(function (answer) {
        results.textContent = "";
        if (answer.status !== 200) return;
        answer.body.results.forEach(function (r) {
          const li = el("li", {}, (r.display_value || r.uid) + " ");
          ["uris_include", "uris_exclude"].forEach(function (target) {
            const button = el("button", { type: "button" }, target === "uris_include" ? "Include" : "Exclude");
            button.setAttribute("aria-label", (target === "uris_include" ? "Include " : "Exclude ") + (r.display_value || r.uid));
            button.addEventListener("click", function () {
              const area = document.getElementById(target);
              const have = lines(target);
              if (have.indexOf(r.uri) === -1) area.value = have.concat([r.uri]).join("\n");
              changed();
            });
            li.appendChild(button);
          });
          results.appendChild(li);
        });
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    const relative = el("datalist", { id: "relative-dates" });
    RELATIVE.forEach(function (v) { relative.appendChild(el("option", { value: v })); });
    document.body.appendChild(relative);
    loadFields().then(function () {
      (data.rules || []).forEach(function (rule) {
        if (Object.prototype.hasOwnProperty.call(LABELS, rule.operator)) addRow(rule);
        else keptRow(rule);
      });
      showKind();
      changed();
    });
    document.getElementById("add-rule").addEventListener("click", function () {
      const row = addRow({ field: "", operator: "equals", value: "" });
      row.querySelector(".field input").focus();
      changed();
    });
    typeSelect.addEventListener("change", function () { showKind(); changed(); });
    resourceSelect.addEventListener("change", function () { loadFields().then(changed); });
    document.getElementById("parent_segment").addEventListener("change", changed);
    ["uris_include", "uris_exclude"].forEach(function (id) {
      document.getElementById(id).addEventListener("input", changed);
    });
    let lookupTimer = null;
    const lookupInput = document.getElementById("lookup");
    lookupInput.addEventListener("input", function () {
      clearTimeout(lookupTimer);
      lookupTimer = setTimeout(function () { lookup(lookupInput.value); }, 250);
    });
    form.addEventListener("submit", function () { rulesInput.value = JSON.stringify(definition().rules); });
  });
})();
