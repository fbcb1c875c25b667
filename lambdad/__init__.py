"""lambdad: AWS-Lambda-style functions on one machine, driven by a YAML manifest.

Kept free of imports: worker processes import `lambdad.runtime` under any interpreter.
"""

__version__ = "0.1.0"
