"""The Lambda side: what runs the function as Lambda runs it. Its invokers (the SQS event source
mapping's pollers with their event and batch-response rules, the scheduled rules, the Invoke
router) and the execution environments they run it in (the function's code unpacked, the
bootstrap inside each environment, the context object).

May import local.aws (the emulator it polls and reads the deployment from) and local.shared;
never the downstream, the checks or the commands.
"""
