"""The pipeline (`run.check`) and its executor (`local`): *when* and *where* rules run."""

from sftgate.engine.run import check

__all__ = ["check"]
