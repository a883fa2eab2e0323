// Live refresh of server-rendered fragments: an element with data-refresh-url has its
// content replaced by that URL's HTML every data-refresh-ms milliseconds. The server
// renders the fragment escaped; nothing here builds HTML from data.
(function () {
  "use strict";
  function start(element) {
    var url = element.getAttribute("data-refresh-url");
    var every = parseInt(element.getAttribute("data-refresh-ms"), 10);
    if (!url || !(every > 0)) { return; }
    var busy = false;
    window.setInterval(function () {
      if (busy || document.hidden) { return; }
      busy = true;
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (html !== null) {
            element.innerHTML = html;
            element.setAttribute("data-refreshed-at", String(Date.now()));
          }
        })
        .catch(function () { /* the next tick tries again */ })
        .then(function () { busy = false; });
    }, every);
  }
  document.addEventListener("DOMContentLoaded", function () {
    var elements = document.querySelectorAll("[data-refresh-url]");
    for (var i = 0; i < elements.length; i++) { start(elements[i]); }
  });
})();
