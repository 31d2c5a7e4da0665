"""The access key the function's SDK signs with.

The execution environments give it to the function, and the SQS fault layer
(local.downstream.faults.SqsFaults) reads it in each request's signature: it is how that layer
tells the function's calls from the event source mapping's and the runner's. It lives here so
that neither room has to import the other.
"""

from __future__ import annotations

FUNCTION_ACCESS_KEY_ID = "local-function"
