// Live refresh: poll the registry's change marker about once a second; on a change, re-fetch the
// parts of the page that show jobs. Relative times ("in 4 min") tick between polls.
(function () {
  "use strict";
  var body = document.body;
  var root = body.getAttribute("data-root") || "";
  var marker = body.getAttribute("data-marker") || "";
  var job = body.getAttribute("data-job") || "";
  var stateUrl = root + "/api/state" + (job ? "?id=" + encodeURIComponent(job) : "");
  var skew = 0; // server time - browser time, seconds
  var offline = document.getElementById("offline");
  var busy = false;

  function relative(seconds) {
    var size = Math.abs(seconds), amount;
    if (size < 1) return "now";
    if (size < 60) amount = Math.round(size) + " s";
    else if (size < 3600) amount = Math.round(size / 60) + " min";
    else if (size < 172800) amount = Math.round(size / 3600) + " h";
    else amount = Math.round(size / 86400) + " days";
    return seconds >= 0 ? "in " + amount : amount + " ago";
  }

  function tick() {
    var now = Date.now() / 1000 + skew;
    var times = document.querySelectorAll("#rows time[data-epoch]");
    for (var i = 0; i < times.length; i++) {
      times[i].textContent = relative(parseFloat(times[i].getAttribute("data-epoch")) - now);
    }
  }

  function refresh(id) {
    var part = document.getElementById(id);
    if (!part) return Promise.resolve();
    var src = part.getAttribute("data-src");
    if (!src) return Promise.resolve();
    return fetch(src, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } }).then(function (r) {
      if (r.status === 404 && id === "job-live") {
        // Deleted elsewhere while this page was open: say so instead of showing it as it was.
        part.innerHTML = '<p class="banner bad" role="alert">This job was deleted. <a href="' + root + '/">Back to the jobs</a></p>';
        part.removeAttribute("data-src");
        return null;
      }
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.text();
    }).then(function (html) {
      if (html === null) return;
      part.innerHTML = html;
      tick();
    });
  }

  function poll() {
    if (busy || document.hidden) return;
    busy = true;
    fetch(stateUrl, { credentials: "same-origin", cache: "no-store" }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    }).then(function (state) {
      if (offline) offline.hidden = true;
      if (document.querySelector("[data-retry]")) {
        // This page is the "Redis is unreachable" one: Redis is back, so load what was asked for.
        window.location.reload();
        return;
      }
      skew = state.now - Date.now() / 1000;
      var panel = document.getElementById("panel");
      if (panel && state.panel) panel.innerHTML = state.panel;
      if (state.marker !== marker) {
        marker = state.marker;
        body.setAttribute("data-marker", marker);
        return Promise.all([refresh("rows"), refresh("job-live")]);
      }
    }).catch(function () {
      if (offline) offline.hidden = false;
    }).then(function () {
      busy = false;
      tick();
    });
  }

  setInterval(poll, 1000);
  document.addEventListener("visibilitychange", poll);
})();
