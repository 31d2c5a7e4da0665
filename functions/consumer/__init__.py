"""SQS consumer that delivers each message downstream and retries by visibility-timeout backoff."""
