"""GET /docs in headless Chromium: Swagger UI renders every endpoint of the document, with
no request leaving the API's own origin."""

from __future__ import annotations

import time

import pytest

from tests.servers import serve

pytestmark = pytest.mark.integration


def test_the_reference_page_renders_every_operation_offline(app, browser) -> None:
    spec = app.test_client().get("/openapi.json").json
    operations = {
        f"{method.upper()} {path}" for path, item in spec["paths"].items() for method in item
    }
    with serve(app) as url:
        browser.get(f"{url}/docs")
        deadline = time.monotonic() + 20
        shown: set[str] = set()
        while time.monotonic() < deadline and shown != operations:
            shown = set(
                browser.execute_script(
                    "return [...document.querySelectorAll('.opblock-summary')].map(s => "
                    "s.querySelector('.opblock-summary-method').textContent + ' ' + "
                    "s.querySelector('.opblock-summary-path').getAttribute('data-path'))"
                )
            )
            time.sleep(0.2)
        resources = browser.execute_script(
            "return performance.getEntriesByType('resource').map(r => r.name)"
        )
        title = browser.execute_script("return document.querySelector('.title')?.textContent")
    assert shown == operations
    assert spec["info"]["title"] in title
    assert resources and all(resource.startswith(url) for resource in resources), resources
