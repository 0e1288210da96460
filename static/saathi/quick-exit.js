// Quick exit: the first thing in tab order, and Esc pressed twice. Replaces this page in history so
// the back button does not bring it back.
(function () {
  "use strict";
  var link = document.getElementById("quick-exit");
  if (!link) return;
  var target = link.getAttribute("data-exit-url") || "/weather/";
  function leave(event) {
    if (event) event.preventDefault();
    document.body.innerHTML = "";
    document.title = "Weather";
    window.location.replace(target);
  }
  link.addEventListener("click", leave);
  var lastEsc = 0;
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var now = Date.now();
    if (now - lastEsc < 800) leave(event);
    lastEsc = now;
  });
})();
