// pocketcloud console: a little vanilla JS. Every page works without it; with it, states
// update live and destructive buttons ask first.
(function () {
  "use strict";
  var TRANSIENT = ["pending", "stopping", "shutting-down"];

  document.addEventListener("submit", function (ev) {
    var msg = ev.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) { ev.preventDefault(); }
  });

  function setState(el, state, reason) {
    if (!el || el.textContent === state) { return false; }
    el.textContent = state;
    el.className = "state " + state;
    if (reason) { el.title = reason; }
    return true;
  }

  function poll(url, apply, every) {
    var timer = null, misses = 0;
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { if (r.status === 401) { window.location.reload(); } return r.json(); })
        .then(function (data) { misses = 0; apply(data); })
        .catch(function () { misses += 1; })
        .finally(function () { timer = setTimeout(tick, misses > 3 ? every * 4 : every); });
    }
    timer = setTimeout(tick, every);
  }

  // Instances list: live states; reload when an instance settles so buttons match its state.
  var table = document.getElementById("instances");
  if (table && table.dataset.poll) {
    poll(table.dataset.poll, function (data) {
      var settled = false, known = {};
      data.instances.forEach(function (i) {
        known[i.id] = true;
        var row = table.querySelector('tr[data-id="' + i.id + '"]');
        if (!row) { return; }
        if (setState(row.querySelector("[data-state]"), i.state, i.state_reason)) { settled = true; }
      });
      if (settled || Object.keys(known).length !== table.querySelectorAll("tbody tr").length) {
        window.location.reload();
      }
    }, 2000);
  }

  // One instance: poll while it is changing state, then reload to show the new actions.
  var state = document.getElementById("state");
  if (state && state.dataset.poll && TRANSIENT.indexOf(state.textContent) >= 0) {
    poll(state.dataset.poll, function (i) {
      if (setState(state, i.state, i.state_reason) && TRANSIENT.indexOf(i.state) < 0) { window.location.reload(); }
    }, 1500);
  }

  // Console log: keep it scrolled to the newest lines.
  var con = document.getElementById("console");
  if (con) { con.scrollTop = con.scrollHeight; }
})();
