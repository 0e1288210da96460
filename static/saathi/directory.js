// The directory shows times in the viewer's zone. The browser knows it (Intl API): remember it in a
// cookie and, the first time, reload so the server renders every time in that zone.
(function () {
  "use strict";
  var root = document.getElementById("directory");
  if (!root) return;
  var zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { return; }
  if (!zone || !/^[A-Za-z0-9_+\-\/]+$/.test(zone)) return;  // IANA names are cookie-safe as they are
  var name = root.dataset.tzCookie || "saathi_tz";
  document.cookie = name + "=" + zone + "; path=/; max-age=31536000; samesite=lax";
  var field = document.getElementById("tz-field");
  if (field) field.value = zone;
  var params = new URLSearchParams(location.search);
  if (root.dataset.viewerTz !== zone && !params.has("tz")) {
    params.set("tz", zone);
    location.replace(location.pathname + "?" + params.toString());
  }
})();
