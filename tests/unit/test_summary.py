"""What `lambdad up` prints for each trigger: where to reach it, at a glance."""

from __future__ import annotations

import pytest

from lambdad.manifest.model import ApiTrigger
from lambdad.summary import describe_trigger

ADDRESSES = {"listener:web": "http://127.0.0.1:8080", "listener:f.url": "http://127.0.0.1:41234"}


@pytest.mark.parametrize(("trigger", "line"), [
    (ApiTrigger("web", "GET /items/{id}"), "api      web  GET http://127.0.0.1:8080/items/{id}  payload 2.0"),
    (ApiTrigger("web", "$default", "1.0", timeout_s=5.0),
     "api      web  $default: any other request to http://127.0.0.1:8080/  payload 1.0  timeout 5s"),
    (ApiTrigger("f.url", function_url=True, timeout_s=900.0), "url       http://127.0.0.1:41234/"),
])
def test_api_routes_and_urls_say_where_they_answer(trigger: ApiTrigger, line: str):
    assert describe_trigger(trigger, ADDRESSES) == "    " + line


def test_status_says_when_a_function_url_is_not_served(capsys: pytest.CaptureFixture[str]):
    from lambdad.cli.status import _print_daemon

    _print_daemon({"running": True, "pid": 7, "config": "current", "api": "http://127.0.0.1:9001",
                   "listeners": {"web": "http://127.0.0.1:8080", "f.url": None}, "urls": {"f": None}})
    out = capsys.readouterr().out
    assert "listener web: http://127.0.0.1:8080" in out and "function URL of f: not served" in out
    assert "None" not in out
