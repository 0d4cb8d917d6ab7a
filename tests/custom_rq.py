"""rq subclasses a cron job can name as its queue_class and job_class."""

from __future__ import annotations

from rq.job import Job
from rq.queue import Queue


class AuditJob(Job):
    pass


class AuditQueue(Queue):
    job_class = AuditJob
