"""The README's quickstart, as a newcomer types it: two commands; the first, from a fresh clone, installs
the connector and runs it, and a signed sample order reaches the demo ERP; the second is what CI runs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.test_processes import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent


def quickstart() -> list[str]:
    """The commands of the README's first code block."""
    block = re.search(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)
    assert block, "the README has no ```sh block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_the_quickstart_is_two_commands_and_ci_runs_the_second():
    commands = quickstart()
    assert len(commands) == 2, commands
    assert commands[0].endswith("connector run"), commands[0]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(rf"^exec {re.escape(commands[1])}\b", ci, re.M), f"`{commands[1]}` is not what .ci/run runs"


@pytest.mark.process
def test_the_first_command_runs_the_connector_from_a_fresh_clone(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    port = free_port()
    first = quickstart()[0]
    command = first.replace("connector run", f"connector run --port {port}")  # 5000 may be taken on this machine
    assert command != first
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_URL", "REDIS_URL", "CONNECTOR_", "VIRTUAL_ENV"))
    }
    log = (tmp_path / "quickstart.log").open("w+")
    server = subprocess.Popen(
        ["bash", "-c", command], cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        try:
            wait_for(f"http://127.0.0.1:{port}/healthz", seconds=400)  # a venv and pip install first: about a minute
        except AssertionError:
            log.seek(0)
            raise AssertionError(f"the quickstart did not come up:\n{log.read()[-3000:]}") from None
        connector = str(clone / ".venv" / "bin" / "connector")
        sent = subprocess.run(
            [connector, "send-sample", "--url", f"http://127.0.0.1:{port}"],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert sent.returncode == 0 and sent.stdout.startswith("200"), sent.stdout + sent.stderr
        deadline = time.monotonic() + 30
        while True:
            listed = subprocess.run(
                [connector, "events"], cwd=clone, env=env, capture_output=True, text=True, timeout=60
            )
            if " #1001 " in listed.stdout and "succeeded" in listed.stdout:
                break
            assert time.monotonic() < deadline, listed.stdout + listed.stderr
            time.sleep(0.5)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
        log.seek(0)
        output = log.read()
        log.close()
    assert f"The connector is running at http://127.0.0.1:{port}" in output, output[-2000:]
