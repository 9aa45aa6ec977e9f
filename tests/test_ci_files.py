"""The CI integration the project ships: the pre-commit hook and the GitHub Actions example."""

from __future__ import annotations

import re

import yaml
from conftest import REPO

from sftgate.cli import build_parser


def _check_options() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return {opt for action in sub.choices["check"]._actions for opt in action.option_strings}


def test_pre_commit_hook_runs_check_with_the_documented_args():
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    (hook,) = hooks
    assert hook["id"] == "sftgate" and hook["entry"] == "sftgate check" and hook["language"] == "python"
    assert hook["pass_filenames"] is False
    assert re.search(hook["files"], "data/train.jsonl") and re.search(hook["files"], "rules.yaml")
    assert not re.search(hook["files"], "model.py")
    # The args the header comment shows parse as a check command line.
    documented = re.search(r"args: \[(.*)\]", (REPO / ".pre-commit-hooks.yaml").read_text())
    assert documented is not None
    args = [a.strip() for a in documented.group(1).split(",")]
    parsed = build_parser().parse_args(["check", *args])
    assert parsed.train == "data/train.jsonl" and parsed.validation == "data/validation.jsonl" and parsed.quiet


def test_github_workflow_uses_options_that_exist():
    text = (REPO / "docs" / "ci" / "github-actions.yml").read_text()
    workflow = yaml.safe_load(text)
    steps = workflow["jobs"]["check"]["steps"]
    script = next(s["run"] for s in steps if s.get("name") == "sftgate check")
    assert "sftgate check" in script and "$GITHUB_STEP_SUMMARY" in script
    used = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", script))
    assert used >= {"--format", "--summary-md", "--report-sarif", "--validation", "--baseline"}
    assert used <= _check_options()
    assert "github" in build_parser().parse_args(["check", "t.jsonl", "--format", "github"]).format
    upload = next(s for s in steps if s.get("name") == "Upload SARIF")
    assert upload["uses"].startswith("github/codeql-action/upload-sarif")
    assert workflow["permissions"]["security-events"] == "write"
