"""Samples of callers lambdad has no trigger for (CloudFront Lambda@Edge, Cognito user pools, S3 Batch
Operations, Lex, Alexa, Firehose, Step Functions), shaped after AWS's own samples and documentation.
"""

from __future__ import annotations

import base64
import http
import os
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from functools import partial
from typing import Any
from urllib.parse import quote

from lambdad.clock import iso_millis
from lambdad.payloads.samples.registry import (
    ACCOUNT,
    REGION,
    Param,
    Params,
    Sample,
    int_param,
    register,
    sample,
)


def _opaque_id(size: int) -> str:
    """An id AWS documents only as an opaque string (S3 Batch invocation and task ids)."""
    return base64.b64encode(os.urandom(size)).decode()


# --- CloudFront Lambda@Edge ----------------------------------------------------------------------

#: What CloudFront's documentation uses for the distribution and its origin.
CF_DOMAIN = "d111111abcdef8.cloudfront.net"
CF_ORIGIN = "example.org"
CF_CLIENT_IP = "203.0.113.178"
_CF_PARAMS = {"uri": ("/", "request path"), "method": ("GET", "HTTP method"),
              "querystring": ("", "query string without the ?"),
              "distribution_id": ("EDFDVBD6EXAMPLE", "distribution id")}


def _cf_headers(*pairs: tuple[str, str]) -> dict[str, list[dict[str, str]]]:
    """Lambda@Edge's header map: lower-case name -> [{key: the name as sent, value}]."""
    out: dict[str, list[dict[str, str]]] = {}
    for name, value in pairs:
        out.setdefault(name.lower(), []).append({"key": name, "value": value})
    return out


def _cf_request(event_type: str, params: Params) -> dict[str, Any]:
    """The viewer's request, or (origin events) the one CloudFront forwards, with the origin it targets."""
    request: dict[str, Any] = {"clientIp": CF_CLIENT_IP}
    if event_type.startswith("viewer"):
        request["headers"] = _cf_headers(("Host", CF_DOMAIN), ("User-Agent", "curl/8.5.0"), ("Accept", "*/*"))
    else:
        via = f"2.0 {os.urandom(16).hex()}.cloudfront.net (CloudFront)"
        request["headers"] = _cf_headers(("X-Forwarded-For", CF_CLIENT_IP), ("User-Agent", "Amazon CloudFront"),
                                         ("Via", via), ("Host", CF_ORIGIN))
    request["method"] = params["method"].upper()
    if not event_type.startswith("viewer"):
        request["origin"] = {"custom": {
            "customHeaders": {}, "domainName": CF_ORIGIN, "keepaliveTimeout": 5, "path": "", "port": 443,
            "protocol": "https", "readTimeout": 30, "sslProtocols": ["TLSv1", "TLSv1.1", "TLSv1.2"],
        }}
    request["querystring"] = params["querystring"].lstrip("?")
    request["uri"] = params["uri"]
    return request


def _cf_response(params: Params, now: float) -> dict[str, Any]:
    status = int_param(params, "status", 100, 599)
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    headers = _cf_headers(("Content-Type", "text/html; charset=utf-8"), ("Date", formatdate(now, usegmt=True)),
                          ("Server", "ExampleOrigin"))
    return {"headers": headers, "status": str(status), "statusDescription": phrase}


def _cloudfront(event_type: str, params: Params, now: float) -> dict[str, Any]:
    config = {"distributionDomainName": CF_DOMAIN, "distributionId": params["distribution_id"],
              "eventType": event_type, "requestId": base64.urlsafe_b64encode(os.urandom(40)).decode()}
    cf: dict[str, Any] = {"config": config, "request": _cf_request(event_type, params)}
    if event_type.endswith("response"):
        cf["response"] = _cf_response(params, now)
    return {"Records": [{"cf": cf}]}


def _register_cloudfront() -> None:
    for event_type in ("viewer-request", "origin-request", "origin-response", "viewer-response"):
        extra = {"status": ("200", "HTTP status of the response")} if event_type.endswith("response") else {}
        params = {k: Param(*v) for k, v in {**_CF_PARAMS, **extra}.items()}
        register(Sample(f"cloudfront-{event_type}", f"CloudFront Lambda@Edge {event_type} event", params,
                        partial(_cloudfront, event_type)))


_register_cloudfront()


# --- Cognito user pool triggers ------------------------------------------------------------------

_COGNITO_PARAMS = {"user_pool_id": ("us-east-1_EXAMPLE", "user pool id"), "user_name": ("jdoe", "user name"),
                   "email": ("jdoe@example.com", "the user's email attribute"),
                   "client_id": ("1example23456789", "app client id")}
#: The challenge lambdad's custom-auth samples answer (and expect back).
_ANSWER = "5"
_SRP_A = {"challengeName": "SRP_A", "challengeResult": True, "challengeMetadata": None}


def _user(params: Params, status: str = "CONFIRMED") -> dict[str, str]:
    """A user's attributes as Cognito passes them, with a fresh `sub`."""
    return {"sub": str(uuid.uuid4()), "email_verified": "true" if status == "CONFIRMED" else "false",
            "cognito:user_status": status, "email": params["email"]}


@dataclass(frozen=True)
class CognitoTrigger:
    trigger_source: str
    description: str
    request: Callable[[Params], dict[str, Any]]
    response: Callable[[], dict[str, Any]]


#: Per trigger, what AWS documents in `request` and `response` (nulls where the function fills them in).
COGNITO_TRIGGERS: dict[str, CognitoTrigger] = {
    "pre-signup": CognitoTrigger(
        "PreSignUp_SignUp", "pre sign-up",
        lambda p: {"userAttributes": {"email": p["email"]}, "validationData": {}, "clientMetadata": {}},
        lambda: {"autoConfirmUser": False, "autoVerifyEmail": False, "autoVerifyPhone": False}),
    "pre-authentication": CognitoTrigger(
        "PreAuthentication_Authentication", "pre authentication",
        lambda p: {"userAttributes": _user(p), "validationData": {}, "userNotFound": False}, dict),
    "post-authentication": CognitoTrigger(
        "PostAuthentication_Authentication", "post authentication",
        lambda p: {"userAttributes": _user(p), "newDeviceUsed": False, "clientMetadata": {}}, dict),
    "post-confirmation": CognitoTrigger(
        "PostConfirmation_ConfirmSignUp", "post confirmation",
        lambda p: {"userAttributes": _user(p), "clientMetadata": {}}, dict),
    "pre-token-generation": CognitoTrigger(
        "TokenGeneration_Authentication", "pre token generation, version 1 event",
        lambda p: {"userAttributes": _user(p), "clientMetadata": {},
                   "groupConfiguration": {"groupsToOverride": [], "iamRolesToOverride": [], "preferredRole": None}},
        lambda: {"claimsOverrideDetails": None}),
    "custom-message": CognitoTrigger(
        "CustomMessage_SignUp", "custom message, sign-up code",
        lambda p: {"userAttributes": _user(p, "UNCONFIRMED"), "codeParameter": "{####}",
                   "linkParameter": "{##Click Here##}", "usernameParameter": None, "clientMetadata": {}},
        lambda: {"smsMessage": None, "emailMessage": None, "emailSubject": None}),
    "define-auth-challenge": CognitoTrigger(
        "DefineAuthChallenge_Authentication", "define auth challenge",
        lambda p: {"userAttributes": _user(p), "session": [_SRP_A], "clientMetadata": {}, "userNotFound": False},
        lambda: {"challengeName": None, "issueTokens": None, "failAuthentication": None}),
    "create-auth-challenge": CognitoTrigger(
        "CreateAuthChallenge_Authentication", "create auth challenge",
        lambda p: {"userAttributes": _user(p), "challengeName": "CUSTOM_CHALLENGE", "session": [_SRP_A],
                   "clientMetadata": {}, "userNotFound": False},
        lambda: {"publicChallengeParameters": None, "privateChallengeParameters": None, "challengeMetadata": None}),
    "verify-auth-challenge": CognitoTrigger(
        "VerifyAuthChallengeResponse_Authentication", "verify auth challenge response",
        lambda p: {"userAttributes": _user(p), "privateChallengeParameters": {"answer": _ANSWER},
                   "challengeAnswer": _ANSWER, "clientMetadata": {}, "userNotFound": False},
        lambda: {"answerCorrect": None}),
    "user-migration": CognitoTrigger(
        "UserMigration_Authentication", "user migration, sign-in",
        lambda p: {"password": "Example-Passw0rd", "validationData": {}, "clientMetadata": {}},
        lambda: {"userAttributes": None, "finalUserStatus": None, "messageAction": None,
                 "desiredDeliveryMediums": None, "forceAliasCreation": None, "enableSMSMFA": None}),
}


def _cognito(trigger: CognitoTrigger, params: Params, now: float) -> dict[str, Any]:
    return {
        "version": "1", "triggerSource": trigger.trigger_source, "region": REGION,
        "userPoolId": params["user_pool_id"], "userName": params["user_name"],
        "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": params["client_id"]},
        "request": trigger.request(params), "response": trigger.response(),
    }


def _register_cognito() -> None:
    params = {k: Param(*v) for k, v in _COGNITO_PARAMS.items()}
    for name, trigger in COGNITO_TRIGGERS.items():
        description = f"Cognito user pool {trigger.description} ({trigger.trigger_source})"
        register(Sample(f"cognito-{name}", description, params, partial(_cognito, trigger)))


_register_cognito()


# --- other sources, shaped after AWS's samples ---------------------------------------------------


@sample("s3-batch", "S3 Batch Operations task (invocation schema 1.0)",
        bucket=("examplebucket", "bucket name"), key=("test/key", "object key (sent URL-encoded)"),
        version_id=("", "object version id (default: none, as for an unversioned bucket)"))
def _s3_batch(params: Params, now: float) -> dict[str, Any]:
    return {
        "invocationSchemaVersion": "1.0",
        "invocationId": _opaque_id(36),
        "job": {"id": str(uuid.uuid4())},
        "tasks": [{"taskId": _opaque_id(12), "s3Key": quote(params["key"]), "s3VersionId": params["version_id"] or None,
                   "s3BucketArn": f"arn:aws:s3:::{params['bucket']}"}],
    }


#: The reference sample's slots, for its own intent.
_ORDER_FLOWERS_SLOTS = {"FlowerType": "lilies", "PickupDate": "2030-11-08", "PickupTime": "10:00"}


@sample("lex", "Amazon Lex (V1) code hook event",
        bot=("OrderFlowers", "bot name"), intent=("OrderFlowers", "intent name"),
        invocation_source=("DialogCodeHook", "DialogCodeHook or FulfillmentCodeHook"),
        input=("I would like to order some flowers", "what the user said (inputTranscript)"),
        user_id=("John", "the client's user id"))
def _lex(params: Params, now: float) -> dict[str, Any]:
    slots = dict(_ORDER_FLOWERS_SLOTS) if params["intent"] == "OrderFlowers" else {}
    return {
        "messageVersion": "1.0",
        "invocationSource": params["invocation_source"],
        "userId": params["user_id"],
        "sessionAttributes": {},
        "requestAttributes": None,
        "bot": {"name": params["bot"], "alias": "$LATEST", "version": "$LATEST"},
        "outputDialogMode": "Text",
        "currentIntent": {"name": params["intent"], "slots": slots, "confirmationStatus": "None"},
        "inputTranscript": params["input"],
    }


@sample("alexa", "Alexa Skills Kit LaunchRequest (a new session)",
        application_id=("amzn1.ask.skill.987654321", "skill id"), locale=("en-US", "request locale"))
def _alexa(params: Params, now: float) -> dict[str, Any]:
    application = {"applicationId": params["application_id"]}
    user = {"userId": f"amzn1.ask.account.{secrets.token_hex(16).upper()}"}
    return {
        "version": "1.0",
        "session": {"new": True, "sessionId": f"amzn1.echo-api.session.{uuid.uuid4()}", "application": application,
                    "user": user, "attributes": {}},
        "context": {"AudioPlayer": {"playerActivity": "IDLE"},
                    "System": {"application": dict(application), "user": dict(user),
                               "device": {"supportedInterfaces": {"AudioPlayer": {}}}}},
        "request": {"type": "LaunchRequest", "requestId": f"amzn1.echo-api.request.{uuid.uuid4()}",
                    "timestamp": iso_millis(now)[:19] + "Z", "locale": params["locale"]},
    }


@sample("firehose", "Kinesis Data Firehose data transformation batch of one record",
        stream=("sample-delivery-stream", "delivery stream name"),
        data=("Hello, this is a test 123.", "record data (text; sent base64)"))
def _firehose(params: Params, now: float) -> dict[str, Any]:
    return {
        "invocationId": str(uuid.uuid4()),
        "deliveryStreamArn": f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/{params['stream']}",
        "region": REGION,
        "records": [{"recordId": str(secrets.randbelow(10**56)).zfill(56),
                     "approximateArrivalTimestamp": int(now * 1000),
                     "data": base64.b64encode(params["data"].encode()).decode()}],
    }


@sample("stepfunctions", "Step Functions error output, as a Catch passes it to a Lambda task",
        error=("CustomError", "Error name"), cause=("This is the cause of the error.", "Cause text"))
def _stepfunctions(params: Params, now: float) -> dict[str, Any]:
    return {"Error": params["error"], "Cause": params["cause"]}

