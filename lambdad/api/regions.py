"""The region a request was signed for, and the warning when it is not the manifest's."""

from __future__ import annotations

import re
from collections.abc import Callable

_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]*/\d{8}/([^/,\s]+)/")


def signed_region(authorization: str | None, query_credential: str | None = None) -> str | None:
    """The region a SigV4 request was signed for: the third field of its credential scope
    (`Credential=AKID/20240101/eu-west-2/lambda/aws4_request`), from the Authorization header or a
    presigned URL's X-Amz-Credential; None when the request carries no SigV4 signature."""
    if authorization:
        found = _CREDENTIAL_SCOPE.search(authorization)
        if found:
            return found.group(1)
    if query_credential:
        parts = query_credential.split("/")
        if len(parts) >= 3 and parts[1].isdigit():
            return parts[2]
    return None


_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$")
#: Regions warned about at most (each once): a client cannot fill the console by inventing regions.
MAX_REGION_WARNINGS = 32


class RegionWarnings:
    """AWS refuses a call signed for another region than the endpoint's; lambdad has one region and
    serves the call, but says so once per region seen (not per call: the CLI may send many)."""

    def __init__(self, warn: Callable[[str], None] | None) -> None:
        self._warn = warn
        self._seen: set[tuple[str, str]] = set()

    def check(self, region: str | None, manifest_region: str) -> None:
        if self._warn is None or region is None or region == manifest_region:
            return
        if (region, manifest_region) in self._seen or len(self._seen) >= MAX_REGION_WARNINGS:
            return
        if not _REGION.match(region):  # not a region (a hand-made header): nothing to say about it
            return
        self._seen.add((region, manifest_region))
        self._warn(f"a call signed for region {region} is served as the manifest's region {manifest_region}: "
                   f"lambdad has one region, and ARNs in its answers say {manifest_region}; AWS would refuse "
                   "the call (set region: in the manifest, or the client's region, to match)")

