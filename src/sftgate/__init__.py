"""sftgate: check, clean and gate supervised fine-tuning datasets for Vertex AI Gemini tuning.

    >>> import sftgate
    >>> report = sftgate.check("train.jsonl", validation="val.jsonl", profile="gemini-2.5-flash")
    >>> report.passed, report.exit_code
    >>> done = sftgate.prepare("train.jsonl", split_validation=0.05, out="gs://bucket/sft/run1")
    >>> done.manifest["tuning"]["training_dataset_uri"], done.exit_code
"""

from sftgate._version import __version__
from sftgate.config import Profile, load_profile
from sftgate.engine import check
from sftgate.engine.prepare import Prepared, prepare
from sftgate.errors import ConfigError, SftgateError, SourceError, UsageError
from sftgate.model import Action, Example, Finding, LineStatus, Severity
from sftgate.report import Report
from sftgate.rules import all_rules

__all__ = [
    "Action",
    "ConfigError",
    "Example",
    "Finding",
    "LineStatus",
    "Prepared",
    "Profile",
    "Report",
    "Severity",
    "SftgateError",
    "SourceError",
    "UsageError",
    "__version__",
    "all_rules",
    "check",
    "load_profile",
    "prepare",
]
