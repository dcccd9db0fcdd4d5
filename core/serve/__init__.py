"""How the API is served: granian or gunicorn, workers and their shared metrics."""
