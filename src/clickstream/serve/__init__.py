"""Live dashboard, REST API and Prometheus metrics over a job's result tables and status."""

from clickstream.serve.access import Access
from clickstream.serve.app import ServerHandle, create_app, serve, start_in_thread
from clickstream.serve.status import JobStatusDict, QueryStatus, RateTracker, job_status

__all__ = [
    "Access",
    "JobStatusDict",
    "QueryStatus",
    "RateTracker",
    "ServerHandle",
    "create_app",
    "job_status",
    "serve",
    "start_in_thread",
]
