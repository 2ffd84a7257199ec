"""Batch inference past one process: Ray Data jobs over many images and long videos.

Optional: ``pip install 'resemotenet[ray]'``. Ray is imported only when a job starts, so
``import resemotenet.scale`` works without it (and raises ``MissingExtraError`` on use).
"""

from .items import WorkItem, plan
from .job import run_batch, size_actors

__all__ = ["WorkItem", "plan", "run_batch", "size_actors"]
