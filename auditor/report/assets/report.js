// kp-audit HTML report: the services table, rendered page by page from the embedded JSON,
// with a search box. Node strings only ever reach the page through textContent.
(function () {
  "use strict";
  var PAGE = 50;
  var holder = document.getElementById("services-data");
  var table = document.getElementById("services-table");
  if (!holder || !table) { return; }
  var data = JSON.parse(holder.textContent);
  var rows = data.rows;
  var modes = data.modes;
  var haystack = rows.map(function (r) {
    var parts = [r.name, r.protocol, r.family];
    modes.forEach(function (m) { parts = parts.concat(r.sides[m] || []); });
    return parts.join("\n").toLowerCase();
  });
  var body = table.querySelector("tbody");
  var search = document.getElementById("services-search");
  var changedOnly = document.getElementById("services-changed");
  var prev = document.getElementById("services-prev");
  var next = document.getElementById("services-next");
  var status = document.getElementById("services-status");
  var matches = [];
  var page = 0;

  function cell(tr, lines, cls) {
    var td = document.createElement("td");
    if (cls) { td.className = cls; }
    (lines || []).forEach(function (text) {
      var span = document.createElement("span");
      span.className = "line mono";
      span.textContent = text;
      td.appendChild(span);
    });
    tr.appendChild(td);
  }

  function render() {
    while (body.firstChild) { body.removeChild(body.firstChild); }
    var start = page * PAGE;
    var shown = matches.slice(start, start + PAGE);
    shown.forEach(function (i) {
      var r = rows[i];
      var tr = document.createElement("tr");
      if (r.changed) { tr.className = "row-changed"; }
      cell(tr, [r.name]);
      cell(tr, [r.protocol + " / " + r.family]);
      modes.forEach(function (m, k) { cell(tr, r.sides[m] || ["(absent)"], k === 1 ? "nft" : ""); });
      body.appendChild(tr);
    });
    var last = Math.min(start + PAGE, matches.length);
    status.textContent = matches.length === 0
      ? "no Service port matches (" + rows.length + " in all)"
      : "showing " + (start + 1) + "\u2013" + last + " of " + matches.length +
        (matches.length === rows.length ? "" : " matching (" + rows.length + " in all)");
    prev.disabled = page === 0;
    next.disabled = last >= matches.length;
  }

  function filter() {
    var words = search.value.toLowerCase().split(/\s+/).filter(function (w) { return w.length > 0; });
    var onlyChanged = changedOnly && changedOnly.checked;
    matches = [];
    for (var i = 0; i < rows.length; i++) {
      if (onlyChanged && !rows[i].changed) { continue; }
      var text = haystack[i];
      var ok = true;
      for (var k = 0; k < words.length; k++) {
        if (text.indexOf(words[k]) < 0) { ok = false; break; }
      }
      if (ok) { matches.push(i); }
    }
    page = 0;
    render();
  }

  search.addEventListener("input", filter);
  if (changedOnly) { changedOnly.addEventListener("change", filter); }
  prev.addEventListener("click", function () { if (page > 0) { page -= 1; render(); } });
  next.addEventListener("click", function () { if ((page + 1) * PAGE < matches.length) { page += 1; render(); } });
  filter();
}());
