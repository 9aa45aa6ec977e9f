"""The pipeline (`run.check`, `prepare.prepare`) and its executor (`local`): *when* and *where* rules run."""

from sftgate.engine.run import check

__all__ = ["check"]
