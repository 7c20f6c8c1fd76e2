// Live updates: the board's counts and a record page's state, by Server-Sent Events.
// Served by the workspace itself; no library, no network beyond this site.
(function () {
  "use strict";
  function connect(url, handlers, note) {
    if (!window.EventSource) { if (note) note.textContent = "Live updates need a newer browser."; return; }
    var source = new EventSource(url);
    Object.keys(handlers).forEach(function (name) {
      source.addEventListener(name, function (e) { handlers[name](JSON.parse(e.data)); });
    });
    source.onerror = function () { if (note) note.textContent = "Live updates paused; retrying."; };
    source.onopen = function () { if (note) note.textContent = "Live updates on."; };
  }
  function setText(selector, value) {
    var node = document.querySelector(selector);
    if (!node || value === undefined || value === null) return;
    var link = node.querySelector("a");
    (link || node).textContent = String(value);
  }
  function setCell(selector, n, state, group) {
    // A count links to the records behind it; a zero count links nowhere.
    var node = document.querySelector(selector);
    if (!node || n === undefined || n === null) return;
    if (!n) { node.textContent = "0"; return; }
    var link = node.querySelector("a") || document.createElement("a");
    link.href = "/states/" + encodeURIComponent(state) + (group ? "?group=" + encodeURIComponent(group) : "");
    link.setAttribute("aria-label", n + " " + state.replace("_", " ") + " in " + (group || "all groups"));
    link.textContent = String(n);
    if (!link.parentNode) { node.textContent = ""; node.appendChild(link); }
  }
  function setDestinationCell(key, n) {
    // A destination's count links to its list: the state's records for that country, or its archived list;
    // a record type's (rtype|<C, I or V>|<state>) to the state's records of that type.
    var node = document.querySelector('[data-cell="' + CSS.escape(key) + '"]');
    if (!node) return !n;
    var parts = key.split("|");
    if (!n || node.hasAttribute("data-plain")) { node.textContent = String(n || 0); return true; }
    var link = node.querySelector("a") || document.createElement("a");
    var state = parts[0] === "delivery" ? "archived" : parts[2];
    var filter = parts[0] === "rtype" ? "?record_type=" : "?country=";
    link.href = "/states/" + encodeURIComponent(state) + filter + encodeURIComponent(parts[1]);
    var column = node.closest("table").querySelectorAll("thead th")[node.cellIndex];
    var row = node.parentNode.querySelector("th");
    link.setAttribute("aria-label", n + " " + (column ? column.textContent.toLowerCase() : parts[2]) +
      (parts[0] === "rtype" ? ": " : " for ") + (row ? row.textContent : parts[1]));
    link.textContent = String(n);
    if (!link.parentNode) { node.textContent = ""; node.appendChild(link); }
    return true;
  }
  function updateBoard(board) {
    var table = document.querySelector("[data-board-table]");
    var known = {};
    document.querySelectorAll("tr[data-group]").forEach(function (row) { known[row.getAttribute("data-group")] = true; });
    var unknown = board.groups.some(function (g) { return !known[g.name]; });
    var cells = board.destinations || {};
    var missing = Object.keys(cells).some(function (key) { return !setDestinationCell(key, cells[key]); });
    // The update names only counts above zero: a cell it no longer names has dropped to zero.
    document.querySelectorAll('[data-cell^="country|"], [data-cell^="delivery|"], [data-cell^="rtype|"]')
      .forEach(function (node) {
        var key = node.getAttribute("data-cell");
        if (!Object.prototype.hasOwnProperty.call(cells, key)) setDestinationCell(key, 0);
      });
    if (unknown || missing) { window.location.reload(); return; }
    board.groups.forEach(function (g) {
      board.states.forEach(function (s) { setCell('[data-cell="' + CSS.escape(g.name + "|" + s) + '"]', g.counts[s], s, g.name); });
    });
    board.states.forEach(function (s) { setCell('[data-cell="' + CSS.escape("total|" + s) + '"]', board.totals[s], s, null); });
    setText('[data-count="total"]', board.total);
    setText('[data-count="archived_last_hour"]', board.archived_last_hour);
    setText('[data-count="archived_last_day"]', board.archived_last_day);
    Object.keys(board.open_findings_by_owner || {}).forEach(function (team) {
      setText('[data-count="findings-' + team + '"]', board.open_findings_by_owner[team]);
    });
    Object.keys(board.deliveries || {}).forEach(function (state) {
      setText('[data-count="delivery-' + state + '"]', board.deliveries[state]);
    });
    var asOf = document.querySelector('[data-count="as_of"]');
    if (asOf && board.as_of) {
      asOf.textContent = board.as_of_text;
      if (asOf.tagName === "TIME") asOf.setAttribute("datetime", board.as_of);
    }
    if (table) table.setAttribute("data-updated", String(Date.now()));
  }
  document.addEventListener("DOMContentLoaded", function () {
    var board = document.querySelector("[data-live-board]");
    if (board) connect("/live", { board: updateBoard }, board.querySelector("[data-live-state]"));
    var record = document.querySelector("[data-live-record]");
    if (record) {
      var vin = record.getAttribute("data-live-record");
      var note = record.querySelector("[data-live-state]");
      connect("/live?vin=" + encodeURIComponent(vin), {
        record: function (change) {
          var typing = Array.prototype.some.call(document.querySelectorAll("textarea"), function (t) {
            return t.value || t === document.activeElement;
          });
          var state = change.state.replace("_", " ");
          if (typing) { if (note) note.textContent = "This record changed (" + state + "); reload to see it."; return; }
          if (note) note.textContent = "This record changed (" + state + "); reloading.";
          window.setTimeout(function () { window.location.reload(); }, 800);
        }
      }, null);
    }
  });
})();
