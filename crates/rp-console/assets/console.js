// rp console: the live parts, with no library and no build step.
//
// An element with data-refresh="URL" is refreshed from URL (an HTML fragment) every
// data-every milliseconds (default 1500) until the fragment holds an element marked
// data-final (the payout is settled, the batch is done). Nothing else runs here: every
// action is a plain form, so the console works with JavaScript off (reload to refresh).
(function () {
  "use strict";
  function watch(element) {
    var url = element.getAttribute("data-refresh");
    var every = parseInt(element.getAttribute("data-every") || "1500", 10);
    function tick() {
      if (element.querySelector("[data-final]")) { return; }
      fetch(url, { credentials: "same-origin", headers: { "x-fragment": "1" } })
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.text();
        })
        .then(function (html) {
          element.innerHTML = html;
          element.removeAttribute("data-stale");
          setTimeout(tick, every);
        })
        .catch(function () {
          element.setAttribute("data-stale", "1");
          setTimeout(tick, every * 2);
        });
    }
    setTimeout(tick, every);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-refresh]").forEach(watch);
  });
})();
