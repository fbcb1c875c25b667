"""Execution environments: the worker processes that run handlers, and the parent side that drives them."""
