"""What both functions, the consumer and the breaker controller, need: one copy, both import it."""
