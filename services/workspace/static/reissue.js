// A re-issue job's page follows its counts: the progress JSON read every two seconds until it is finished.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var section = document.querySelector("[data-reissue-job]");
    if (!section || !window.fetch) return;
    var job = section.getAttribute("data-reissue-job");
    var words = {
      planning: "Planning: reading the archived certificates.",
      publishing: "Publishing the corrected records.",
      done: "All records published; waiting for validation, review, signing and the archive.",
      finished: "Finished: every planned certificate was re-issued and archived."
    };
    function show(p) {
      ["expected", "planned", "published", "archived", "skipped"].forEach(function (name) {
        var cell = section.querySelector('[data-reissue="' + name + '"]');
        if (cell) cell.textContent = p[name] === null ? "–" : String(p[name]);
      });
      var state = section.querySelector("[data-reissue-state]");
      var text = p.finished ? words.finished : words[p.state];
      if (state && text && state.textContent !== text) state.textContent = text;
      return p.finished;
    }
    function poll() {
      fetch("/reissue/" + encodeURIComponent(job) + "/progress", { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (p) { if (!p || !show(p)) window.setTimeout(poll, 2000); })
        .catch(function () { window.setTimeout(poll, 5000); });
    }
    window.setTimeout(poll, 2000);
  });
})();
