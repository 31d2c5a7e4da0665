"""The local system: template.yaml deployed into an embedded AWS emulator, the built function run
the way Lambda runs it, a demo downstream that fails on demand, and a reconciliation.

Nothing here is deployed; `make run`, `make up`, `make invoke`, `make send`, `make logs` and
`make soak` are its entry points (local.commands). Its rooms, each importing only those below
it (docs/code-map.md; `make lint` checks it): commands, checks, lambda_service and downstream
(apart from each other), aws (below lambda_service only), shared.
"""
