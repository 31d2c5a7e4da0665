"""The local system: template.yaml deployed into an embedded AWS emulator, the built function run
the way Lambda runs it, a demo downstream that fails on demand, and a reconciliation.

Nothing here is deployed; `make run`, `make invoke` and `make send` are its entry points.
"""
