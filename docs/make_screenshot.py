"""Regenerate docs/report-screenshot.png: the HTML report (`sftgate.report.html`) of the test
suite's family dataset, which has findings of every rule family that runs offline, as headless
Chromium shows it.

    python docs/make_screenshot.py [--out PNG] [--html HTML] [--size 1280,2000]

Needs selenium, and chromium with chromedriver on PATH (Debian: apt-get install chromium
chromium-driver). Nothing is downloaded: the driver's path is given, so Selenium Manager never runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def render_family_report(workdir: Path) -> str:
    """The page for tests/conftest.py's `family_dataset`, written under `workdir`. The check runs
    there on relative paths, so that the page shows file names rather than a temporary directory."""
    sys.path[:0] = [str(REPO / "src"), str(REPO / "tests")]
    from conftest import family_dataset

    import sftgate
    from sftgate.report import html

    cwd = Path.cwd()
    os.chdir(workdir)
    try:
        train, validation, heldout = family_dataset(Path("."))
        report = sftgate.check(train, validation=validation, eval_sets=[heldout], workers=1)
    finally:
        os.chdir(cwd)
    return html.render(report)


def screenshot(page: Path, out: Path, size: tuple[int, int]) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        raise SystemExit("make_screenshot.py: chromium and chromedriver must be on PATH")
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                f"--window-size={size[0]},{size[1]}"):
        options.add_argument(arg)
    options.binary_location = chromium
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        # The viewport itself at `size`: a window of that size loses its frame's height.
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": False})
        driver.get(page.resolve().as_uri())
        out.parent.mkdir(parents=True, exist_ok=True)
        if not driver.save_screenshot(str(out)):
            raise SystemExit(f"make_screenshot.py: chromium wrote no screenshot to {out}")
    finally:
        driver.quit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "report-screenshot.png", help="the PNG to write")
    parser.add_argument("--html", type=Path, help="also keep the rendered page here")
    parser.add_argument("--size", default="1280,2000", help="the browser window, WIDTH,HEIGHT (default 1280,2000)")
    args = parser.parse_args(argv)
    width, height = (int(n) for n in args.size.split(","))
    with tempfile.TemporaryDirectory(prefix="sftgate-screenshot-") as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(render_family_report(Path(tmp)), encoding="utf-8")
        if args.html is not None:
            shutil.copyfile(page, args.html)
        screenshot(page, args.out, (width, height))
    print(f"wrote {args.out} ({width}x{height})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
