// page_view_start and page_view_end, matched by page_view_id. A page view starts when the
// page is visible and ends, exactly once, when it is hidden or closed; a page that becomes
// visible again starts a new view. Both carry page_view_id and page_type, plus video_id
// (the catalogue's string id) when the page is about a video; the start its url and
// referrer, the end visible_ms. Adds clickstream.pageViewId(), and newPageView(options),
// the same as newPage(options).

// The schema's limit on url and referrer, in characters.
const MAX_URL = 2048;
let view = null;

function pageData() {
  const page = tracker.page();
  const data = { page_view_id: view.id, page_type: page.pageType };
  if (page.videoId) data.video_id = page.videoId;
  return data;
}

function startView() {
  if (view || document.visibilityState !== "visible") return;
  view = { id: tracker.uuid(), startedAt: performance.now() };
  const data = pageData();
  data.url = location.href.slice(0, MAX_URL);
  if (document.referrer) data.referrer = document.referrer.slice(0, MAX_URL);
  tracker.track("page_view_start", data);
}

function endView() {
  if (!view) return;
  const data = pageData();
  data.visible_ms = Math.max(0, Math.round(performance.now() - view.startedAt));
  view = null;
  tracker.sendOnExit("page_view_end", data);
}

document.addEventListener("visibilitychange", () =>
  document.visibilityState === "hidden" ? endView() : startView(),
);
window.addEventListener("pagehide", endView);
// A page restored from the back-forward cache is a new view.
window.addEventListener("pageshow", (event) => event.persisted && startView());
tracker.onPageChange(endView, startView);
tracker.expose({
  newPageView: (options) => window.clickstream.newPage(options),
  pageViewId: () => (view ? view.id : null),
});
startView();
