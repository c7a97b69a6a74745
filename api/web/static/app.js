// pocketcloud console: a little vanilla JS. Every page works without it; with it, states
// update live and destructive buttons ask first.
(function () {
  "use strict";
  var TRANSIENT = ["pending", "stopping", "shutting-down"];

  document.addEventListener("submit", function (ev) {
    var msg = ev.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) { ev.preventDefault(); return; }
    showProgress(ev.target);
  });

  function clock(s) { return s < 60 ? s.toFixed(0) + " s" : Math.floor(s / 60) + " min " + (Math.floor(s) % 60) + " s"; }

  // A form that starts long work says what it is doing and counts the seconds until the
  // answer comes, so a VM launch is never a frozen button.
  function showProgress(form) {
    var text = form.getAttribute("data-progress");
    if (!text) { return; }
    var button = form.querySelector("button");
    var note = document.createElement(form.classList.contains("inline") ? "span" : "p");
    note.className = "progress";
    note.setAttribute("role", "status");
    note.textContent = text + "…";
    var elapsed = document.createElement("span");
    elapsed.className = "elapsed";
    note.appendChild(elapsed);
    form.appendChild(note);
    // Disabled after the submit event has gathered the form, so the post still goes out.
    setTimeout(function () { if (button) { button.disabled = true; } }, 0);
    var started = Date.now();
    setInterval(function () { elapsed.textContent = clock((Date.now() - started) / 1000); }, 500);
  }

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

  // Boot phases as the server reports them (boot.phases), with their seconds; while none
  // is reported yet, the time since the launch.
  function showBoot(i) {
    var status = document.getElementById("boot-status"), list = document.getElementById("boot-phases");
    if (!status || !list) { return; }
    var boot = i.boot || {};
    (boot.phases || []).forEach(function (ph) {
      if (list.querySelector('[data-phase="' + ph.name + '"]')) { return; }
      var li = document.createElement("li");
      li.setAttribute("data-phase", ph.name);
      li.textContent = ph.name + " ";
      if (typeof ph.elapsed === "number") {
        var t = document.createElement("span");
        t.className = "muted";
        t.textContent = ph.elapsed.toFixed(1) + " s";
        li.appendChild(t);
      }
      list.appendChild(li);
    });
    var since = typeof i.since_created === "number" ? " for " + clock(i.since_created) : "";
    status.textContent = i.state + since + (boot.phase ? ", now: " + boot.phase : "");
  }

  // One instance: poll while it is changing state, then reload to show the new actions.
  var state = document.getElementById("state");
  if (state && state.dataset.poll && TRANSIENT.indexOf(state.textContent) >= 0) {
    poll(state.dataset.poll, function (i) {
      showBoot(i);
      if (setState(state, i.state, i.state_reason) && TRANSIENT.indexOf(i.state) < 0) { window.location.reload(); }
    }, 1000);
  }

  // The tour: each of its instances updates in place until it settles, then the page
  // reloads so the next step's button is enabled.
  Array.prototype.forEach.call(document.querySelectorAll(".tour-step [data-state][data-poll]"), function (el) {
    if (TRANSIENT.indexOf(el.textContent) < 0) { return; }
    var boot = el.parentNode.querySelector("[data-boot]");
    poll(el.dataset.poll, function (i) {
      if (boot) {
        var ph = (i.boot || {}).phase;
        boot.textContent = (ph ? ph + ", " : "") + clock(i.since_created || 0) + " since launch";
      }
      if (setState(el, i.state, i.state_reason) && TRANSIENT.indexOf(i.state) < 0) { window.location.reload(); }
    }, 1000);
  });

  // A value the server may take a while to find out (the tour's hypervisor line): say so,
  // count the seconds, then show it.
  Array.prototype.forEach.call(document.querySelectorAll("[data-src]"), function (el) {
    var started = Date.now(), text = el.getAttribute("data-progress") || "asking the server";
    el.textContent = text + "…";
    var timer = setInterval(function () { el.textContent = text + "… " + clock((Date.now() - started) / 1000); }, 500);
    fetch(el.getAttribute("data-src"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (data) { clearInterval(timer); el.textContent = data.line; })
      .catch(function () { clearInterval(timer); el.textContent = "could not ask the server: the System page shows it"; });
  });

  // Console log: keep it scrolled to the newest lines.
  var con = document.getElementById("console");
  if (con) { con.scrollTop = con.scrollHeight; }
})();
