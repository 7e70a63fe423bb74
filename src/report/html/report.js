// heapdiag analyze: the report's only script (inline in the page; no network). Tables sort when
// their header is clicked (numbers by the cell's data-v) and filter by the text typed above them.
(function () {
  "use strict";
  function value(cell) {
    var v = cell.getAttribute("data-v");
    return v === null ? cell.textContent.trim().toLowerCase() : parseFloat(v);
  }
  function sort(th) {
    var table = th.closest("table"), body = table.tBodies[0];
    var index = Array.prototype.indexOf.call(th.parentNode.children, th);
    var asc = !th.classList.contains("sorted-asc");
    Array.prototype.forEach.call(th.parentNode.children, function (h) {
      h.classList.remove("sorted-asc", "sorted-desc");
    });
    th.classList.add(asc ? "sorted-asc" : "sorted-desc");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = value(a.cells[index]), y = value(b.cells[index]);
      var c = x < y ? -1 : x > y ? 1 : 0;
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  function filter(input) {
    var table = document.getElementById(input.getAttribute("data-table"));
    var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
      var text = r.textContent.toLowerCase();
      r.style.display = words.every(function (w) { return text.indexOf(w) >= 0; }) ? "" : "none";
    });
  }
  document.querySelectorAll("table.sortable th").forEach(function (th) {
    th.addEventListener("click", function () { sort(th); });
  });
  document.querySelectorAll("input.filter").forEach(function (input) {
    input.addEventListener("input", function () { filter(input); });
  });
  // `report.html#selftest` (used by heapdiag's browser test): sort the first sortable table both
  // ways, filter it, and count the flamegraphs' frames; the verdict goes to <body data-selftest>.
  function selftest() {
    var problems = [];
    var table = document.querySelector("table.sortable");
    if (table && table.tBodies[0].rows.length > 1) {
      var th = table.tHead.rows[0].cells[table.getAttribute("data-num-col") | 0];
      var col = Array.prototype.indexOf.call(th.parentNode.children, th);
      var read = function () {
        return Array.prototype.map.call(table.tBodies[0].rows, function (r) { return value(r.cells[col]); });
      };
      th.click();
      var up = read();
      th.click();
      var down = read();
      for (var i = 1; i < up.length; i++) {
        if (up[i - 1] > up[i]) { problems.push("ascending sort out of order"); break; }
      }
      for (var j = 1; j < down.length; j++) {
        if (down[j - 1] < down[j]) { problems.push("descending sort out of order"); break; }
      }
      var input = document.querySelector('input.filter[data-table="' + table.id + '"]');
      if (input) {
        input.value = "\u0001no such text\u0001";
        input.dispatchEvent(new Event("input"));
        var shown = Array.prototype.filter.call(table.tBodies[0].rows, function (r) { return r.style.display !== "none"; });
        if (shown.length !== 0) problems.push("filter left rows shown");
        input.value = "";
        input.dispatchEvent(new Event("input"));
      }
    } else {
      problems.push("no sortable table with rows");
    }
    var frames = 0;
    document.querySelectorAll("iframe.flame").forEach(function (f) {
      if (f.contentDocument) frames += f.contentDocument.querySelectorAll("g rect").length;
    });
    document.body.setAttribute("data-flame-rects", String(frames));
    document.body.setAttribute("data-selftest", problems.length ? "fail: " + problems.join("; ") : "ok");
  }
  if (location.hash === "#selftest") window.addEventListener("load", selftest);
  // When the page (its flamegraphs included) finished loading, in ms from the start of the
  // navigation: scripts/bench.sh reads it from <body data-load-ms>.
  window.addEventListener("load", function () {
    document.body.setAttribute("data-load-ms", String(Math.round(performance.now())));
  });
})();
