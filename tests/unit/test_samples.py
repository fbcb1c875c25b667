"""Sample events: every source builds, matches AWS's shape (Powertools models, AWS's reference samples),
draws fresh ids, takes its time from `now`, and `--set` lands where it says or fails with one clear line."""

from __future__ import annotations

import base64
import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser import models as pt
from aws_lambda_powertools.utilities.parser.models import cognito as pt_cognito
from pydantic import BaseModel

from lambdad.clock import iso_millis
from lambdad.errors import EXIT_USAGE, UsageError
from lambdad.manifest import model
from lambdad.payloads import samples
from lambdad.payloads.samples import SAMPLES, Param, Sample, SampleError, generate, register, triggers

NOW = 1_700_000_000.25  # 2023-11-14T22:13:20.250Z
#: AWS's sample events (SAM's and the service documentation's).
AWS_SAMPLES = Path(__file__).parents[1] / "fixtures" / "events"

COGNITO = ["pre-signup", "pre-authentication", "post-authentication", "post-confirmation", "pre-token-generation",
           "custom-message", "define-auth-challenge", "create-auth-challenge", "verify-auth-challenge",
           "user-migration"]
CLOUDFRONT = ["viewer-request", "origin-request", "origin-response", "viewer-response"]
REQUIRED = {"apigateway-v1", "apigateway-v2", "s3-put", "s3-delete", "s3-batch", "schedule", "alb", "sqs", "kinesis", "dynamodb", "lex", "alexa",
            "firehose", "stepfunctions", *(f"cloudfront-{t}" for t in CLOUDFRONT), *(f"cognito-{t}" for t in COGNITO)}


def get(doc: Any, path: str) -> Any:
    for part in path.split("."):
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def test_every_required_source_is_registered():
    assert REQUIRED - set(SAMPLES) == set()


def test_samples_place_themselves_where_the_manifest_defaults_do():
    assert (samples.REGION, samples.ACCOUNT) == (model.DEFAULT_REGION, model.DEFAULT_ACCOUNT)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_source_generates_a_json_object_with_its_defaults(name: str):
    payload = generate(name, [], NOW)
    assert isinstance(payload, dict) and payload
    assert json.loads(json.dumps(payload)) == payload
    sample = SAMPLES[name]
    assert sample.description and all(p.help for p in sample.params.values())


# --- AWS's shapes ----------------------------------------------------------------------------------

#: Cognito sends `answerCorrect: null` for the function to fill in; Powertools' model insists on a bool,
#: so the test answers as a handler would before validating.
HANDLER_ANSWERS = {"cognito-verify-auth-challenge": ("response.answerCorrect", False)}

POWERTOOLS: list[tuple[str, list[str], type[BaseModel]]] = [
    ("s3-put", [], pt.S3Model),
    ("s3-delete", [], pt.S3Model),
    ("schedule", [], pt.EventBridgeModel),
    ("apigateway-v2", [], pt.APIGatewayProxyEventV2Model),
    ("apigateway-v2", ["method=POST", "path=/items/7?a=1&a=2", "route=POST /items/{id}", 'body={"a": 1}'],
     pt.APIGatewayProxyEventV2Model),
    ("apigateway-v1", [], pt.APIGatewayProxyEventModel),
    ("apigateway-v1", ["path=/x?a=1", "route=$default", "body=hi"], pt.APIGatewayProxyEventModel),
    ("alb", [], pt.AlbModel),
    ("alb", ["method=POST", 'body={"a": 1}', "query=a=1&b=2"], pt.AlbModel),
    ("sqs", [], pt.SqsModel),
    ("sqs", ["queue=orders.fifo"], pt.SqsModel),
    ("kinesis", [], pt.KinesisDataStreamModel),
    ("dynamodb", [], pt.DynamoDBStreamModel),
    ("dynamodb", ["event_name=MODIFY"], pt.DynamoDBStreamModel),
    ("dynamodb", ["event_name=REMOVE"], pt.DynamoDBStreamModel),
    ("firehose", [], pt.KinesisFirehoseModel),
    ("s3-batch", [], pt.S3BatchOperationModel),
    ("cognito-pre-signup", [], pt.CognitoPreSignupTriggerModel),
    ("cognito-pre-authentication", [], pt.CognitoPreAuthenticationTriggerModel),
    ("cognito-post-authentication", [], pt.CognitoPostAuthenticationTriggerModel),
    ("cognito-post-confirmation", [], pt.CognitoPostConfirmationTriggerModel),
    ("cognito-pre-token-generation", [], pt_cognito.CognitoPreTokenGenerationTriggerModelV1),
    ("cognito-custom-message", [], pt.CognitoCustomMessageTriggerModel),
    ("cognito-define-auth-challenge", [], pt.CognitoDefineAuthChallengeTriggerModel),
    ("cognito-create-auth-challenge", [], pt.CognitoCreateAuthChallengeTriggerModel),
    ("cognito-verify-auth-challenge", [], pt.CognitoVerifyAuthChallengeTriggerModel),
    ("cognito-user-migration", [], pt.CognitoMigrateUserTriggerModel),
]


@pytest.mark.parametrize(("name", "settings", "model_class"), POWERTOOLS, ids=lambda v: v if isinstance(v, str) else None)
def test_the_sample_validates_against_the_powertools_model(name: str, settings: list[str], model_class: type[BaseModel]):
    payload = generate(name, settings, NOW)
    if name in HANDLER_ANSWERS:
        path, value = HANDLER_ANSWERS[name]
        samples.set_path(payload, path, value)
    model_class.model_validate(payload)


def test_verify_auth_challenge_leaves_the_answer_to_the_handler_as_cognito_does():
    assert generate("cognito-verify-auth-challenge", [], NOW)["response"] == {"answerCorrect": None}


#: Objects whose keys are data (header names, attribute names, slots), not part of the event's shape.
DATA_MAPS = {"headers", "queryStringParameters", "multiValueHeaders", "multiValueQueryStringParameters", "slots",
             "sessionAttributes", "userAttributes", "Keys", "NewImage", "OldImage", "customHeaders",
             "messageAttributes", "clientMetadata", "validationData"}


def key_paths(value: Any, prefix: str = "") -> set[str]:
    """Every key path of a JSON value (`Records.[].s3.bucket.name`); a list is judged by its first item."""
    if isinstance(value, list):
        return key_paths(value[0], f"{prefix}.[]") if value else set()
    if not isinstance(value, dict):
        return set()
    data_map = prefix.rsplit(".", 1)[-1] in DATA_MAPS
    out = set()
    for key, item in value.items():
        path = f"{prefix}.{'*' if data_map else key}".lstrip(".")
        out |= {path} | key_paths(item, path)
    return out


CF = "Records.[].cf."
#: (source, settings, AWS sample, keys the sample has beyond the AWS sample, and why)
REFERENCES = [
    ("s3-put", [], "s3-put.json", set()),
    ("s3-delete", [], "s3-delete.json", set()),
    ("schedule", [], "eventbridge-scheduled.json", set()),
    ("alb", ["method=POST", "query=query=1234ABCD", "body=x"], "alb-request.json", set()),
    ("sqs", [], "sqs-receive.json", set()),
    ("kinesis", [], "kinesis-get-records.json", set()),
    ("dynamodb", [], "dynamodb-update.json", set()),
    ("s3-batch", [], "s3-batch.json", set()),
    ("alexa", [], "alexa-start-session.json", set()),
    ("firehose", [], "firehose.json", set()),
    ("stepfunctions", [], "stepfunctions-error.json", set()),
    # Lex V1 always sends what the user said, and requestAttributes (null when there are none).
    ("lex", [], "lex-order-flowers.json", {"inputTranscript", "requestAttributes"}),
    # The reference is an abridged SAM sample; CloudFront's documentation adds these to every event.
    ("cloudfront-viewer-request", [], "cloudfront-edge.json",
     {CF + "config.distributionDomainName", CF + "config.eventType", CF + "config.requestId",
      CF + "request.querystring"}),
]


@pytest.mark.parametrize(("name", "settings", "reference", "extra"), REFERENCES, ids=[r[0] for r in REFERENCES])
def test_the_sample_has_the_keys_of_the_aws_sample(name: str, settings: list[str], reference: str, extra: set[str]):
    aws = json.loads((AWS_SAMPLES / reference).read_text())
    ours = key_paths(generate(name, settings, NOW))
    assert key_paths(aws) - ours == set()
    assert ours - key_paths(aws) == extra


ORIGIN = {"request.origin", "request.origin.custom", *(f"request.origin.custom.{k}" for k in (
    "customHeaders", "domainName", "keepaliveTimeout", "path", "port", "protocol", "readTimeout", "sslProtocols"))}
RESPONSE = {"response", "response.headers", "response.headers.*",
            "response.headers.*.[].key", "response.headers.*.[].value", "response.status", "response.statusDescription"}


@pytest.mark.parametrize(("event_type", "extra"), [
    ("origin-request", ORIGIN), ("origin-response", ORIGIN | RESPONSE), ("viewer-response", RESPONSE),
])
def test_cloudfront_events_add_to_the_viewer_request_what_the_docs_show(event_type: str, extra: set[str]):
    base = key_paths(generate("cloudfront-viewer-request", [], NOW))
    ours = key_paths(generate(f"cloudfront-{event_type}", [], NOW))
    assert ours - base == {CF + path for path in extra} and base <= ours
    assert get(generate(f"cloudfront-{event_type}", [], NOW), "Records.0.cf.config.eventType") == event_type


@pytest.mark.parametrize(("name", "trigger_source"), [
    ("pre-signup", "PreSignUp_SignUp"), ("pre-authentication", "PreAuthentication_Authentication"),
    ("post-authentication", "PostAuthentication_Authentication"), ("post-confirmation", "PostConfirmation_ConfirmSignUp"),
    ("pre-token-generation", "TokenGeneration_Authentication"), ("custom-message", "CustomMessage_SignUp"),
    ("define-auth-challenge", "DefineAuthChallenge_Authentication"),
    ("create-auth-challenge", "CreateAuthChallenge_Authentication"),
    ("verify-auth-challenge", "VerifyAuthChallengeResponse_Authentication"),
    ("user-migration", "UserMigration_Authentication"),
])
def test_cognito_events_share_the_common_parameters(name: str, trigger_source: str):
    event = generate(f"cognito-{name}", [], NOW)
    assert list(event) == ["version", "triggerSource", "region", "userPoolId", "userName", "callerContext", "request",
                           "response"]
    assert event["triggerSource"] == trigger_source and event["version"] == "1" and event["region"] == "us-east-1"
    assert set(event["callerContext"]) == {"awsSdkVersion", "clientId"}


# --- fresh ids, times from now -------------------------------------------------------------------

FRESH = [
    ("s3-put", "Records.0.responseElements.x-amz-request-id"),
    ("s3-delete", "Records.0.responseElements.x-amz-id-2"),
    ("schedule", "id"),
    ("alb", "headers.x-amzn-trace-id"),
    ("sqs", "Records.0.messageId"),
    ("sqs", "Records.0.receiptHandle"),
    ("kinesis", "Records.0.eventID"),
    ("dynamodb", "Records.0.eventID"),
    *((f"cloudfront-{t}", "Records.0.cf.config.requestId") for t in CLOUDFRONT),
    *((f"cognito-{t}", "request.userAttributes.sub") for t in COGNITO if t not in ("pre-signup", "user-migration")),
    ("s3-batch", "invocationId"),
    ("s3-batch", "job.id"),
    ("s3-batch", "tasks.0.taskId"),
    ("alexa", "session.sessionId"),
    ("alexa", "request.requestId"),
    ("firehose", "invocationId"),
    ("firehose", "records.0.recordId"),
]


@pytest.mark.parametrize(("name", "path"), FRESH)
def test_each_generation_draws_fresh_ids(name: str, path: str):
    first, second = get(generate(name, [], NOW), path), get(generate(name, [], NOW), path)
    assert first and second and first != second


@pytest.mark.parametrize(("name", "path", "expected"), [
    ("s3-put", "Records.0.eventTime", "2023-11-14T22:13:20.250Z"),
    ("schedule", "time", "2023-11-14T22:13:20Z"),
    ("sqs", "Records.0.attributes.SentTimestamp", "1700000000250"),
    ("kinesis", "Records.0.kinesis.approximateArrivalTimestamp", 1700000000.25),
    ("dynamodb", "Records.0.dynamodb.ApproximateCreationDateTime", 1700000000),
    ("alexa", "request.timestamp", "2023-11-14T22:13:20Z"),
    ("firehose", "records.0.approximateArrivalTimestamp", 1700000000250),
    ("cloudfront-origin-response", "Records.0.cf.response.headers.date.0.value", "Tue, 14 Nov 2023 22:13:20 GMT"),
])
def test_times_come_from_now(name: str, path: str, expected: Any):
    assert get(generate(name, [], NOW), path) == expected


# --- named parameters ----------------------------------------------------------------------------

PARAMETERS = [
    ("s3-put", ["bucket=photos"], "Records.0.s3.bucket.name", "photos"),
    ("s3-put", ["bucket=photos"], "Records.0.s3.bucket.arn", "arn:aws:s3:::photos"),
    ("s3-put", ["key=my photos/a+b.jpg"], "Records.0.s3.object.key", "my+photos/a%2Bb.jpg"),
    ("s3-put", ["size=10"], "Records.0.s3.object.size", 10),
    ("s3-put", ["etag=abc"], "Records.0.s3.object.eTag", "abc"),
    ("schedule", ["rule=nightly"], "resources.0", "arn:aws:events:us-east-1:123456789012:rule/nightly"),
    ("schedule", ["time=2024-01-01T12:00:00Z"], "time", "2024-01-01T12:00:00Z"),
    ("schedule", ["time=2024-01-01T13:00:00+01:00"], "time", "2024-01-01T12:00:00Z"),
    ("alb", ["method=post"], "httpMethod", "POST"),
    ("alb", ["path=/thumb/a.jpg"], "path", "/thumb/a.jpg"),
    ("alb", ["query=a=1&b=%20x"], "queryStringParameters", {"a": "1", "b": "%20x"}),
    ("alb", ['body={"n": 1}'], "body", '{"n": 1}'),
    ("alb", ['body={"n": 1}'], "headers.content-type", "application/json"),
    ("alb", ["multi_value=true"], "multiValueHeaders.accept", ["*/*"]),
    ("sqs", ["queue=orders"], "Records.0.eventSourceARN", "arn:aws:sqs:us-east-1:123456789012:orders"),
    ("sqs", ["body=hi"], "Records.0.body", "hi"),
    ("sqs", ["queue=orders.fifo", "group=g1"], "Records.0.attributes.MessageGroupId", "g1"),
    ("kinesis", ["stream=clicks"], "Records.0.eventSourceARN", "arn:aws:kinesis:us-east-1:123456789012:stream/clicks"),
    ("kinesis", ["data=hello"], "Records.0.kinesis.data", base64.b64encode(b"hello").decode()),
    ("kinesis", ["partition_key=user-1"], "Records.0.kinesis.partitionKey", "user-1"),
    ("dynamodb", ["table=Orders"], "Records.0.eventSourceARN",
     "arn:aws:dynamodb:us-east-1:123456789012:table/Orders/stream/1970-01-01T00:00:00.000"),
    ("dynamodb", ["event_name=remove"], "Records.0.eventName", "REMOVE"),
    ("dynamodb", ["event_name=REMOVE"], "Records.0.dynamodb.OldImage.Message", {"S": "This item has changed"}),
    ("dynamodb", ['keys={"pk": {"S": "a"}}'], "Records.0.dynamodb.Keys", {"pk": {"S": "a"}}),
    ("cloudfront-viewer-request", ["uri=/a.jpg"], "Records.0.cf.request.uri", "/a.jpg"),
    ("cloudfront-origin-request", ["method=post"], "Records.0.cf.request.method", "POST"),
    ("cloudfront-viewer-request", ["querystring=size=large"], "Records.0.cf.request.querystring", "size=large"),
    ("cognito-pre-signup", ["user_pool_id=us-east-1_abc"], "userPoolId", "us-east-1_abc"),
    ("cognito-pre-signup", ["user_name=ann"], "userName", "ann"),
    ("cognito-pre-signup", ["email=ann@example.com"], "request.userAttributes.email", "ann@example.com"),
    ("cognito-post-confirmation", ["client_id=app1"], "callerContext.clientId", "app1"),
    ("lex", ["intent=BookHotel"], "currentIntent", {"name": "BookHotel", "slots": {}, "confirmationStatus": "None"}),
    ("lex", ["bot=Hotels"], "bot.name", "Hotels"),
    ("alexa", ["application_id=amzn1.ask.skill.x"], "context.System.application.applicationId", "amzn1.ask.skill.x"),
    ("alexa", ["application_id=amzn1.ask.skill.x"], "session.application.applicationId", "amzn1.ask.skill.x"),
    ("firehose", ["data=hello"], "records.0.data", base64.b64encode(b"hello").decode()),
    ("stepfunctions", ["error=States.Timeout", "cause=slow"], "", {"Error": "States.Timeout", "Cause": "slow"}),
    ("s3-batch", ["bucket=b1"], "tasks.0.s3BucketArn", "arn:aws:s3:::b1"),
    ("s3-batch", ["key=a b.txt"], "tasks.0.s3Key", "a%20b.txt"),
    ("s3-batch", ["version_id=v1"], "tasks.0.s3VersionId", "v1"),
    ("s3-batch", [], "tasks.0.s3VersionId", None),
]


@pytest.mark.parametrize(("name", "settings", "path", "expected"), PARAMETERS)
def test_named_parameters_land_where_aws_puts_them(name: str, settings: list[str], path: str, expected: Any):
    payload = generate(name, settings, NOW)
    assert (get(payload, path) if path else payload) == expected


def test_a_delete_carries_no_size_and_no_etag():
    obj = get(generate("s3-delete", ["key=old.txt"], NOW), "Records.0.s3.object")
    assert set(obj) == {"key", "sequencer"} and obj["key"] == "old.txt"


def test_a_response_status_comes_with_its_description():
    response = get(generate("cloudfront-origin-response", ["status=404"], NOW), "Records.0.cf.response")
    assert (response["status"], response["statusDescription"]) == ("404", "Not Found")


# --- --set paths ---------------------------------------------------------------------------------

SET_PATHS = [
    (["Records.0.s3.object.size=10"], "Records.0.s3.object.size", 10),
    (["Records.0.s3.object.key=hello world"], "Records.0.s3.object.key", "hello world"),
    (['Records.0.s3.object.key="10"'], "Records.0.s3.object.key", "10"),
    (['Records.0.userIdentity={"principalId": "me"}'], "Records.0.userIdentity", {"principalId": "me"}),
    (["Records.0.glacierEventData=null"], "Records.0.glacierEventData", None),  # a new key is created
    (["Records.0.s3.object.versionId=v2"], "Records.0.s3.object.versionId", "v2"),
    (["Records.0.eventName=ObjectCreated:Copy"], "Records.0.eventName", "ObjectCreated:Copy"),
    (["size=5", "Records.0.s3.object.size=7"], "Records.0.s3.object.size", 7),  # paths apply after parameters
    (["bucket=a", "bucket=b"], "Records.0.s3.bucket.name", "b"),  # the last one wins
    (["Records.0={}"], "Records.0", {}),
    (["Records.0.s3.object.key="], "Records.0.s3.object.key", ""),
    (["Records.0.s3.object.key=NaN"], "Records.0.s3.object.key", "NaN"),  # JSON has no NaN: it stays text
    (["Records.0.s3.object.key=1e400"], "Records.0.s3.object.key", "1e400"),  # nor infinity
]


@pytest.mark.parametrize(("settings", "path", "expected"), SET_PATHS)
def test_dotted_set_paths(settings: list[str], path: str, expected: Any):
    assert get(generate("s3-put", settings, NOW), path) == expected


def test_setting_an_index_of_a_list_inside_the_payload():
    payload = generate("cognito-define-auth-challenge", ["request.session.0.challengeResult=false"], NOW)
    assert payload["request"]["session"][0]["challengeResult"] is False


ERRORS = [
    ("s3-pt", [], "unknown event source 's3-pt' (did you mean 's3-put'"),
    ("nothing-like-it", [], "unknown event source 'nothing-like-it' (`lambdad event list` shows them all)"),
    ("s3-put", ["bucket"], "--set 'bucket': expected NAME=VALUE"),
    ("s3-put", ["=x"], "--set '=x': expected NAME=VALUE"),
    ("s3-put", ["Records.1.eventName=x"], "--set Records.1.eventName: Records has 1 item(s); index 1 is out of range"),
    ("s3-put", ["Records.-1.eventName=x"], "--set Records.-1.eventName: Records is a list; '-1' is not an index"),
    ("s3-put", ["Records.first.eventName=x"], "--set Records.first.eventName: Records is a list; 'first' is not an index"),
    ("s3-put", ["Records.0.eventName.x=1"], "--set Records.0.eventName.x: Records.0.eventName is a string, not an object or a list"),
    ("s3-put", ["Records.0.s3.object.size.x=1"], "--set Records.0.s3.object.size.x: Records.0.s3.object.size is a number"),
    ("s3-put", ["Records.0.s4.object.size=1"], "--set Records.0.s4.object.size: Records.0 has no key 's4' (did you mean 's3'?)"),
    ("s3-put", ["Records..x=1"], "--set Records..x: a path is keys and list indexes joined by single dots"),
    ("s3-put", ["size=big"], "--set size: 'big' is not a whole number of at least 0"),
    ("s3-put", ["size=-1"], "--set size: '-1' is not a whole number of at least 0"),
    ("cloudfront-viewer-response", ["status=700"], "--set status: '700' is not a whole number from 100 to 599"),
    ("alb", ["multi_value=yes"], "--set multi_value: 'yes' is not true or false"),
    ("dynamodb", ["event_name=UPSERT"], "--set event_name: 'UPSERT' is not one of INSERT, MODIFY, REMOVE"),
    ("dynamodb", ["keys=Id"], "--set keys: Keys must be an object of DynamoDB attribute values"),
    ("dynamodb", ["keys={}"], "--set keys: Keys must be an object of DynamoDB attribute values"),
    ("schedule", ["time=tomorrow"], "--set time: 'tomorrow' is not an ISO-8601 time"),
    ("schedule", ["detail.a.b=1"], "--set detail.a.b: detail has no key 'a'"),
    ("stepfunctions", ["Error.x=1"], "--set Error.x: Error is a string, not an object or a list"),
]


@pytest.mark.parametrize(("name", "settings", "message"), ERRORS)
def test_errors_are_one_clear_line(name: str, settings: list[str], message: str):
    with pytest.raises(SampleError) as caught:
        generate(name, settings, NOW)
    text = str(caught.value)
    assert text.startswith(message) and "\n" not in text


def test_sample_errors_are_usage_errors_so_the_cli_exits_2():
    assert issubclass(SampleError, UsageError) and SampleError.EXIT == EXIT_USAGE


def test_the_payload_is_untouched_by_a_failed_set_of_another_generation():
    before = generate("stepfunctions", [], NOW)
    with pytest.raises(SampleError):
        generate("stepfunctions", ["Error.x=1"], NOW)
    assert generate("stepfunctions", [], NOW) == before


# --- the registry --------------------------------------------------------------------------------


def test_another_module_adds_a_source_with_one_line():
    try:
        register(Sample("test-echo", "echo", {"word": Param("hi", "a word")}, lambda p, now: {"word": p["word"]}))
        assert generate("test-echo", ["word=yo", "extra=1"], NOW) == {"word": "yo", "extra": 1}
        with pytest.raises(ValueError, match="already registered"):
            register(copy.copy(SAMPLES["test-echo"]))
    finally:
        SAMPLES.pop("test-echo", None)


def test_parameters_hold_their_defaults_as_text():
    for sample in SAMPLES.values():
        assert all(isinstance(p.default, str) for p in sample.params.values()), sample.name
        assert all(re.fullmatch(r"[a-z_]+", name) for name in sample.params), sample.name


def test_alb_sample_uses_the_listener_target_group_arn():
    from lambdad.payloads.alb import target_group_arn

    manifest = model.Manifest(file=Path("lambdad.yaml"))
    assert get(generate("alb", [], NOW), "requestContext.elb.targetGroupArn") == target_group_arn(manifest, "web", "sample")


def test_s3_samples_use_the_bucket_notification_builder():
    record = get(generate("s3-put", ["key=a b.jpg", "size=3", "etag=e"], NOW), "Records.0")
    from lambdad.payloads.s3 import s3_record

    expected = s3_record(event_name="ObjectCreated:Put", bucket="uploads", key="a b.jpg", region="us-east-1", now=NOW,
                         configuration_id=triggers.S3_CONFIGURATION_ID, sequencer=record["s3"]["object"]["sequencer"],
                         size=3, etag="e")
    assert {k: v for k, v in record.items() if k != "responseElements"} == {
        k: v for k, v in expected.items() if k != "responseElements"}
    assert record["eventTime"] == iso_millis(NOW)


def test_api_samples_are_matched_by_their_route():
    event = generate("apigateway-v2", ["path=/items/7", "route=GET /items/{id}"], NOW)
    assert (event["routeKey"], event["pathParameters"]) == ("GET /items/{id}", {"id": "7"})
    rest = generate("apigateway-v1", ["path=/items/7", "route=GET /items/{id}"], NOW)
    assert (rest["resource"], rest["pathParameters"]) == ("/items/{id}", {"id": "7"})
    with pytest.raises(SampleError, match="does not take GET /other"):
        generate("apigateway-v2", ["path=/other", "route=GET /items/{id}"], NOW)
