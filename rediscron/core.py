"""The public classes, importable from where the specification places them."""

from .job import RedisCronJob
from .scheduler import RedisCronScheduler

__all__ = ["RedisCronJob", "RedisCronScheduler"]
