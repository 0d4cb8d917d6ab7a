"""Limits on what one cron job may hold, and on what rediscron stores about it.

They are module settings, read when used: an application that needs more sets, for example,
``rediscron.limits.MAX_ARGUMENTS_BYTES = 256 * 1024`` before it registers its jobs. The
scheduler applies the same limit to what it reads, so set it where the scheduler runs too.
"""

from __future__ import annotations

#: The most ``args``, ``kwargs`` and ``meta`` of one job may take together, JSON-encoded, in bytes.
#: Every run copies them into its RQ job, and every pass of the scheduler may read them.
MAX_ARGUMENTS_BYTES = 64 * 1024
#: The longest job id, in characters.
MAX_ID_LENGTH = 200
#: Quarantine messages (``last_error``) are cut to this many characters when stored and shown.
MAX_ERROR_CHARS = 300
