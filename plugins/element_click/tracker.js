// element_click from elements marked with data-clickstream-element: element_type is that
// attribute and page_type data-clickstream-page-type or the page's; optional element_id
// (data-clickstream-id, else the element's id; left out when neither), video_id
// (data-clickstream-video-id, else the page's) and position (data-clickstream-position).

function clicked(event) {
  const target = event.target instanceof Element ? event.target : null;
  const element = target && target.closest("[data-clickstream-element]");
  if (!element) return;
  const marks = element.dataset;
  const page = tracker.page();
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
  tracker.track("element_click", data);
}

// Capture phase: the page's own handlers cannot stop the click from being counted.
document.addEventListener("click", clicked, true);
