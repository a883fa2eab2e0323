"""Applications served by real gunicorn and uvicorn processes in ``test_prefork_servers``."""
