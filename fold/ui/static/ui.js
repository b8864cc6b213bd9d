// Fold's own script for every page: the CSRF header on htmx requests, the tree filter.
"use strict";

(function () {
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.getAttribute("content") : "";

  document.addEventListener("htmx:configRequest", function (event) {
    if (csrf) event.detail.headers["X-CSRF-Token"] = csrf;
  });

  function filterTree(input) {
    const term = input.value.trim().toLowerCase();
    const items = document.querySelectorAll("[data-tree] li[data-name]");
    items.forEach(function (li) {
      const own = li.getAttribute("data-name").indexOf(term) !== -1;
      const inner = Array.from(li.querySelectorAll("li[data-name]")).some(function (c) {
        return c.getAttribute("data-name").indexOf(term) !== -1;
      });
      li.hidden = term !== "" && !own && !inner;
      const details = li.querySelector(":scope > details");
      if (details && term !== "" && inner) details.open = true;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    const input = document.querySelector("[data-tree-filter]");
    if (input) input.addEventListener("input", function () { filterTree(input); });
  });
})();
