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
from sftgate.report import EMITTERS

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line and exit 2, as argparse does, without usage spam
        self.exit(EXIT_USAGE, f"sftgate: error: {message} (see sftgate {self.prog.split()[-1]} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sftgate", description="Check and gate supervised fine-tuning datasets for "
                                                 "Vertex AI Gemini tuning.")
    parser.add_argument("--version", action="version", version=f"sftgate {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    check = sub.add_parser("check", help="check a training (and validation) JSONL file",
                           description="Stream the file(s), run every enabled rule, print findings, "
                                       "exit 0 (passed), 1 (gate failed) or 2 (usage error).")
    _run_options(check)
    check.add_argument("--report-json", metavar="FILE", help="write the JSON report to FILE")
    check.add_argument("--format", choices=EMITTERS, default="text", help="what to print on stdout")
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
    _print_options(prepare)

    rules = sub.add_parser("rules", help="list the rules, or explain one",
                           description="Without CODE: every rule with its code, name, default severity "
                                       "and summary. With CODE (or name): its documentation.")
    rules.add_argument("code", nargs="?", metavar="CODE", help="a rule code (STR002) or name")

    sub.add_parser("profiles", help="list the built-in target profiles")
    return parser


def _run_options(cmd: argparse.ArgumentParser) -> None:
    """The options `check` and `prepare` share: inputs, profile, rules, tokens."""
    cmd.add_argument("train", metavar="TRAIN.jsonl", help="training data (JSONL; .gz and .zst read too)")
    cmd.add_argument("--validation", metavar="VAL.jsonl", help="validation data")
    cmd.add_argument("--eval", metavar="EVAL", action="append", default=[], dest="eval_sets",
                     help="an eval set to check for leakage from the training data: JSONL examples, or a .txt "
                          "file of one prompt per line; named by its file stem; repeat for more")
    cmd.add_argument("--split-validation", metavar="SHARE|N", type=_share_or_count,
                     help="plan a leak-free validation split of TRAIN: a share (0.05) or a number of examples")
    cmd.add_argument("--seed", type=int, default=0, help="seed of the validation split (default: %(default)s)")
    cmd.add_argument("--stratify-by", choices=("cluster", "label", "none"), default="cluster",
                     help="balance the split by near-duplicate cluster size or by label (short answers); "
                          "default: %(default)s")
    cmd.add_argument("--tokenizer", metavar="SPEC",
                     help="what counts tokens: tiktoken (default, offline cl100k), tiktoken:ENCODING, "
                          "tiktoken:FILE.tiktoken, sentencepiece:MODEL (the Gemma 3 model gives Gemini 2.x's "
                          "exact counts), genai[:MODEL]")
    cmd.add_argument("--exact-tokens", action="store_true",
                     help="count every token, even of inputs over the profile's tokens.exact_below_bytes "
                          "(default: those are estimated from a seeded sample, with a 95%% interval)")
    cmd.add_argument("--epochs", metavar="N[,N...]", type=_epochs,
                     help="epochs for the cost estimate (default: 1, 3 and the profile's default)")
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
    cmd.add_argument("--workers", type=int, metavar="N", help="worker processes (default: one per core)")
    cmd.add_argument("--verify-media", action="store_true",
                     help="ask Cloud Storage whether every gs:// fileUri of the training and validation files "
                          "exists and is within the target's size limit for its modality (MED rules); http(s) "
                          "URIs are not fetched. Needs the gcs extra and read access to the buckets")


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
        if args.command == "rules":
            return _rules(args.code)
        if args.command == "profiles":
            return _profiles()
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
    from sftgate.engine import check
    from sftgate.report import json as json_report
    from sftgate.report import text as text_report

    report = check(args.train, **_run_arguments(args))
    if args.report_json:
        _write(Path(args.report_json), json_report.render(report))
    if args.format == "json":
        sys.stdout.buffer.write(json_report.render(report))
        sys.stdout.flush()
    else:
        sys.stdout.write(text_report.render(report, color=_color(args), show_hints=not args.no_hints))
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
        price_per_million=args.price_per_million, verify_media=args.verify_media,
    )


def _prepare(args: argparse.Namespace) -> int:
    import orjson

    from sftgate.engine.prepare import prepare
    from sftgate.report import text as text_report

    done = prepare(args.train, out=args.out, overwrite=args.overwrite, max_shard_bytes=args.max_shard_bytes,
                   max_shard_examples=args.max_shard_examples, **_run_arguments(args))
    if args.format == "json":
        sys.stdout.buffer.write(orjson.dumps(done.manifest, option=orjson.OPT_INDENT_2) + b"\n")
        sys.stdout.flush()
    else:
        sys.stdout.write(text_report.render(done.report, color=_color(args), show_hints=not args.no_hints))
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


def _write(path: Path, data: bytes) -> None:
    try:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write the report ({exc.strerror or exc})") from None


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


_SCOPES = {"line": "each line's bytes", "object": "each JSON object", "record": "each example",
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
