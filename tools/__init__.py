"""Operator tools for a deployed stack (not deployed themselves): the DLQ's peek and redrive."""
