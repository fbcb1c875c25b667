"""Request paths and cookies in the events, as AWS sends them: captured live from AWS (REST API and
ALB keep the path as sent; an HTTP API decodes it, twice; a function URL keeps `rawPath` and the
`Cookie` header)."""

from __future__ import annotations

import pytest
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayProxyEventModel,
    APIGatewayProxyEventV2Model,
    LambdaFunctionUrlModel,
)

from lambdad.payloads.apigateway import Api, BadPath, Request, http_api_path, v1_event, v2_event

API = Api(account="123456789012", api_id="abcdefghij", domain="abcdefghij.example.test", request_id="r-1",
          now=1583348638.390)
URL = Api(account="anonymous", api_id="a" * 32, domain="127.0.0.1:9001", request_id="r-2", now=1583348638.390,
          function_url=True)


def request(raw_path: str, cookie: str | None = None) -> Request:
    headers = (("host", "h"), ("user-agent", "ua")) + ((("cookie", cookie),) if cookie else ())
    return Request(method="GET", raw_path=raw_path, raw_query="", headers=headers, body=b"", source_ip="10.0.0.1")


@pytest.mark.parametrize(("sent", "delivered"), [  # an HTTP API's rawPath for each path sent, captured from AWS
    ("/capture/plain", "/capture/plain"),
    ("/capture/space%20value", "/capture/space value"),
    ("/capture/question%3Fvalue", "/capture/question"),  # a decoded ? ends the path
    ("/capture/hash%23value", "/capture/hash#value"),
    ("/capture/slash%2Fvalue", "/capture/slash/value"),
    ("/capture/unicode-%CE%BB-%E4%B8%96%E7%95%8C", "/capture/unicode-λ-世界"),
    ("/capture/literal%252Fvalue", "/capture/literal/value"),  # decoded twice
    ("/capture/literal%253Fvalue", "/capture/literal?value"),  # a ? from the second decoding stays
    ("/capture/literal%2525value", "/capture/literal%value"),
    ("/items/a%2520b", "/items/a b"),
])
def test_an_http_api_decodes_the_path(sent: str, delivered: str):
    assert http_api_path(sent) == delivered
    event = v2_event(request(sent), API, "$default", {})
    assert event["rawPath"] == event["requestContext"]["http"]["path"] == delivered
    APIGatewayProxyEventV2Model(**event)


@pytest.mark.parametrize("sent", ["/capture/percent%25done", "/a%zz", "/a%", "/a%2"])
def test_an_http_api_refuses_a_percent_that_starts_no_escape(sent: str):
    with pytest.raises(BadPath):
        http_api_path(sent)


@pytest.mark.parametrize(("sent", "http_path"), [
    ("/capture/space%20value", "/capture/space value"),  # captured
    ("/items/a%2Fb", "/items/a/b"),
    ("/items/a%2520b", "/items/a%20b"),  # decoded once
    ("/capture/percent%25done", "/capture/percent%done"),  # no 400: only HTTP APIs refuse it
])
def test_a_function_url_keeps_raw_path_as_sent(sent: str, http_path: str):
    event = v2_event(request(sent), URL, "$default", {})
    assert (event["rawPath"], event["requestContext"]["http"]["path"]) == (sent, http_path)
    LambdaFunctionUrlModel(**event)


@pytest.mark.parametrize(("sent", "resource", "params"), [
    ("/capture/space%20value", "/{proxy+}", {"proxy": "capture/space%20value"}),  # captured
    ("/items/a%2Fb", "/items/{id}", {"id": "a%2Fb"}),
    ("/items/a%2520b", "/items/{id}", {"id": "a%2520b"}),
])
@pytest.mark.parametrize("stage", ["$default", "live"])
def test_a_rest_api_keeps_the_path_as_sent(sent: str, resource: str, params: dict, stage: str):
    api = Api(**{**API.__dict__, "stage": stage})
    event = v1_event(request(sent), api, resource, params)
    assert event["path"] == sent and event["pathParameters"] == params
    assert event["requestContext"]["path"] == (sent if stage == "$default" else f"/{stage}{sent}")
    APIGatewayProxyEventModel(**event)


@pytest.mark.parametrize(("api", "cookie_header"), [(API, None), (URL, "session=abc123; theme=dark")])
def test_cookies_in_their_list_and_for_a_function_url_in_the_header_too(api: Api, cookie_header: str | None):
    event = v2_event(request("/p", cookie="session=abc123; theme=dark"), api, "$default", {})
    assert event["cookies"] == ["session=abc123", "theme=dark"]
    assert event["headers"].get("cookie") == cookie_header
