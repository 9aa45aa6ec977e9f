"""The `Report` and its emitters: one module per output format, all rendering the same object."""

from sftgate.report.model import Gate, InputSummary, Report, RuleSummary

EMITTERS = ("text", "json", "markdown", "junit", "sarif", "github")  # --format; html only to a file

__all__ = ["EMITTERS", "Gate", "InputSummary", "Report", "RuleSummary"]
