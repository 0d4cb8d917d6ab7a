"""rq subclasses a cron job can name as its queue_class and job_class."""

from __future__ import annotations

from rq.job import Job
from rq.queue import Queue


class AuditJob(Job):
    pass


class AuditQueue(Queue):
    job_class = AuditJob


class TenantJob(Job):
    """Writes a field Redis cannot store when the job has no tenant (None)."""

    def to_dict(self, *args: object, **kwargs: object) -> dict:  # type: ignore[type-arg,override]
        data = super().to_dict(*args, **kwargs)  # type: ignore[arg-type]
        data["tenant"] = self.meta.get("tenant")
        return data


class NonceJob(Job):
    """Writes a field that differs on every run: no template can stand for its runs."""

    def to_dict(self, *args: object, **kwargs: object) -> dict:  # type: ignore[type-arg,override]
        import uuid

        data = super().to_dict(*args, **kwargs)  # type: ignore[arg-type]
        data["nonce"] = uuid.uuid4().hex
        return data


class OwnerJob(Job):
    """Writes the cron job it runs for into a field of its own: the same on each of a job's runs, not
    from job to job."""

    def to_dict(self, *args: object, **kwargs: object) -> dict:  # type: ignore[type-arg,override]
        data = super().to_dict(*args, **kwargs)  # type: ignore[arg-type]
        data["owner"] = str(self.meta.get("rediscron_id"))
        return data
