// The header's unread count (#notification-count), kept fresh while the page is open.
// Every 30 s while the tab is visible, and at once when it becomes visible again, it asks
// GET /api/me/notifications?limit=0 for the count. A failed or odd answer leaves the count as
// the server drew it; a 401/403 (signed out elsewhere) stops asking. No library, no build step.
(function () {
  var badge = document.getElementById("notification-count");
  if (!badge || !window.fetch) return;
  var EVERY_MS = 30000;
  var stopped = false;
  var busy = false;

  function show(count) {
    badge.textContent = String(count);
    badge.hidden = count === 0;
  }

  function refresh() {
    if (stopped || busy || document.visibilityState !== "visible") return;
    busy = true;
    fetch(badge.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 401 || response.status === 403) stopped = true;
        return response.ok ? response.json() : null;
      })
      .then(function (data) {
        if (data && typeof data.unread === "number" && data.unread >= 0) show(data.unread);
      })
      .catch(function () { /* offline or the server restarting: keep the count shown, try again later */ })
      .finally(function () { busy = false; });
  }

  setInterval(refresh, EVERY_MS);
  document.addEventListener("visibilitychange", refresh);
})();
