"""GET /docs: Swagger UI over GET /openapi.json, every asset served by the API itself."""

from __future__ import annotations

import json
import re

from core.api.openapi import build_spec
from core.host.plugin_manager import build_registry, make_plugin_manager

ASSET = re.compile(r'(?:src|href)="([^"]+)"')


def test_docs_redirects_to_the_page_which_reads_the_apis_own_document(client) -> None:
    api = client
    assert api.get("/docs").headers["Location"].endswith("/docs/")
    page = api.get("/docs/")
    assert page.status_code == 200 and page.content_type.startswith("text/html")
    config = json.loads(re.search(r"var user_config = (\{.*?\});", page.get_data(as_text=True))[1])
    assert config["url"] == "/openapi.json"
    assert config["validatorUrl"] is None  # no request to validator.swagger.io
    assert api.get("/openapi.json").json == build_spec(build_registry(make_plugin_manager()))


def test_every_asset_of_the_page_is_served_here(client) -> None:
    api = client
    assets = ASSET.findall(api.get("/docs/").get_data(as_text=True))
    assert {"/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css"} <= set(assets)
    for asset in assets:
        assert asset.startswith("/docs/"), f"{asset} is fetched from elsewhere"
        answer = api.get(asset)
        assert answer.status_code == 200 and answer.data, asset
