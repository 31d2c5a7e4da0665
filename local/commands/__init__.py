"""The commands: what `make run`, `make up`, `make invoke`, `make send`, `make logs`, `make soak`
and `make docs-samples` run (`python -m local.commands.NAME`), the system they start (system.py
wires the emulator, the mapping's pollers, the execution environments, the downstream and the
faults together; run_options.py is what a run is asked and gives back, run_report.py what it
prints), the build they ask for first, and `make up`'s state file.

The top of local/: may import every other room; no room imports it (tools/ may: it sends
through `make up`'s endpoint).
"""
