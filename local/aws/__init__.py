"""The AWS side: the embedded emulator (moto behind Lambda's control-plane layer, with SQS's
message move tasks) and template.yaml deployed into it (the template read and translated, its
intrinsics resolved, samconfig.toml's environments, stack updates and queue replacement).

May import local.shared only: the Lambda side and the commands stand above it. The SQS fault
layer (local.downstream.faults) is put in front of it by the commands, never imported here.
"""
