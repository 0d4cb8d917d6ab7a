"""rq's own cron tests that fail against rediscron on purpose, and why (docs/api.md lists them too).

Keyed by test id (``file::Class::test``). The harness checks this list both ways: every other
test of rq's cron suite must pass, and every test here must still fail, so the list stays exact.
"""

from __future__ import annotations

SHARED_REGISTRY = (
    "Redis is the source of truth, shared by every scheduler object: a second scheduler sees the "
    "jobs the first registered, and timing set on a job object in memory is not what fires"
)
ONE_SCHEDULER = (
    "one scheduler enqueues at a time: enqueue_jobs() needs the lock (register_birth()), and a "
    "second register_birth() is refused while the first holds it"
)
SERVER_TIME = "time comes from the Redis server (or an injected clock), not from patching rq.cron.now"
JOB_ZONE = "cron is read in the job's timezone (default UTC), never in the host's local time as rq 3 does"
NO_CODE = (
    "what Redis holds is never imported (design.md §4): jobs read back have func=None, and are still "
    "enqueued by dotted path"
)
ID_IS_NAME = "the name of a job is its id (rq defaults it to the function's path)"
NO_RQ_REGISTRY = "rq's cron job registry (rq:cron_jobs) is not written: that key would collide (design.md §1)"
SHORT_HISTORY = "history keeps the 20 newest runs of a job and no TTL (rq: 1,000 and a year), so memory stays bounded"
JSON_ONLY = "arguments must be JSON: they are stored as data, so rq's placeholder for unserializable ones never arises"
HASH_FORM = (
    "to_dict() is the stored hash: compact JSON, and fields that are None left out "
    "(rq's monitoring form is to_rq_dict())"
)
WAKEABLE_WAIT = "the loop waits on a wait that an edit or a signal interrupts, not time.sleep (so the test would hang)"

EXPECTED: dict[str, str] = {
    "tests/test_cron.py::TestCronScheduler::test_all": ONE_SCHEDULER,
    "tests/test_cron.py::TestCronScheduler::test_module_register_forwards_webhooks": ONE_SCHEDULER,
    "tests/test_cron.py::TestCronScheduler::test_enqueue_jobs": f"{SHARED_REGISTRY}; {ONE_SCHEDULER}",
    "tests/test_cron.py::TestCronScheduler::test_calculate_sleep_interval": SHARED_REGISTRY,
    "tests/test_cron.py::TestCronScheduler::test_create_cron_consumes_registry": SHARED_REGISTRY,
    "tests/test_cron.py::TestCronScheduler::test_cron_config_path_finding_method": SHARED_REGISTRY,
    "tests/test_cron.py::TestCronScheduler::test_save_persists_job_timing": SHARED_REGISTRY,
    "tests/test_cron.py::TestCronScheduler::test_calculate_sleep_interval_with_cron_jobs": SERVER_TIME,
    "tests/test_cron.py::TestCronScheduler::test_cron_jobs_run_when_scheduled_time_arrives": SERVER_TIME,
    "tests/test_cron.py::TestCronScheduler::test_multiple_cron_jobs_selective_execution": SERVER_TIME,
    "tests/test_cron.py::TestCronScheduler::test_load_config_from_file_method": NO_CODE,
    "tests/test_cron.py::TestCronScheduler::test_cron_scheduler_save_and_restore": NO_CODE,
    "tests/test_cron_job.py::TestCronJob::test_cron_string_fall_back": JOB_ZONE,
    "tests/test_cron_job.py::TestCronJob::test_cron_string_spring_forward": JOB_ZONE,
    "tests/test_cron_job.py::TestCronJob::test_get_next_enqueue_time_with_cron_string": JOB_ZONE,
    "tests/test_cron_job.py::TestCronJob::test_name": ID_IS_NAME,
    "tests/test_cron_job.py::TestCronJob::test_enqueue_records_name_in_registry": NO_RQ_REGISTRY,
    "tests/test_cron_job.py::TestCronJob::test_job_history_is_trimmed": SHORT_HISTORY,
    "tests/test_cron_job.py::TestCronJob::test_job_history_ttl": SHORT_HISTORY,
    "tests/test_cron_job.py::TestCronJob::test_non_serializable_arguments": JSON_ONLY,
    "tests/test_cron_job.py::TestCronJob::test_cron_job_serialization_roundtrip": HASH_FORM,
    "tests/test_cron_job.py::TestCronJob::test_to_dict_returns_json_strings_for_serializable_values": HASH_FORM,
}

#: Not run at all: they would wait on purpose (an expected difference that costs time).
NOT_RUN: dict[str, str] = {
    "tests/test_cron.py::TestCronScheduler::test_start_loop": WAKEABLE_WAIT,
}
