"""Sample events for `lambdad event generate`: the registry and `--set` (registry.py), the sources
lambdad triggers itself (triggers.py), and the callers it has no trigger for (callers.py)."""

from lambdad.payloads.samples import callers, triggers  # noqa: F401 (importing them registers their sources)
from lambdad.payloads.samples.registry import (
    ACCOUNT,
    REGION,
    SAMPLES,
    Param,
    Sample,
    SampleError,
    find,
    generate,
    register,
    set_path,
)

__all__ = ["ACCOUNT", "REGION", "SAMPLES", "Param", "Sample", "SampleError", "find", "generate", "register", "set_path"]
