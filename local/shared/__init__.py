"""Shared helpers of the local system: where the repository is, the structured log, the live
progress line, the run's deadline and the access key the function signs with.

The floor of local/: imports nothing from the other rooms, and every room may import it.
"""
