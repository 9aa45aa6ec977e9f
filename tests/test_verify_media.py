"""`--verify-media`: the MED rules and the report's `media` section, against a real Cloud Storage
JSON API on loopback (`gcp-storage-emulator`, tests/gcs_server.py) through the real client.

The rule cases in tests/rules/cases/MED*.yaml are run here with the flag (the generic runner
runs them without it, where they must find nothing).
"""

from __future__ import annotations

import gzip
import json
import socket
import sys
from pathlib import Path

import pytest
import yaml

import sftgate
from sftgate.engine.prepare import prepare
from sftgate.errors import SftgateError
from sftgate.io import gcs
from sftgate.report.model import REPORT_VERSION
from sftgate.report import text as text_report

CASES = Path(__file__).parent / "rules" / "cases"
# What the case files' gs://sftgate-cases bucket holds (see MED001.yaml).
CASE_OBJECTS = {"img/cat.png": 1_000, "img/poster.png": 6_000, "audio/talk.mp3": 5_000}
IMAGE_LIMIT = 4096  # the rules file lowers the image limit so that the "large" image stays small


def put(uri: str, size: int) -> None:
    gcs.upload_bytes(b"\x89" * size, uri, content_type="application/octet-stream")


def file_part(uri: str, mime: str = "image/png") -> dict:
    return {"fileData": {"mimeType": mime, "fileUri": uri}}


def example(question: str, *parts: dict, answer: str = "It is what it looks like.") -> dict:
    return {"contents": [{"role": "user", "parts": [{"text": question}, *parts]},
                         {"role": "model", "parts": [{"text": answer}]}]}


def uri_pointer(turn: int, part: int) -> str:
    return f"/contents/{turn}/parts/{part}/fileData/fileUri"


def med(report: sftgate.Report) -> list[tuple[str, str, int | None, str | None]]:
    return [(f.code, Path(f.source).name, f.line, f.pointer) for f in report.findings if f.code.startswith("MED")]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dataset(gcs_bucket, tmp_path, write_jsonl):
    """A training and a validation file whose fileData parts name existing, missing and too large
    objects (and an https URI), and a rules file that lowers the image limit."""
    root = f"gs://{gcs_bucket}"
    put(f"{root}/img/cat.png", 1_000)
    put(f"{root}/img/big.png", 6_000)
    put(f"{root}/video/clip.mp4", 9_000)
    train = write_jsonl(tmp_path / "train.jsonl", [
        example("What animal is this?", file_part(f"{root}/img/cat.png")),
        example("What breed is this dog?", file_part(f"{root}/img/dog.png")),
        example("What is on this poster?", file_part(f"{root}/img/big.png")),
        example("Are these the same animal?", file_part("https://example.com/cat.png"), file_part(f"{root}/img/cat.png")),
        example("What is the capital of France?", answer="Paris."),
        example("Compare the two.", file_part(f"{root}/img/big.png"), file_part(f"{root}/img/dog.png")),
    ])
    validation = write_jsonl(tmp_path / "val.jsonl", [
        example("Which dog is it?", file_part(f"{root}/img/dog.png")),
        example("What happens in the clip?", file_part(f"{root}/video/clip.mp4", "video/mp4")),
    ])
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"media": {"image": {"max_bytes": IMAGE_LIMIT}}}), encoding="utf-8")
    return {"root": root, "train": train, "validation": validation, "rules": rules}


def check(dataset: dict, **options) -> sftgate.Report:
    options = {"workers": 1, "verify_media": True, **options}
    return sftgate.check(str(dataset["train"]), validation=str(dataset["validation"]), rules=str(dataset["rules"]),
                         **options)


# --- check --verify-media -------------------------------------------------------------------------

def test_findings_summary_and_gate(dataset, validate_report):
    report = check(dataset)
    root = dataset["root"]
    assert med(report) == [
        ("MED001", "train.jsonl", 2, uri_pointer(0, 1)),
        ("MED002", "train.jsonl", 3, uri_pointer(0, 1)),
        ("MED001", "train.jsonl", 6, uri_pointer(0, 2)),
        ("MED002", "train.jsonl", 6, uri_pointer(0, 1)),
        ("MED001", "val.jsonl", 1, uri_pointer(0, 1)),
    ]
    by_line = {(Path(f.source).name, f.line, f.code): f for f in report.findings}
    assert by_line["train.jsonl", 2, "MED001"].message == f'media file "{root}/img/dog.png" does not exist'
    assert by_line["train.jsonl", 3, "MED002"].message == (
        f'image "{root}/img/big.png" is 6,000 bytes (5.9 KiB); gemini-2.5-flash accepts at most '
        f"4,096 bytes (4.0 KiB) per image")
    assert by_line["train.jsonl", 3, "MED002"].hint == "downscale or re-encode it (JPEG, WebP)"
    assert report.media == {
        "references": 9, "uris": 5, "checked": 4, "found": 3, "missing": 1, "too_large": 1, "unreadable": 0,
        "unreadable_buckets": [], "not_verified": 1, "other_schemes": 0,
        "by_modality": {"image": {"objects": 2, "bytes": 7_000, "largest": 6_000},
                        "video": {"objects": 1, "bytes": 9_000, "largest": 9_000}},
    }
    # Lines with an error finding fail the gate: train 2, 3, 6 and validation 1.
    assert not report.passed and report.gate.failing_lines == 4
    assert {r.code: r.count for r in report.rules if r.code.startswith("MED")} == {"MED001": 3, "MED002": 2}
    data = json.loads(json.dumps(report.to_dict()))
    validate_report(data)
    assert data["report_version"] == REPORT_VERSION and data["media"] == report.media
    assert list(data)[-3:] == ["media", "suppressed", "examples"]
    shown = text_report.render(report)
    assert ("media: 4 gs:// file(s) checked, 1 missing, 1 too large; 1 not verified (1 http(s), not fetched; "
            "0 in unreadable buckets); found: image 2 (6.8 KiB), video 1 (8.8 KiB)\n") in shown


def test_select_and_ignore_apply_to_the_media_rules(dataset):
    only_large = check(dataset, select=["MED002"])
    assert {f.code for f in only_large.findings} == {"MED002"}
    assert only_large.media is not None and only_large.media["missing"] == 1  # the summary is whole
    ignored = check(dataset, ignore=["MED"])
    assert med(ignored) == [] and ignored.media is None  # no media rule: Cloud Storage is not asked


def test_many_uris_in_one_prefix_are_answered_by_a_listing(gcs_bucket, tmp_path, write_jsonl, monkeypatch):
    root = f"gs://{gcs_bucket}"
    for i in range(40):
        put(f"{root}/shots/{i:03d}.png", 100 + i)
    put(f"{root}/top.png", 10)
    wanted = [f"{root}/shots/{i:03d}.png" for i in range(45)]  # 40 there, 5 not
    rows = [example(f"What is in shot {i}?", file_part(uri)) for i, uri in enumerate(wanted)]
    rows.append(example("And this?", file_part(f"{root}/top.png"), file_part(wanted[0])))
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    listed = []
    real_list_group = gcs._list_group
    monkeypatch.setattr(gcs, "_list_group", lambda *a: listed.append(a[1]) or real_list_group(*a))
    report = sftgate.check(str(train), verify_media=True, workers=1)
    assert listed == ["shots"]  # one listing for shots/; top.png by a single request
    assert med(report) == [("MED001", "train.jsonl", n, uri_pointer(0, 1)) for n in range(41, 46)]
    media = report.media
    assert (media["references"], media["checked"], media["found"], media["missing"]) == (47, 46, 41, 5)
    assert media["by_modality"]["image"] == {"objects": 41, "bytes": sum(range(100, 140)) + 10, "largest": 139}


def test_a_uri_used_by_many_records_is_one_finding_per_record_capped_in_the_report(
        gcs_bucket, tmp_path, write_jsonl):
    root = f"gs://{gcs_bucket}"
    rows = [example(f"Question {i} about the missing chart?", file_part(f"{root}/charts/gone.png")) for i in range(30)]
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"report": {"max_findings_per_rule": 10}}), encoding="utf-8")
    report = sftgate.check(str(train), rules=str(rules), verify_media=True, workers=1)
    assert [f.line for f in report.findings if f.code == "MED001"] == list(range(1, 11))
    assert next(r for r in report.rules if r.code == "MED001").count == 30
    assert report.gate.failing_lines == 30
    assert report.media["checked"] == 1 and report.media["missing"] == 1


def test_gs_training_file_is_read_again_from_cloud_storage(dataset):
    uri = f"{dataset['root']}/in/train.jsonl.gz"
    gcs.upload_bytes(gzip.compress(dataset["train"].read_bytes()), uri, content_type="application/gzip")
    report = sftgate.check(uri, rules=str(dataset["rules"]), verify_media=True, workers=1)
    assert [(f.code, f.source, f.line) for f in report.findings if f.code.startswith("MED")] == [
        ("MED001", uri, 2), ("MED002", uri, 3), ("MED001", uri, 6), ("MED002", uri, 6)]


def test_one_and_two_workers_give_the_same_report(dataset, without_volatile):
    one = check(dataset, workers=1)
    two = check(dataset, workers=2)
    assert without_volatile(one) == without_volatile(two)


def test_uris_that_cannot_name_an_object_need_no_request(tmp_path, write_jsonl, monkeypatch):
    def no_client():
        raise AssertionError("Cloud Storage was asked")

    monkeypatch.setattr(gcs, "_client", no_client)
    first = b"\xef\xbb\xbf" + json.dumps(example("A local file?", file_part("file:cat.png"))).encode()
    train = write_jsonl(tmp_path / "train.jsonl", [  # a BOM and CRLF endings: lines counted as the pass counts them
        first,
        example("A bucket only?", file_part("gs://just-a-bucket")),
        example("A bad bucket name?", file_part("gs://My_Bucket/cat.png")),
        example("On the web?", file_part("http://example.com/cat.png")),
    ], eol=b"\r\n")
    report = sftgate.check(str(train), verify_media=True, select=["MED"], workers=1)
    assert med(report) == [("MED001", "train.jsonl", 3, uri_pointer(0, 1))]
    assert "invalid bucket name 'My_Bucket'" in report.findings[0].message
    media = report.media
    assert (media["uris"], media["checked"], media["missing"], media["not_verified"], media["other_schemes"]) == \
        (4, 1, 1, 1, 2)


# --- without the flag ---------------------------------------------------------------------------------

def test_without_the_flag_nothing_touches_the_network(dataset, monkeypatch, run_cli):
    def no_client():
        raise AssertionError("Cloud Storage was asked")

    monkeypatch.setattr(gcs, "_client", no_client)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{closed_port()}")
    report = check(dataset, verify_media=False)
    assert med(report) == [] and report.media is None and "media" not in report.to_dict()
    assert report.passed
    done = run_cli("check", dataset["train"], "--validation", dataset["validation"], "--rules", dataset["rules"],
                   env={"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{closed_port()}"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "MED" not in done.stdout and "media:" not in done.stdout


# --- the command line ----------------------------------------------------------------------------------

def test_cli_check_verify_media(dataset, run_cli, validate_report):
    args = ["check", dataset["train"], "--validation", dataset["validation"], "--rules", dataset["rules"],
            "--verify-media", "--workers", "1"]
    done = run_cli(*args, "--format", "json")
    assert done.returncode == 1, done.stderr
    data = json.loads(done.stdout)
    validate_report(data)
    assert data["media"]["missing"] == 1 and data["media"]["too_large"] == 1
    assert sorted((f["code"], f["line"]) for f in data["findings"] if f["code"].startswith("MED")) == [
        ("MED001", 1), ("MED001", 2), ("MED001", 6), ("MED002", 3), ("MED002", 6)]
    text = run_cli(*args, "--select", "MED001", "--no-hints")
    assert text.returncode == 1
    assert f"train.jsonl:2:/contents/0/parts/1/fileData/fileUri MED001 [error] media file " \
           f"\"{dataset['root']}/img/dog.png\" does not exist" in text.stdout
    assert "MED002 [error]" not in text.stdout
    assert "media: 4 gs:// file(s) checked, 1 missing, 1 too large;" in text.stdout


def test_cli_without_the_gcs_extra_is_one_line_exit_2(dataset, tmp_path, run_cli, assert_usage_error):
    shadow = tmp_path / "shadow"  # a sitecustomize that makes `import google.cloud.storage` fail
    shadow.mkdir()
    (shadow / "sitecustomize.py").write_text("import sys\nsys.modules['google.cloud.storage'] = None\n")
    done = run_cli("check", dataset["train"], "--verify-media", env={"PYTHONPATH": str(shadow)})
    assert_usage_error(done, "needs the gcs extra", "pip install 'sftgate[gcs]'")


def test_missing_credentials_is_one_line(dataset, monkeypatch, tmp_path):
    monkeypatch.setattr(gcs, "_clients", {})
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-such-key.json"))
    with pytest.raises(SftgateError) as caught:
        check(dataset)
    assert "gcloud auth application-default login" in str(caught.value) and "\n" not in str(caught.value)


def test_library_without_the_gcs_extra(dataset, monkeypatch):
    monkeypatch.setitem(sys.modules, "google.cloud.storage", None)
    monkeypatch.setattr(gcs, "_clients", {})
    with pytest.raises(SftgateError, match=r"^reading or writing gs:// needs the gcs extra"):
        check(dataset)


# --- prepare --verify-media -----------------------------------------------------------------------------

def test_prepare_quarantines_records_with_missing_or_too_large_media(dataset, tmp_path):
    out = tmp_path / "out"
    done = prepare(str(dataset["train"]), validation=str(dataset["validation"]), rules=str(dataset["rules"]),
                   out=str(out), verify_media=True, workers=1)
    quarantine = [json.loads(line) for line in (out / "quarantine.jsonl").read_text().splitlines()]
    assert [(Path(q["source"]).name, q["line"], q["codes"]) for q in quarantine] == [
        ("train.jsonl", 2, ["MED001"]), ("train.jsonl", 3, ["MED002"]), ("train.jsonl", 6, ["MED001", "MED002"]),
        ("val.jsonl", 1, ["MED001"])]
    assert quarantine[0]["reasons"][0]["pointer"] == uri_pointer(0, 1)
    assert "img/dog.png" in quarantine[0]["record"]
    counts = done.manifest["counts"]
    assert (counts["train_examples"], counts["validation_examples"], counts["quarantined"]) == (3, 1, 4)
    assert counts["quarantined_by_rule"] == {"MED001": 3, "MED002": 2}
    written = (out / "train.jsonl").read_text()
    assert "dog.png" not in written and "big.png" not in written
    assert json.loads((out / "report.json").read_text())["media"] == done.report.media
    without = prepare(str(dataset["train"]), validation=str(dataset["validation"]), rules=str(dataset["rules"]),
                      out=str(tmp_path / "plain"), workers=1)
    assert without.manifest["counts"]["quarantined"] == 0


# --- the rule cases, with the flag ------------------------------------------------------------------

def _case_params() -> list:
    params = []
    for path in sorted(CASES.glob("MED*.yaml")):
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        for name, case in spec["cases"].items():
            params.append(pytest.param(spec, case, id=f"{path.stem}-{name}"))
    return params


def _deny(monkeypatch: pytest.MonkeyPatch, bucket: str) -> None:
    """Cloud Storage answers 403 for every object of `bucket`, as it does without storage.objects.get."""
    from google.api_core.exceptions import Forbidden

    real_stat = gcs._stat

    def stat(bucket_name: str, name: str, uri: str):
        if bucket_name == bucket:
            raise gcs._failure(Forbidden("caller does not have storage.objects.get access"), uri)
        return real_stat(bucket_name, name, uri)

    monkeypatch.setattr(gcs, "_stat", stat)


@pytest.mark.parametrize(("spec", "case"), _case_params())
def test_med_case_with_the_flag(spec, case, gcs_bucket, tmp_path, monkeypatch):
    for name, size in CASE_OBJECTS.items():
        put(f"gs://{gcs_bucket}/{name}", size)
    denied = f"{gcs_bucket}-denied"
    _deny(monkeypatch, denied)
    lines = [json.dumps(r).replace("gs://sftgate-cases/", f"gs://{gcs_bucket}/")
             .replace("gs://sftgate-denied/", f"gs://{denied}/") for r in case["records"]]
    train = tmp_path / "case.jsonl"
    train.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    rules = None
    if (profile := case.get("profile", spec.get("profile"))) is not None:
        rules = tmp_path / "rules.yaml"
        rules.write_text(yaml.safe_dump(profile), encoding="utf-8")
    report = sftgate.check(str(train), rules=None if rules is None else str(rules), select=[spec["rule"]],
                           verify_media=True, workers=1)
    actual = [f for f in report.findings if f.code == spec["rule"]]
    expected = case.get("findings") or []
    assert len(actual) == len(expected), [f.message for f in actual]
    for finding, wanted in zip(actual, expected, strict=True):
        message = finding.message.replace(denied, "sftgate-denied").replace(gcs_bucket, "sftgate-cases")
        for key in ("code", "line", "pointer"):
            if key in wanted:
                assert getattr(finding, key) == wanted[key], (key, finding)
        fragments = wanted.get("message_contains", [])
        for fragment in [fragments] if isinstance(fragments, str) else fragments:
            assert fragment in message, (fragment, message)
