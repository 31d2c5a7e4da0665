"""The checks: what a run is judged by. The reconciliation of every message sent against the
downstream's record, the soak's checks, the recorders of what entered the queues and of the
calls the function says it made, the mapping's timeline read as the breaker's story, and the
estimate of a run's length.

May import the Lambda side, the AWS side, the downstream and local.shared: it reads what they
recorded. Only the commands import it.
"""
