// A group's page: refresh the live part (counts, members, activities) every two seconds, so a
// member killed behind pocketcloud's back is seen going and its replacement coming. Forms are
// left alone while one of their fields has the focus.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live) { return; }
  function tick() {
    if (live.contains(document.activeElement) && document.activeElement.tagName === "INPUT") {
      return setTimeout(tick, 2000);
    }
    fetch(window.location.pathname, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live");
        if (fresh) { live.innerHTML = fresh.innerHTML; }
      })
      .catch(function () {})
      .finally(function () { setTimeout(tick, 2000); });
  }
  setTimeout(tick, 2000);
})();
