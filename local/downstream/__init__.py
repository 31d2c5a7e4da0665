"""The world around the function: the demo downstream (an HTTP service that fails on demand, run
in-process or as a process of its own) and the faults injected where AWS and the network would
produce them (the downstream, the SQS API, the execution environments), with their flags.

May import local.shared only: neither side of AWS nor the commands. The AWS and Lambda sides
meet the faults only through what the commands wire in (a WSGI layer, a Killable protocol).
"""
