// Emberwatch console: small progressive enhancements; every page works without this file.
// 1. The incident list refreshes itself when a new incident opens (polls /updates).
// 2. The draft reply gets a "Copy" button.
(function () {
  "use strict";
  var POLL_MS = 15000;

  function refreshIncidents() {
    var list = document.getElementById("incidents");
    if (!list || !window.fetch || !window.DOMParser) return;
    setInterval(function () {
      if (document.hidden) return;
      fetch("/updates", { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (!data || String(data.newest) === list.getAttribute("data-newest")) return null;
          return fetch(window.location.href, { credentials: "same-origin" })
            .then(function (r) { return r.ok ? r.text() : null; })
            .then(function (html) {
              if (!html) return;
              var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("incidents");
              if (!fresh) return;
              list.replaceWith(fresh);
              list = fresh;
              document.title = "• " + document.title.replace(/^• /, "");
            });
        })
        .catch(function () { /* offline for a moment: try again next time */ });
    }, POLL_MS);
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) document.title = document.title.replace(/^• /, "");
    });
  }

  function copyButton() {
    var draft = document.getElementById("draft-reply");
    if (!draft || !navigator.clipboard) return;
    var button = document.createElement("button");
    button.type = "button";
    button.textContent = "Copy";
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(draft.value).then(function () {
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = "Copy"; }, 2000);
      });
    });
    draft.insertAdjacentElement("afterend", button);
  }

  document.addEventListener("DOMContentLoaded", function () {
    refreshIncidents();
    copyButton();
  });
})();
