"""The daemon (`lambdad up`): a lifecycle over components built once from the manifest.

`build` makes the parts, `components` adapts each to one protocol, `serving` is the HTTP side,
`reloading` turns a save into a change record, `report` is what daemon.json says, and
`lifecycle` runs them all.
"""

from lambdad.daemon.lifecycle import DEFAULT_GRACE_S, Daemon, DaemonState

__all__ = ["DEFAULT_GRACE_S", "Daemon", "DaemonState"]
