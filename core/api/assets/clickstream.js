/*
 * clickstream.js: events from a web page to the clickstream API. Served by the API at
 * GET /static/clickstream.js; no dependencies. Guide: docs/clients.md.
 *
 *   <script>window.clickstreamConfig = {getToken: () => localStorage.getItem("access_token")};</script>
 *   <script src="https://events.cinema.example/static/clickstream.js" data-page-type="movie"
 *           data-video-id="tt0111161" async></script>
 *
 * This part sends events: window.clickstream.track(event, data), with the page's token,
 * retrying 429, 503 and network failures. It keeps the page's context ({pageType, videoId}:
 * data-page-type / data-video-id or clickstreamConfig), which a single-page app changes with
 * window.clickstream.newPage({pageType, videoId}). What is sent by itself (page views,
 * clicks) comes from the installed plugins' tracker scripts (register_tracker_scripts),
 * which follow, each called with the tracker below.
 *
 * Every event carries the visitor: anonymous_id, a UUID kept in first-party storage
 * (localStorage, else a cookie, else memory), session_id, renewed after
 * clickstreamConfig.sessionTimeoutMinutes (30) without an event, and sent_at, the page's
 * clock when the event was first sent.
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
  const ATTEMPTS = 3;
  const MAX_WAIT_MS = 30000;
  const timeoutMinutes = Number(initial.sessionTimeoutMinutes);
  const SESSION_TIMEOUT_MS = (timeoutMinutes > 0 ? timeoutMinutes : 30) * 60000;
  const STORED = "clickstream_";
  const COOKIE_DAYS = 365;

  let page = {
    pageType: initial.pageType || attributes.pageType || "other",
    videoId: initial.videoId || attributes.videoId || null,
  };
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

  // First-party storage: localStorage, else a cookie (storage disabled or full), else this
  // page's memory (cookies refused too): the visitor is then new at every page load.
  const memory = {};

  function readStored(key) {
    try {
      const value = localStorage.getItem(STORED + key);
      if (value !== null) return value;
    } catch (error) {
      // localStorage is unavailable (disabled, sandboxed frame): try the cookie.
    }
    const cookie = document.cookie.split("; ").find((part) => part.startsWith(`${STORED}${key}=`));
    if (cookie) return decodeURIComponent(cookie.slice(STORED.length + key.length + 1));
    return key in memory ? memory[key] : null;
  }

  function writeStored(key, value) {
    memory[key] = value;
    try {
      localStorage.setItem(STORED + key, value);
      return;
    } catch (error) {
      // Fall back to a cookie below.
    }
    try {
      document.cookie =
        `${STORED}${key}=${encodeURIComponent(value)}; path=/; ` +
        `max-age=${COOKIE_DAYS * 86400}; SameSite=Lax`;
    } catch (error) {
      // Cookies refused as well: memory only.
    }
  }

  function anonymousId() {
    let id = readStored("anonymous_id");
    if (!id) {
      id = uuid();
      writeStored("anonymous_id", id);
    }
    return id;
  }

  // The session is "id|last activity in ms"; an event after the timeout starts a new one.
  function sessionId(touch) {
    const now = Date.now();
    const [id, last] = (readStored("session") || "").split("|");
    const alive = id && now - Number(last) <= SESSION_TIMEOUT_MS;
    const current = alive ? id : uuid();
    if (touch || !alive) writeStored("session", `${current}|${now}`);
    return current;
  }

  function visitor() {
    return {
      anonymous_id: anonymousId(),
      session_id: sessionId(true),
      sent_at: new Date().toISOString(),
    };
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
    const token = await tokenLater();
    const body = JSON.stringify({ event, token, data, ...visitor() });
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

  function sendOnExit(event, data) {
    const body = JSON.stringify({ event, token: tokenNow(), data, ...visitor() });
    // A beacon outlives the page; it is text/plain and cannot carry headers, so the token
    // travels in the body like every event's. fetch with keepalive if the beacon is refused.
    if (!(navigator.sendBeacon && navigator.sendBeacon(endpoint, body))) post(body).catch(() => {});
  }

  const pageChanges = [];

  function newPage(options) {
    for (const change of pageChanges) change.before();
    page = {
      pageType: (options && options.pageType) || page.pageType,
      videoId: options && "videoId" in options ? options.videoId : null,
    };
    for (const change of pageChanges) change.after();
  }

  const ids = () => ({ anonymousId: anonymousId(), sessionId: sessionId(false) });

  window.clickstream = { track, newPage, visitor: ids };

  const tracker = {
    track,
    sendOnExit,
    uuid,
    page: () => ({ ...page }),
    visitor: ids,
    onPageChange: (before, after) => pageChanges.push({ before, after }),
    expose: (functions) => Object.assign(window.clickstream, functions),
  };

  function run(name, script) {
    try {
      script(tracker);
    } catch (error) {
      console.error(`clickstream: tracker script ${name} failed`, error);
    }
  }

  /* {tracker scripts} */
})();
