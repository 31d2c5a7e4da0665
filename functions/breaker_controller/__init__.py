"""The circuit breaker's controller: the one owner of the consumer's event source mapping."""
