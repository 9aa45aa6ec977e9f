"""The `sftgate` command: parse arguments, call the library, print. No logic lives here.

Exit codes: 0 the gate passed, 1 the gate failed, 2 usage error / invalid rules file /
unreadable input.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from sftgate._version import __version__
from sftgate.errors import SftgateError, UsageError
from sftgate.formats.convert import FORMATS as _FORMATS
from sftgate.report import EMITTERS

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line and exit 2, as argparse does, without usage spam
        self.exit(EXIT_USAGE, f"sftgate: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sftgate", description="Check and gate supervised fine-tuning datasets for "
                                                 "Vertex AI Gemini tuning.")
    parser.add_argument("--version", action="version", version=f"sftgate {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    check = sub.add_parser("check", help="check a training (and validation) JSONL file",
                           description="Stream the file(s), run every enabled rule, print findings, "
                                       "exit 0 (passed), 1 (gate failed) or 2 (usage error).")
    _run_options(check)
    check.add_argument("--format", choices=EMITTERS, default="text",
                       help="what to print on stdout: text (default), json, markdown, junit, sarif or github "
                            "(workflow annotations)")
    _report_options(check)
    check.add_argument("--write-baseline", metavar="FILE",
                       help="record every finding of this run in FILE (exit 0); later runs with --baseline FILE "
                            "fail only on new findings")
    _print_options(check)

    prepare = sub.add_parser("prepare", help="check, clean, split and write Vertex-ready files",
                             description="Check the data, then write what passes to --out (a directory or "
                                         "gs://bucket/prefix): train.jsonl (or shards), validation.jsonl, "
                                         "quarantine.jsonl (every removed line and why), report.json and, last, "
                                         "manifest.json with checksums and the tuning call. Exit 0, 1 (gate "
                                         "failed; the files are still written) or 2.")
    _run_options(prepare)
    prepare.add_argument("--out", required=True, metavar="DIR|gs://BUCKET/PREFIX", help="where to write")
    prepare.add_argument("--overwrite", action="store_true",
                         help="replace sftgate's outputs in a location that holds a finished run or other files")
    prepare.add_argument("--max-shard-bytes", type=_positive, metavar="N",
                         help="start a new training shard before one passes N bytes "
                              "(default: the target's file limit, 1 GB)")
    prepare.add_argument("--max-shard-examples", type=_positive, metavar="N",
                         help="at most N examples per training shard (default: no limit)")
    prepare.add_argument("--format", choices=("text", "json"), default="text",
                         help="what to print on stdout: the findings and a summary, or the manifest")
    _report_options(prepare)
    _print_options(prepare)

    report = sub.add_parser("report", help="render a saved JSON report again, in any format",
                            description="Read a report written by --report-json (or the report.json of a "
                                        "`prepare` output directory) and render it: on stdout with --format, "
                                        "to files with --html, --report-sarif, --report-junit, --summary-md. "
                                        "Exit 0 or 1 as the saved gate says, 2 on errors.")
    report.add_argument("saved", metavar="REPORT.json", help="a JSON report, or a directory holding report.json")
    report.add_argument("--format", choices=EMITTERS, default="text", help="what to print on stdout")
    report.add_argument("--html", metavar="FILE", dest="report_html", help="write the HTML report to FILE")
    report.add_argument("--report-sarif", metavar="FILE", help="write SARIF 2.1.0 to FILE")
    report.add_argument("--report-junit", metavar="FILE", help="write JUnit XML to FILE")
    report.add_argument("--summary-md", metavar="FILE", help="write the Markdown summary to FILE")
    report.add_argument("-q", "--quiet", action="store_true", help="print only the verdict line")
    _print_options(report)

    rules = sub.add_parser("rules", help="list the rules, or explain one",
                           description="Without CODE: every rule with its code, name, default severity "
                                       "and summary. With CODE (or name): its documentation.")
    rules.add_argument("code", nargs="?", metavar="CODE", help="a rule code (STR002) or name")

    sub.add_parser("profiles", help="list the built-in target profiles")

    conv = sub.add_parser("convert", help="write another SFT format (OpenAI, Alpaca, ShareGPT, tables...) as Gemini JSONL",
                          description="Convert a file to Vertex Gemini JSON Lines. Reads JSONL, JSON arrays, CSV and "
                                      "Parquet; exits 0 when every record converted, 1 when some could not be "
                                      "(each listed with its reason), 2 on a usage error.")
    conv.add_argument("input", metavar="IN", help="the file to convert (.jsonl, .json, .csv, .tsv, .parquet; .gz/.zst)")
    conv.add_argument("-o", "--out", required=True, metavar="OUT.jsonl", help="where to write the Gemini JSONL")
    conv.add_argument("--from", dest="input_format", choices=("auto", *_FORMATS), default="auto",
                      help="the records' format (default: detected from the first records)")
    conv.add_argument("--map", metavar="prompt=COL,response=COL[,system=COL]",
                      help="the columns of a table (CSV, Parquet, or JSON records with other keys)")
    conv.add_argument("-q", "--quiet", action="store_true", help="print only the summary line")
    return parser


def _run_options(cmd: argparse.ArgumentParser) -> None:
    """The options `check` and `prepare` share: inputs, profile, rules, tokens."""
    cmd.add_argument("train", metavar="TRAIN.jsonl", help="training data (JSONL; .gz and .zst read too)")
    cmd.add_argument("--validation", metavar="VAL.jsonl", help="validation data")
    cmd.add_argument("--eval", metavar="EVAL", action="append", default=[], dest="eval_sets",
                     help="an eval set to check for leakage from the training data: JSONL examples, or a .txt "
                          "file of one prompt per line; named by its file stem; repeat for more")
    cmd.add_argument("--production", metavar="PROD", action="append", default=[],
                     help="a sample of production prompts to compare the training data with (SKEW rules): JSONL "
                          "of Gemini records (user turns only allowed), OpenAI chat requests, request logs or "
                          "prompt strings, or a .txt file of one prompt per line; repeat for more (pooled)")
    cmd.add_argument("--input-format", choices=("auto", *_FORMATS), default=None,
                     help="how records are read: auto (default) unpacks JSON arrays, CSV and Parquet and converts "
                          "records of another SFT format, detected from the first records; gemini reads them as "
                          "Vertex does; or the format to convert from")
    cmd.add_argument("--map", metavar="prompt=COL,response=COL[,system=COL]",
                     help="the columns of a table input (implies --input-format table unless another is given)")
    cmd.add_argument("--split-validation", metavar="SHARE|N", type=_share_or_count,
                     help="plan a leak-free validation split of TRAIN: a share (0.05) or a number of examples")
    cmd.add_argument("--seed", type=int, default=0, help="seed of the validation split, 0 to 2^64 - 1 (default: %(default)s)")
    cmd.add_argument("--stratify-by", choices=("cluster", "label", "none"), default="cluster",
                     help="balance the split by near-duplicate cluster size or by label (short answers); "
                          "default: %(default)s")
    cmd.add_argument("--keep-source", metavar="POINTER=VALUE[,VALUE...]",
                     help="of each duplicate cluster keep a record whose field at POINTER (a JSON pointer into "
                          "the record as read, e.g. /source) has the most preferred VALUE, listed most preferred "
                          "first (sets dedup.survivor: source)")
    cmd.add_argument("--tokenizer", metavar="SPEC",
                     help="what counts tokens: tiktoken (default, offline cl100k), tiktoken:ENCODING, "
                          "tiktoken:FILE.tiktoken, sentencepiece:MODEL (the Gemma 3 model gives Gemini 2.x's "
                          "exact counts), genai[:MODEL]")
    cmd.add_argument("--exact-tokens", action="store_true",
                     help="count every token, even of inputs over the profile's tokens.exact_below_bytes "
                          "(default: those are estimated from a seeded sample, with a 95%% interval)")
    cmd.add_argument("--epochs", metavar="N[,N...]", type=_epochs,
                     help="epochs for the cost estimate, 1 to 1,000 each (default: 1, 3 and the profile's default)")
    cmd.add_argument("--price-per-million", metavar="PRICE", type=_price,
                     help="price per million training tokens, for a cost line (no price is built in)")
    cmd.add_argument("--profile", default="gemini-2.5-flash",
                     help="target profile: a built-in name (see `sftgate profiles`) or a YAML path "
                          "(default: %(default)s)")
    cmd.add_argument("--rules", metavar="FILE", help="your rules file; it extends --profile unless it "
                                                     "names its own `extends:`")
    cmd.add_argument("--select", metavar="CODES", help="only these rules: codes or prefixes, comma-separated "
                                                       "(e.g. STR,FMT001)")
    cmd.add_argument("--ignore", metavar="CODES", help="skip these rules: codes or prefixes")
    cmd.add_argument("--workers", type=int, metavar="N",
                     help="worker processes (default: one per core); with --executor ray, the CPUs to use "
                          "(default: a local instance's cores, or all of the cluster's)")
    cmd.add_argument("--executor", choices=("local", "ray"), default="local",
                     help="where the work runs: local worker processes (default), or Ray Data (needs the "
                          "ray extra); the outputs are the same")
    cmd.add_argument("--ray-address", metavar="ADDRESS",
                     help="with --executor ray: the cluster to use (auto, ray://HOST:PORT, HOST:PORT); "
                          "default: start a local Ray instance")
    cmd.add_argument("--verify-media", action="store_true",
                     help="ask Cloud Storage whether every gs:// fileUri of the training and validation files "
                          "exists and is within the target's size limit for its modality (MED rules); http(s) "
                          "URIs are not fetched. Needs the gcs extra and read access to the buckets")


def _report_options(cmd: argparse.ArgumentParser) -> None:
    """Report files, the baseline and how much to say: options of `check` and `prepare`."""
    cmd.add_argument("--report-json", metavar="FILE", help="write the JSON report to FILE")
    cmd.add_argument("--report-html", metavar="FILE",
                     help="write a self-contained HTML report (charts, clusters, leaks, every finding) to FILE")
    cmd.add_argument("--report-sarif", metavar="FILE", help="write SARIF 2.1.0 to FILE (GitHub code scanning)")
    cmd.add_argument("--report-junit", metavar="FILE", help="write JUnit XML to FILE: a test case per rule")
    cmd.add_argument("--summary-md", metavar="FILE",
                     help="write a Markdown summary to FILE (a pull-request comment, or $GITHUB_STEP_SUMMARY)")
    cmd.add_argument("--baseline", metavar="FILE",
                     help="leave out the findings recorded in FILE (by --write-baseline): only new ones count")
    cmd.add_argument("-q", "--quiet", action="store_true",
                     help="no progress bar; with text output, print only the verdict line")
    cmd.add_argument("-v", "--verbose", action="store_true",
                     help="print each pass with its time and rate on stderr (instead of a progress bar)")


def _print_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                     help="colour the text output (auto: on a terminal, unless NO_COLOR is set)")
    cmd.add_argument("--no-hints", action="store_true", help="do not print a hint under each finding")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            return _check(args)
        if args.command == "prepare":
            return _prepare(args)
        if args.command == "report":
            return _report(args)
        if args.command == "rules":
            return _rules(args.code)
        if args.command == "profiles":
            return _profiles()
        if args.command == "convert":
            return _convert(args)
        parser.print_help()
        return EXIT_USAGE
    except SftgateError as exc:
        print(f"sftgate: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("sftgate: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `sftgate check ... | head`
        sys.stderr.close()
        return 0


def _check(args: argparse.Namespace) -> int:
    from sftgate.engine.run import execute

    if args.write_baseline and args.baseline:
        raise UsageError("--write-baseline records every finding; it cannot be combined with --baseline")
    progress = _progress(args)
    try:
        execution = execute(args.train, all_findings=bool(args.write_baseline), progress=progress,
                            **_run_arguments(args))
    finally:
        progress.close()
    report = execution.report
    _write_reports(report, args)
    _print(report, args.format, args)
    if args.write_baseline:
        from sftgate import baseline

        entries = baseline.entries(execution.findings)
        _write(Path(args.write_baseline), baseline.render(entries), what="the baseline")
        print(f"sftgate: wrote {args.write_baseline}: {len(entries):,} baseline entries for "
              f"{len(execution.findings):,} findings; run with --baseline {args.write_baseline} to fail only on "
              "new ones", file=sys.stderr)
        return 0
    return report.exit_code


def _progress(args: argparse.Namespace):
    """Quiet: nothing. -v: a line per pass. A terminal outside CI: a bar. Otherwise nothing."""
    from sftgate.engine import progress

    if args.quiet:
        return progress.Progress()
    if args.verbose:
        return progress.PassLog()
    if sys.stderr.isatty() and not os.environ.get("CI"):
        return progress.Bar()
    return progress.Progress()


def _write_reports(report, args: argparse.Namespace) -> None:
    """The report files the options ask for, each by its emitter."""
    for option, fmt in (("report_json", "json"), ("report_html", "html"), ("report_sarif", "sarif"),
                        ("report_junit", "junit"), ("summary_md", "markdown")):
        if getattr(args, option, None):
            _write(Path(getattr(args, option)), _render(report, fmt, args, color=False))


def _render(report, fmt: str, args: argparse.Namespace, *, color: bool) -> bytes:
    import importlib

    if fmt == "text":
        from sftgate.report import text as text_report

        return text_report.render(report, color=color, show_hints=not args.no_hints,
                                  quiet=getattr(args, "quiet", False)).encode("utf-8")
    out = importlib.import_module(f"sftgate.report.{fmt}").render(report)
    return out if isinstance(out, bytes) else out.encode("utf-8")


def _print(report, fmt: str, args: argparse.Namespace) -> None:
    sys.stdout.buffer.write(_render(report, fmt, args, color=_color(args)))
    sys.stdout.flush()


def _report(args: argparse.Namespace) -> int:
    from sftgate.report.model import Report

    path = Path(args.saved)
    if path.is_dir():
        path = path / "report.json"
    try:
        import orjson

        report = Report.from_dict(orjson.loads(path.read_bytes()))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such report") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the report ({exc.strerror or exc})") from None
    except (ValueError, KeyError, TypeError) as exc:  # orjson.JSONDecodeError is a ValueError
        detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc).splitlines()[0]
        raise UsageError(f"{path}: not a sftgate JSON report ({detail})") from None
    _write_reports(report, args)
    _print(report, args.format, args)
    return report.exit_code


def _color(args: argparse.Namespace) -> bool:
    return args.color == "always" or (args.color == "auto" and sys.stdout.isatty() and "NO_COLOR" not in os.environ)


def _run_arguments(args: argparse.Namespace) -> dict:
    from sftgate.config import parse_codes

    return dict(
        validation=args.validation, eval_sets=args.eval_sets, split_validation=args.split_validation,
        seed=args.seed, stratify_by=args.stratify_by, profile=args.profile, rules=args.rules,
        select=parse_codes(args.select), ignore=parse_codes(args.ignore), workers=args.workers,
        tokenizer=args.tokenizer, exact_tokens=args.exact_tokens, epochs=args.epochs,
        price_per_million=args.price_per_million, verify_media=args.verify_media, baseline=args.baseline,
        input_format=args.input_format or ("table" if args.map else None), mapping=args.map,
        production=args.production, keep_source=args.keep_source, executor=args.executor,
        ray_address=args.ray_address,
    )


def _convert(args: argparse.Namespace) -> int:
    from sftgate.engine.convert import convert_file
    from sftgate.rules.convert import CONTAINER_TITLES

    done = convert_file(args.input, args.out, input_format=args.input_format, mapping=args.map)
    if not args.quiet:
        for line, why in done.errors:
            print(f"{done.source}:{line}: CNV001 {why}")
        for line, note in done.noted:
            print(f"{done.source}:{line}: CNV002 {note}")
        listed = len(done.errors) + len(done.noted)
        if listed < done.failed + done.notes:
            print(f"... {done.failed + done.notes - listed:,} more not listed")
    how = "detected" if done.detected else "given"
    print(f"sftgate convert: {done.written:,} {done.format} records ({how}) from a "
          f"{CONTAINER_TITLES.get(done.container, done.container)} file written to {done.output}; "
          f"{done.failed:,} not converted, {done.notes:,} notes, {done.blank:,} blank lines")
    return done.exit_code


def _prepare(args: argparse.Namespace) -> int:
    import orjson

    from sftgate.engine.prepare import prepare
    from sftgate.report import text as text_report

    progress = _progress(args)
    try:
        done = prepare(args.train, out=args.out, overwrite=args.overwrite, max_shard_bytes=args.max_shard_bytes,
                       max_shard_examples=args.max_shard_examples, progress=progress, **_run_arguments(args))
    finally:
        progress.close()
    _write_reports(done.report, args)
    if args.format == "json":
        sys.stdout.buffer.write(orjson.dumps(done.manifest, option=orjson.OPT_INDENT_2) + b"\n")
        sys.stdout.flush()
    else:
        _print(done.report, "text", args)
        if not args.quiet:
            sys.stdout.write(text_report.render_prepared(done.manifest))
    return done.exit_code


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number at least 1")
    return number


def _epochs(value: str) -> list[int]:
    """--epochs: one or more whole numbers >= 1, comma-separated."""
    try:
        out = [int(v) for v in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: give whole numbers of epochs, comma-separated (1,3,5)") from None
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: epochs must be at least 1")
    return out


def _price(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number >= 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"{value!r} is not a price (a number at least 0)")
    return number


def _share_or_count(value: str) -> float:
    """--split-validation: a share in (0, 1) or a whole number of examples (>= 1)."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is neither a share (0.05) nor a number of examples") from None
    if not (0 < number < 1 or (number >= 1 and number.is_integer())):
        raise argparse.ArgumentTypeError(f"{value!r}: give a share between 0 and 1 or a whole number of examples")
    return number


def _write(path: Path, data: bytes, *, what: str = "the report") -> None:
    try:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write {what} ({exc.strerror or exc})") from None


def _rules(code: str | None) -> int:
    from sftgate.config import nearest
    from sftgate.rules import REGISTRY, all_rules

    if code is None:
        rules = all_rules()
        width = max(len(r.name) for r in rules)
        for rule in rules:
            print(f"{rule.code}  {rule.name:<{width}}  {rule.default_severity.value:<7}  {rule.summary()}")
        return 0
    by_name = {r.name: r for r in REGISTRY.values()}
    rule = REGISTRY.get(code.upper()) or by_name.get(code)
    if rule is None:
        match = nearest(code.upper(), list(REGISTRY)) or nearest(code, list(by_name))
        hint = f"; did you mean {match}?" if match else ""
        raise UsageError(f"unknown rule {code!r}{hint} (sftgate rules lists them)")
    print(f"{rule.code} {rule.name}")
    print(f"default severity: {rule.default_severity.value}; default action: {rule.default_action.value}; "
          f"looks at: {_SCOPES[rule.kind]}")
    print()
    print(rule.doc())
    return 0


_SCOPES = {"line": "each line's bytes", "conversion": "each record of another format, while it is converted",
           "object": "each JSON object", "record": "each example",
           "file": "each file as a whole", "dataset": "the features of whole files (several, for leakage)"}


def _profiles() -> int:
    from sftgate._resources import builtin_profiles
    from sftgate.config import DEFAULT_PROFILE, load_profile

    for name in builtin_profiles():
        if name == "base":
            continue
        profile = load_profile(name)
        mark = " (default)" if name == DEFAULT_PROFILE else ""
        print(f"{name}{mark}: {profile.data.get('description', '')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
