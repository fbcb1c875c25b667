"""The validated manifest as frozen values.

Everything here is resolved: durations are seconds, paths are absolute, defaults are merged. Each
object keeps `where`, its path in the document, so later checks (and hot reload) can point at the
line that defined it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdad.manifest.problems import DocPath

#: AWS's defaults for asynchronous invocation (EventInvokeConfig).
DEFAULT_MAX_RETRY_ATTEMPTS = 2
DEFAULT_MAX_EVENT_AGE_S = 6 * 3600.0
#: Lambda waits about one minute before the second attempt and two before the third.
DEFAULT_BACKOFF_S = (60.0, 120.0)
DEFAULT_TIMEOUT_S = 3
DEFAULT_MEMORY_MB = 128
#: Idle execution environments are shut down after this long (AWS does it after minutes of idleness).
DEFAULT_KEEP_ALIVE_S = 600.0
#: Daemon-wide concurrent environments for functions without reserved concurrency.
DEFAULT_CONCURRENCY = 32
DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "123456789012"
DEFAULT_API_HOST = "127.0.0.1"
DEFAULT_API_PORT = 9001
DEFAULT_S3_EVENTS = ("s3:ObjectCreated:*",)


class TargetKind(enum.StrEnum):
    function = "function"
    queue = "queue"
    bucket = "bucket"
    folder = "folder"


class RecursiveLoop(enum.StrEnum):
    """What Lambda does with an invocation it finds in a recursive loop (`RecursiveLoop`)."""

    terminate = "terminate"  #: stop it, log it, dead-letter its event (AWS's default)
    allow = "allow"


@dataclass(frozen=True)
class Target:
    """Where a dead letter or a destination record goes. `name` is an absolute path for folders."""

    kind: TargetKind
    name: str
    where: DocPath = field(default=(), compare=False)


@dataclass(frozen=True)
class AsyncConfig:
    maximum_retry_attempts: int = DEFAULT_MAX_RETRY_ATTEMPTS
    maximum_event_age_s: float = DEFAULT_MAX_EVENT_AGE_S
    backoff_s: tuple[float, ...] = DEFAULT_BACKOFF_S
    dead_letter: Target | None = None
    on_success: Target | None = None
    on_failure: Target | None = None


@dataclass(frozen=True)
class S3Trigger:
    bucket: str
    events: tuple[str, ...] = DEFAULT_S3_EVENTS
    prefix: str = ""
    suffix: str = ""
    id: str = ""
    where: DocPath = field(default=(), compare=False)


@dataclass(frozen=True)
class ScheduleTrigger:
    name: str
    expression: str
    timezone: str = "UTC"
    input: Any = None
    enabled: bool = True
    description: str = ""
    where: DocPath = field(default=(), compare=False)


@dataclass(frozen=True)
class AlbTrigger:
    listener: str
    path: str = "/*"
    methods: tuple[str, ...] = ()
    host: str | None = None
    priority: int | None = None
    multi_value_headers: bool = False
    where: DocPath = field(default=(), compare=False)


@dataclass(frozen=True)
class ApiTrigger:
    """An API Gateway route on a listener (or, `function_url`, a Lambda function URL: every path and method)."""

    listener: str
    route: str = "$default"  #: "GET /items/{id}", "ANY /{proxy+}", "$default"
    payload_format: str = "2.0"  #: "2.0" (HTTP API) | "1.0" (REST API proxy, or an HTTP API's 1.0 events)
    #: "rest" (a REST API: payload 1.0 only) | "http" (an HTTP API, payload 1.0 or 2.0); "" picks by the format
    api_type: str = ""
    timeout_s: float = 29.0  #: the integration timeout: past it the client gets a 504
    function_url: bool = False
    #: payload 1.0: the REST API's binaryMediaTypes (`image/png`, `image/*`, `*/*`); none by default, as on AWS
    binary_media_types: tuple[str, ...] = ()
    where: DocPath = field(default=(), compare=False)

    @property
    def rest(self) -> bool:
        """A REST API route: it matches the path as sent, has binaryMediaTypes, and a REST API's 403.
        Payload 1.0 means REST unless `api_type: http` says it is an HTTP API sending 1.0 events."""
        kind = self.api_type or ("rest" if self.payload_format == "1.0" else "http")
        return kind == "rest" and not self.function_url


@dataclass(frozen=True)
class SqsTrigger:
    """An event source mapping from a local queue (Lambda polls, then invokes synchronously)."""

    queue: str
    batch_size: int = 10
    maximum_batching_window_s: float = 0.0
    report_batch_item_failures: bool = False
    maximum_concurrency: int | None = None
    enabled: bool = True
    where: DocPath = field(default=(), compare=False)


@dataclass(frozen=True)
class StreamTrigger:
    """An event source mapping from a local stream (`kinesis` or `dynamodb` events)."""

    kind: str  #: "kinesis" | "dynamodb"
    stream: str
    batch_size: int = 100
    starting_position: str = "TRIM_HORIZON"
    starting_position_timestamp: float | None = None
    maximum_batching_window_s: float = 0.0
    maximum_retry_attempts: int = -1  #: -1: until the records expire
    maximum_record_age_s: float = -1.0  #: -1: no limit but the stream's retention
    bisect_batch_on_function_error: bool = False
    report_batch_item_failures: bool = False
    parallelization_factor: int = 1
    on_failure: Target | None = None
    enabled: bool = True
    where: DocPath = field(default=(), compare=False)


Trigger = S3Trigger | ScheduleTrigger | AlbTrigger | ApiTrigger | SqsTrigger | StreamTrigger


@dataclass(frozen=True)
class Function:
    name: str
    handler: str
    code: Path
    python: str
    timeout_s: int = DEFAULT_TIMEOUT_S
    memory_mb: int = DEFAULT_MEMORY_MB
    reserved_concurrency: int | None = None
    recursive_loop: RecursiveLoop = RecursiveLoop.terminate
    keep_alive_s: float = DEFAULT_KEEP_ALIVE_S
    environment: Mapping[str, str] = field(default_factory=dict)
    async_config: AsyncConfig = AsyncConfig()
    events: tuple[Trigger, ...] = ()
    description: str = ""
    where: DocPath = field(default=(), compare=False)


@dataclass(frozen=True)
class Bucket:
    name: str
    path: Path
    versioning: bool = False
    ignore: tuple[str, ...] = ()
    where: DocPath = field(default=(), compare=False)


@dataclass(frozen=True)
class Queue:
    name: str
    fifo: bool = False
    visibility_timeout_s: float = 30.0
    message_retention_s: float = 4 * 86400.0
    delay_s: float = 0.0
    content_based_deduplication: bool = False
    redrive_dead_letter_queue: str | None = None
    redrive_max_receive_count: int | None = None
    where: DocPath = field(default=(), compare=False)


@dataclass(frozen=True)
class Stream:
    name: str
    shards: int = 1
    retention_s: float = 86400.0
    format: str = "kinesis"  #: "kinesis" | "dynamodb"
    #: dynamodb streams: which images records carry (KEYS_ONLY, NEW_IMAGE, OLD_IMAGE, NEW_AND_OLD_IMAGES)
    view_type: str = "NEW_AND_OLD_IMAGES"
    where: DocPath = field(default=(), compare=False)


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class HttpLimits:
    """What every HTTP server grants a client before a request reaches a function (as a front server does)."""

    header_bytes: int = 64 * 1024  #: request line and headers together; past it: 431 and the connection closes
    header_timeout_s: float = 30.0  #: from the connection (or the request's first byte) to the end of its headers
    keep_alive_s: float = 5.0  #: an idle keep-alive connection closes after this long


@dataclass(frozen=True)
class ApiEndpoint(Endpoint):
    """The API's address and who may call it: web pages (by `Origin`) only when listed."""

    allow_origins: tuple[str, ...] = ()
    limits: HttpLimits = HttpLimits()


@dataclass(frozen=True)
class Listener:
    name: str
    endpoint: Endpoint
    #: The function whose `url:` made this listener (it is not in the manifest's `listeners:`).
    url_of: str | None = None
    where: DocPath = field(default=(), compare=False)


@dataclass(frozen=True)
class Manifest:
    file: Path
    region: str = DEFAULT_REGION
    account: str = DEFAULT_ACCOUNT
    concurrency: int = DEFAULT_CONCURRENCY
    durability: str = "normal"
    api: ApiEndpoint = ApiEndpoint(DEFAULT_API_HOST, DEFAULT_API_PORT)
    buckets: Mapping[str, Bucket] = field(default_factory=dict)
    queues: Mapping[str, Queue] = field(default_factory=dict)
    listeners: Mapping[str, Listener] = field(default_factory=dict)
    streams: Mapping[str, Stream] = field(default_factory=dict)
    functions: Mapping[str, Function] = field(default_factory=dict)
    #: Advice on a valid manifest, one `FILE:LINE:COL: path: message` line each.
    warnings: tuple[str, ...] = field(default=(), compare=False)
    #: The text it was read from (the daemon keeps a copy: commands use it while a bad save waits).
    source: str = field(default="", compare=False, repr=False)

    @property
    def folder(self) -> Path:
        return self.file.parent

    def function_arn(self, name: str, qualifier: str | None = None) -> str:
        arn = f"arn:aws:lambda:{self.region}:{self.account}:function:{name}"
        return f"{arn}:{qualifier}" if qualifier else arn
