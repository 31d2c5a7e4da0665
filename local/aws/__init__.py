"""The AWS side: the embedded emulator (moto behind the control-plane and fault layers), the
SQS message move tasks, and template.yaml deployed into it (the template read and translated,
its intrinsics resolved, samconfig.toml's environments, stack updates and queue replacement).

May import local.shared only: the Lambda side and the commands stand above it.
"""
