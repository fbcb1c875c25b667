"""Pure builders of the payloads AWS sends: plain values in, JSON-ready dicts out, no I/O, no clock."""
