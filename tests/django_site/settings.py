"""Django settings: django-rq's queues on the test's Redis (REDISCRON_TEST_URL)."""

from __future__ import annotations

import os

SECRET_KEY = "tests-only"
INSTALLED_APPS = ["django_rq"]
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
RQ_QUEUES = {"default": {"URL": os.environ.get("REDISCRON_TEST_URL", "redis://127.0.0.1:6379/0")}}
