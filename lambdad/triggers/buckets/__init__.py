"""Folders as S3 buckets: what counts as an object, the index of what was announced, watching."""
