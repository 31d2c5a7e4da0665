"""What both functions, the consumer and the breaker controller, need: one copy, both import it,
and it imports neither (make lint holds the arrows). Both functions' CodeUri is functions/, so it
ships in each."""
