"""`sora-bot demo` as a script or a person leaves it: end of a pipe, `/quit`, Ctrl-C (SIGINT).
Every way out lets the open jobs end (or says they are left), and the exit code says which."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRUBBED = ("EVOLINK_", "DISCORD_", "SLACK_", "PUBLIC_BASE", "DATABASE_", "MEDIA_", "LOG_")


def environment(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED)}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'demo.db'}",
        MEDIA_DIR=str(tmp_path / "media"),
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    return env


def demo(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sora_bot", "demo", *args],
        cwd=tmp_path,
        env=environment(tmp_path),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def jobs(tmp_path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(tmp_path / "demo.db") as db:
        return [(str(r[0]), str(r[1])) for r in db.execute("SELECT id, status FROM jobs")]


def held(tmp_path: Path) -> int:
    """Milli-credits still held: holds without a settling entry."""
    with sqlite3.connect(tmp_path / "demo.db") as db:
        (value,) = db.execute(
            "SELECT COALESCE(SUM(amount_uc), 0) FROM ledger WHERE kind = 'hold' AND job_id NOT IN"
            " (SELECT job_id FROM ledger WHERE kind IN ('capture', 'release'))"
        ).fetchone()
    return int(value)


@pytest.mark.parametrize("last_line", ["", "/quit\n"])
def test_piped_input_waits_for_the_job_and_exits_0(tmp_path: Path, last_line: str) -> None:
    proc = demo(tmp_path, "--task-seconds", "1")
    out, err = proc.communicate("/sora piped 1\n" + last_line, timeout=90)
    assert proc.returncode == 0, out + err
    assert "All 1 job(s) ended, every one delivered" in out
    assert [status for _, status in jobs(tmp_path)] == ["delivered"]
    assert held(tmp_path) == 0
    # The chat screen is the chat: log lines went to the file next to the database.
    assert " INFO " not in out and " INFO " not in err
    assert (tmp_path / "demo.log").read_text().count("delivered") >= 1


def _read_until(proc: subprocess.Popen[str], needle: str, seen: list[str]) -> None:
    assert proc.stdout is not None
    done = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if needle in line:
                done.set()
                return

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    assert done.wait(60), "".join(seen)


def test_ctrl_c_lets_the_job_finish(tmp_path: Path) -> None:
    proc = demo(tmp_path, "--task-seconds", "2")
    assert proc.stdin is not None
    seen: list[str] = []
    proc.stdin.write("/sora interrupted once\n")
    proc.stdin.flush()
    _read_until(proc, "accepted", seen)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    text = "".join(seen) + out
    assert proc.returncode == 0, text + err
    assert "Waiting for 1 job(s) to finish" in text
    assert "every one delivered" in text
    assert [status for _, status in jobs(tmp_path)] == ["delivered"]
    assert "Traceback" not in err


def test_a_second_ctrl_c_leaves_the_job_open_and_says_so(tmp_path: Path) -> None:
    proc = demo(tmp_path, "--task-seconds", "60")
    assert proc.stdin is not None
    seen: list[str] = []
    proc.stdin.write("/sora interrupted twice\n")
    proc.stdin.flush()
    _read_until(proc, "accepted", seen)
    proc.send_signal(signal.SIGINT)
    _read_until(proc, "Waiting for 1 job(s)", seen)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    text = "".join(seen) + out
    assert proc.returncode == 1, text + err
    ((job_id, status),) = jobs(tmp_path)
    assert f"Left 1 job(s) open: {job_id}" in text and "stay held" in text
    assert status in ("pending", "submitted")
    assert held(tmp_path) > 0  # said: its credits stay held until the next start
    assert "Traceback" not in err


def test_the_demo_serves_its_gallery_on_loopback(tmp_path: Path) -> None:
    """`/gallery` in the demo is a link to the demo's own web server on 127.0.0.1: it opens
    once, shows the video just made, and the server goes away with the demo."""
    proc = demo(tmp_path, "--task-seconds", "1")
    assert proc.stdin is not None
    seen: list[str] = []
    proc.stdin.write("/sora a paper boat for the gallery\n")
    proc.stdin.flush()
    _read_until(proc, "delivered", seen)
    proc.stdin.write("/gallery\n")
    proc.stdin.flush()
    _read_until(proc, "/gallery/open?t=", seen)
    found = re.search(r"(http://127\.0\.0\.1:\d+/gallery/open\?t=\S+)", "".join(seen))
    assert found is not None, "".join(seen)
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    with browser.open(found.group(1), timeout=30) as page:
        assert page.status == 200
        assert "a paper boat for the gallery" in page.read().decode()
    with pytest.raises(urllib.error.HTTPError) as refused:  # another browser: used once
        urllib.request.urlopen(found.group(1), timeout=30)
    assert refused.value.code == 410
    out, err = proc.communicate("/quit\n", timeout=60)
    assert proc.returncode == 0, "".join(seen) + out + err
    with pytest.raises(urllib.error.URLError):  # the demo's server stopped with it
        urllib.request.urlopen(found.group(1), timeout=5)
