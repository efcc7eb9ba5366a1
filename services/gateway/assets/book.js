// The booking page's only script: start in the browser's time zone. Everything works without it
// (the page then starts in the link's zone), and the zone can always be changed with the form.
(function () {
  var params = new URLSearchParams(window.location.search);
  var select = document.getElementById("tz");
  if (!select || params.has("tz") || window.location.pathname.indexOf("/book/booked/") === 0) {
    return;
  }
  var zone = "";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (e) {
    return;
  }
  var known = Array.prototype.some.call(select.options, function (option) { return option.value === zone; });
  if (zone && known && zone !== select.value) {
    params.set("tz", zone);
    window.location.replace(window.location.pathname + "?" + params.toString() + window.location.hash);
  }
})();
