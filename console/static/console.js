// offhours console: the little interaction the pages need (docs/console.md). No build step.
"use strict";
(function () {
  function viewerTime(iso) {
    var d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleString([], {weekday: "short", day: "2-digit", month: "short", hour: "2-digit", minute: "2-digit"});
  }
  // Timeline: hover (or tap) a piece for its local time and the viewer's.
  var svg = document.getElementById("timeline");
  var tip = document.getElementById("tip");
  if (svg && tip) {
    var show = function (event) {
      var el = event.target;
      if (!el.dataset || !el.dataset.start) { tip.hidden = true; return; }
      tip.textContent = "";
      var lines = [el.dataset.label || "", (el.dataset.local || (el.dataset.start + " – " + el.dataset.end)),
        "your time: " + viewerTime(el.dataset.start) + " – " + viewerTime(el.dataset.end)];
      if (el.dataset.overnight) { lines.push("crosses midnight"); }
      lines.forEach(function (text) { var div = document.createElement("div"); div.textContent = text; tip.appendChild(div); });
      tip.hidden = false;
      var box = svg.parentNode.getBoundingClientRect();
      tip.style.left = Math.min(event.clientX - box.left + svg.parentNode.scrollLeft + 12, svg.parentNode.scrollWidth - 260) + "px";
      tip.style.top = (event.clientY - box.top + svg.parentNode.scrollTop + 12) + "px";
    };
    svg.addEventListener("mousemove", show);
    svg.addEventListener("click", show);
    svg.addEventListener("mouseleave", function () { tip.hidden = true; });
  }
  // Overrides: show the fields of the kind chosen.
  var kind = document.getElementById("override-kind");
  if (kind) {
    var sync = function () {
      document.querySelectorAll("#override-form [data-kind]").forEach(function (label) {
        label.hidden = label.dataset.kind !== kind.value;
      });
    };
    kind.addEventListener("change", sync);
    sync();
  }
  // Preview: changing the team reloads the form with that team's accounts.
  document.querySelectorAll("select[data-reload]").forEach(function (select) {
    select.addEventListener("change", function () {
      window.location.search = "?team=" + encodeURIComponent(select.value);
    });
  });
  // Instants: the viewer's own time in the tooltip of every <time>.
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    if (el.getAttribute("datetime") !== "None") { el.title = "your time: " + viewerTime(el.getAttribute("datetime")); }
  });
})();
