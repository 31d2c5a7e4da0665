"""The circuit breaker's rules, shared by the consumer (which judges what it sees and reports
it) and the breaker controller (which owns the event source mapping): one copy, both import it."""
