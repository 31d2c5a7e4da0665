"""Performance and backoff studies. Development only: the function never imports this package."""
