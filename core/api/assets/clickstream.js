/*
 * clickstream.js: page views, clicks and other events from a web page to the clickstream API.
 * Served by the API at GET /static/clickstream.js; no dependencies. Guide: docs/clients.md.
 *
 *   <script>window.clickstreamConfig = {getToken: () => localStorage.getItem("access_token")};</script>
 *   <script src="https://events.cinema.example/static/clickstream.js" data-page-type="movie"
 *           data-video-id="tt0111161" async></script>
 *
 * A page view starts when the page is visible and ends, exactly once, when it is hidden or
 * closed; a page that becomes visible again starts a new view. page_view_start and
 * page_view_end carry page_view_id and page_type, plus video_id (the catalogue's string id,
 * from videoId / data-video-id) when the page is about a video.
 *
 * Elements marked with data-clickstream-element send element_click when clicked:
 * element_type is that attribute and page_type data-clickstream-page-type or the page's;
 * optional element_id (data-clickstream-id, else the element's id; left out when neither),
 * video_id (data-clickstream-video-id, else the page's) and position
 * (data-clickstream-position). window.clickstream offers track(event, data), pageViewId()
 * and newPageView(options) (for single-page apps: {pageType, videoId}).
 */
(() => {
  "use strict";
  if (window.clickstream) return;

  const script = document.currentScript;
  const attributes = (script && script.dataset) || {};
  const initial = window.clickstreamConfig || {};
  const endpoint = new URL(
    initial.endpoint || attributes.endpoint || "/api/v1/events",
    script ? script.src : location.href,
  ).href;
  // The schema's limit on url and referrer, in characters.
  const MAX_URL = 2048;
  const ATTEMPTS = 3;
  const MAX_WAIT_MS = 30000;

  let page = {
    pageType: initial.pageType || attributes.pageType || "other",
    videoId: initial.videoId || attributes.videoId || null,
  };
  let view = null;
  let lastToken = null;

  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID();
    // randomUUID exists only in secure contexts (https, localhost); a plain-http page gets a
    // version 4 UUID built from getRandomValues, which exists everywhere.
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  function tokenSource() {
    const getToken = (window.clickstreamConfig || initial).getToken;
    return getToken ? getToken() : null;
  }

  // A getToken that throws or rejects leaves the last token known in place: the event is
  // still sent, rather than lost.
  async function tokenLater() {
    try {
      lastToken = (await tokenSource()) || null;
    } catch (error) {
      console.warn("clickstream: getToken failed", error);
    }
    return lastToken;
  }

  function tokenNow() {
    // A page being closed cannot wait for a promise: use the token last resolved.
    try {
      const token = tokenSource();
      if (token && typeof token.then === "function") {
        token.then((value) => (lastToken = value || null), () => {});
      } else {
        lastToken = token || null;
      }
    } catch (error) {
      console.warn("clickstream: getToken failed", error);
    }
    return lastToken;
  }

  function post(body) {
    // text/plain keeps the request "simple": no CORS preflight, so keepalive requests sent
    // while the page unloads go out at once. The API reads it as JSON all the same.
    return fetch(endpoint, {
      method: "POST",
      body,
      keepalive: true,
      credentials: "omit",
      headers: { "Content-Type": "text/plain;charset=UTF-8" },
    });
  }

  function waitMs(response, attempt) {
    const header = response && response.headers.get("Retry-After");
    const ms = header && /^\d+$/.test(header) ? Number(header) * 1000 : 500 * 2 ** attempt;
    return Math.min(ms, MAX_WAIT_MS);
  }

  /**
   * Send one event. Resolves to {status, body}: 202 and {event_id} when stored, the API's
   * error answer otherwise, status 0 when the API could not be reached. 429 and 503 answers
   * and network failures are retried, after Retry-After, up to three attempts in all.
   */
  async function track(event, data) {
    const body = JSON.stringify({ event, token: await tokenLater(), data });
    for (let attempt = 1; ; attempt += 1) {
      let response = null;
      try {
        response = await post(body);
      } catch (error) {
        if (attempt >= ATTEMPTS) return { status: 0, body: null, error };
      }
      if (response && ((response.status !== 429 && response.status !== 503) || attempt >= ATTEMPTS)) {
        const answer = await response.json().catch(() => null);
        return { status: response.status, body: answer };
      }
      await new Promise((resolve) => setTimeout(resolve, waitMs(response, attempt)));
    }
  }

  function pageData() {
    const data = { page_view_id: view.id, page_type: page.pageType };
    if (page.videoId) data.video_id = page.videoId;
    return data;
  }

  function startView() {
    if (view || document.visibilityState !== "visible") return;
    view = { id: uuid(), startedAt: performance.now() };
    const data = pageData();
    data.url = location.href.slice(0, MAX_URL);
    if (document.referrer) data.referrer = document.referrer.slice(0, MAX_URL);
    track("page_view_start", data);
  }

  function endView() {
    if (!view) return;
    const data = pageData();
    data.visible_ms = Math.max(0, Math.round(performance.now() - view.startedAt));
    view = null;
    const body = JSON.stringify({ event: "page_view_end", token: tokenNow(), data });
    // A beacon outlives the page; it is text/plain and cannot carry headers, so the token
    // travels in the body like every event's. fetch with keepalive if the beacon is refused.
    if (!(navigator.sendBeacon && navigator.sendBeacon(endpoint, body))) post(body).catch(() => {});
  }

  function newPageView(options) {
    endView();
    page = {
      pageType: (options && options.pageType) || page.pageType,
      videoId: options && "videoId" in options ? options.videoId : null,
    };
    startView();
  }

  function clicked(event) {
    const target = event.target instanceof Element ? event.target : null;
    const element = target && target.closest("[data-clickstream-element]");
    if (!element) return;
    const marks = element.dataset;
    const data = {
      element_type: marks.clickstreamElement,
      page_type: marks.clickstreamPageType || page.pageType,
    };
    // element_id is optional: an element with neither attribute nor id is sent without one.
    const elementId = marks.clickstreamId || element.id;
    if (elementId) data.element_id = elementId;
    const videoId = marks.clickstreamVideoId || page.videoId;
    if (videoId) data.video_id = videoId;
    if (marks.clickstreamPosition) data.position = Number(marks.clickstreamPosition);
    track("element_click", data);
  }

  document.addEventListener("visibilitychange", () =>
    document.visibilityState === "hidden" ? endView() : startView(),
  );
  window.addEventListener("pagehide", endView);
  // A page restored from the back-forward cache is a new view.
  window.addEventListener("pageshow", (event) => event.persisted && startView());
  // Capture phase: the page's own handlers cannot stop the click from being counted.
  document.addEventListener("click", clicked, true);

  window.clickstream = {
    track,
    newPageView,
    pageViewId: () => (view ? view.id : null),
  };
  startView();
})();
