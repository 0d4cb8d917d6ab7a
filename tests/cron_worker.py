"""A CronWorker whose lock expires quickly, for the takeover tests (`rq worker --worker-class`)."""

from __future__ import annotations

from rediscron.worker import CronWorker


class QuickCronWorker(CronWorker):
    lock_ttl = 3
    cron_max_sleep_interval = 1.0
