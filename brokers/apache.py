"""Apache Kafka on loopback: one KRaft node, or a cluster of them, as child processes.

The broker is Apache Kafka's own (``org.apache.kafka:kafka_2.13``, the version in
``brokers/kafka-broker.pom.xml``), run from the jars Maven resolves into its local
repository: :func:`kafka_classpath` runs ``mvn dependency:build-classpath`` on that file
once and caches the classpath (under ``~/.cache/offhours/kafka`` or
``$OFFHOURS_KAFKA_CACHE``), so later starts need neither the network nor Maven. Java 17
or newer runs it.

:class:`KafkaServer` is one node in KRaft combined mode (controller and broker in one
process, no ZooKeeper) on free loopback ports: it formats its storage on first start
(``kafka.tools.StorageTool format``, the cluster id kept in its data directory), starts
``kafka.Kafka`` and returns once it answers a Kafka metadata request, like
:class:`brokers.tansu.EmbeddedBroker`. Its log is ``server.log`` in its directory; a
start that fails names it and quotes its last lines. Given a ``data_dir`` it keeps its
topics there across restarts; without one it uses a temporary directory removed at stop.

:class:`KafkaCluster` is ``size`` such nodes forming one controller quorum, with
:meth:`~KafkaCluster.kill` (SIGKILL) and :meth:`~KafkaCluster.restart` of a node for
failure tests.

Each node dies with its parent (``PR_SET_PDEATHSIG``) and runs in its own process group,
as the embedded broker does.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import TracebackType

from brokers.tansu import (
    BrokerStartError,
    _die_with_parent,
    _free_loopback_port,
    probe_kafka,
    probe_sync,
)

log = logging.getLogger(__name__)

POM_NAME = "kafka-broker.pom.xml"
MIN_JAVA = 17
LOG_LINES_QUOTED = 25
INSTALL_HINT = (
    "Install Java 17 (or newer) and Maven (Debian: `apt-get install openjdk-17-jre-headless maven`); "
    "Maven fetches the Kafka broker once from Maven Central."
)

_LOG4J2 = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.console.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.org.name = org.apache.kafka
logger.org.level = INFO
"""
"""Kafka's log4j2 setup: everything to stdout, which the launcher writes to ``server.log``."""

JVM_OPTIONS = ("-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-Djava.awt.headless=true")
"""Small heap and the serial collector: several nodes share a two-core test machine."""


def pom_text() -> str:
    """The Maven build file that names the broker and its version."""
    return (resources.files("brokers") / POM_NAME).read_text("utf-8")


def kafka_version() -> str:
    """The Apache Kafka version the project runs (``kafka.version`` in the build file)."""
    found = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom_text())
    if found is None:
        raise RuntimeError(f"{POM_NAME} names no kafka.version")
    return found.group(1).strip()


def default_cache_dir() -> Path:
    """``$OFFHOURS_KAFKA_CACHE``, else ``$XDG_CACHE_HOME/offhours/kafka``, else ``~/.cache/offhours/kafka``."""
    if os.environ.get("OFFHOURS_KAFKA_CACHE"):
        return Path(os.environ["OFFHOURS_KAFKA_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "offhours" / "kafka"


def java_major(java: str) -> int:
    """The major version of ``java`` (``17`` for "17.0.15"), from ``java -version``."""
    result = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    found = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if found is None:
        raise BrokerStartError(f"`{java} -version` printed no version. {INSTALL_HINT}")
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major


def find_java() -> str:
    """The ``java`` to run the broker with: ``$JAVA_HOME/bin/java`` or the one on PATH, 17+."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        raise BrokerStartError(f"Apache Kafka needs Java, and none was found. {INSTALL_HINT}")
    major = java_major(java)
    if major < MIN_JAVA:
        raise BrokerStartError(f"Apache Kafka {kafka_version()} needs Java {MIN_JAVA} or newer; {java} is Java {major}. {INSTALL_HINT}")
    return java


def kafka_classpath(cache_dir: Path | None = None, *, timeout: float = 600.0) -> str:
    """The broker's Java classpath, resolved by Maven once and cached.

    The cache is keyed by the build file's content; a cached classpath whose jars have
    gone (a cleaned Maven repository) is resolved again. Raises
    :class:`~brokers.tansu.BrokerStartError` saying what to install when Maven is
    missing, or quoting Maven's last lines when it fails.
    """
    text = pom_text()
    folder = (cache_dir or default_cache_dir()) / hashlib.sha256(text.encode()).hexdigest()[:16]
    cached = folder / "classpath.txt"
    if cached.exists():
        classpath = cached.read_text("utf-8").strip()
        if classpath and all(Path(jar).exists() for jar in classpath.split(os.pathsep)):
            return classpath
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerStartError(f"Apache Kafka is fetched with Maven, and `mvn` is not on PATH. {INSTALL_HINT}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pom.xml").write_text(text, "utf-8")
    partial = folder / "classpath.txt.part"
    log.info("resolving Apache Kafka %s with Maven (once; cached in %s)", kafka_version(), folder)
    result = subprocess.run(
        [mvn, "-B", "-q", "-f", str(folder / "pom.xml"), "dependency:build-classpath", f"-Dmdep.outputFile={partial}"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0 or not partial.exists():
        tail = "\n  ".join((result.stdout + result.stderr).strip().splitlines()[-LOG_LINES_QUOTED:])
        raise BrokerStartError(f"Maven could not resolve Apache Kafka {kafka_version()} (exit {result.returncode}):\n  {tail}")
    partial.replace(cached)
    return cached.read_text("utf-8").strip()


async def _group_coordinator_answers(bootstrap: str) -> bool:
    """True once the broker names a group coordinator (asking creates ``__consumer_offsets``),
    so the first consumer group does not start with "coordinator not available" errors."""
    from aiokafka.client import AIOKafkaClient, CoordinationType

    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
    try:
        await client.bootstrap()
        await client.coordinator_lookup(CoordinationType.GROUP, "offhours-ready")
        return True
    except Exception:  # any failure means "not yet"; the caller owns the deadline
        return False
    finally:
        await client.close()


def new_cluster_id() -> str:
    """A KRaft cluster id: a random UUID in Kafka's URL-safe base64, without padding.

    Like Kafka's own ``Uuid.randomUuid``, it never starts with ``-``: the storage tool's
    argument parser would read such an id as an option and refuse to format.
    """
    while True:
        chosen = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not chosen.startswith("-"):
            return chosen


@dataclass(slots=True)
class _Node:
    node_id: int
    port: int
    controller_port: int


@dataclass(slots=True)
class KafkaServer:
    """One Apache Kafka node in KRaft combined mode (see the module docstring).

    ``voters`` are the controller quorum as ``(node_id, controller_port)`` pairs; alone,
    the node is its own quorum. ``properties`` add to or replace the server properties
    (``offsets.topic.replication.factor`` and the like).
    """

    data_dir: Path | None = None
    node_id: int = 1
    port: int = 0
    controller_port: int = 0
    voters: Sequence[tuple[int, int]] = ()
    cluster_id: str | None = None
    properties: dict[str, str] = field(default_factory=dict)
    start_timeout: float = 60.0
    classpath: str | None = None
    _process: subprocess.Popen[bytes] | None = None
    _temporary: tempfile.TemporaryDirectory[str] | None = None
    _log_handle: object | None = None

    def __post_init__(self) -> None:
        self.port = self.port or _free_loopback_port()
        self.controller_port = self.controller_port or _free_loopback_port()
        if self.data_dir is None:
            self._temporary = tempfile.TemporaryDirectory(prefix=f"offhours-kafka-{self.node_id}-")
            self.data_dir = Path(self._temporary.name)
        self.data_dir = Path(self.data_dir)

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:PORT``, the form aiokafka takes."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``kafka://127.0.0.1:PORT``, the form Faust and the settings take."""
        return f"kafka://{self.bootstrap}"

    @property
    def log_path(self) -> Path:
        """The node's own log (Kafka's output), kept after it stops."""
        assert self.data_dir is not None
        return self.data_dir / "server.log"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def server_properties(self) -> dict[str, str]:
        """The node's ``server.properties``: KRaft combined mode on loopback, its data under ``data_dir``."""
        assert self.data_dir is not None
        voters = self.voters or [(self.node_id, self.controller_port)]
        size = len(voters)
        base = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": ",".join(f"{node}@127.0.0.1:{port}" for node, port in voters),
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir / "logs"),
            "offsets.topic.replication.factor": str(min(size, 3)),
            "transaction.state.log.replication.factor": str(min(size, 3)),
            "transaction.state.log.min.isr": str(min(size, 2)),
            "group.initial.rebalance.delay.ms": "0",
            # On loopback a dead worker is noticed in seconds: offhours' replay and tests
            # use sessions shorter than Kafka's 6 s floor.
            "group.min.session.timeout.ms": "500",
        }
        base.update(self.properties)
        return base

    def _write_config(self) -> tuple[Path, Path]:
        assert self.data_dir is not None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "server.properties"
        config.write_text("".join(f"{key}={value}\n" for key, value in self.server_properties().items()), "utf-8")
        log4j = self.data_dir / "log4j2.properties"
        log4j.write_text(_LOG4J2, "utf-8")
        return config, log4j

    def _cluster_id(self) -> str:
        assert self.data_dir is not None
        stored = self.data_dir / "cluster.id"
        if stored.exists():
            return stored.read_text("utf-8").strip()
        chosen = self.cluster_id or new_cluster_id()
        stored.write_text(chosen, "utf-8")
        return chosen

    def _java(self, java: str, log4j: Path, main: str, *args: str) -> list[str]:
        assert self.classpath is not None
        return [java, *JVM_OPTIONS, f"-Dlog4j2.configurationFile={log4j}", "-cp", self.classpath, main, *args]

    def _format(self, java: str, config: Path, log4j: Path) -> None:
        command = self._java(java, log4j, "kafka.tools.StorageTool", "format", "-t", self._cluster_id(), "-c", str(config), "--ignore-formatted")
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        with self.log_path.open("a", encoding="utf-8") as out:
            out.write(result.stdout + result.stderr)
        if result.returncode != 0:
            raise BrokerStartError(
                f"Apache Kafka node {self.node_id} could not format its storage (exit {result.returncode}); "
                f"see {self.log_path}:\n  {self._log_tail()}"
            )

    def prepare(self) -> None:
        """Find Java and the classpath, write the configuration and format the storage if needed.

        Safe in any thread (nothing it starts outlives it); :meth:`launch` then starts the node.
        """
        java = find_java()
        if self.classpath is None:
            self.classpath = kafka_classpath()
        config, log4j = self._write_config()
        self._format(java, config, log4j)

    def launch(self) -> None:
        """Start the prepared node's process; do not wait for it.

        The node dies with the *thread* that starts it (``PR_SET_PDEATHSIG`` is per
        thread on Linux): start it from a thread that outlives it, never from
        ``asyncio.to_thread`` or another pool thread, whose exit SIGKILLs the node.
        """
        java = find_java()
        assert self.data_dir is not None
        config, log4j = self.data_dir / "server.properties", self.data_dir / "log4j2.properties"
        handle = self.log_path.open("ab")
        self._log_handle = handle
        self._process = subprocess.Popen(
            self._java(java, log4j, "kafka.Kafka", str(config)),
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            start_new_session=True,
        )
        log.info("Apache Kafka node %s starting: pid %s on %s (log %s)", self.node_id, self._process.pid, self.bootstrap, self.log_path)

    def spawn(self) -> None:
        """:meth:`prepare` and :meth:`launch`: start the node without waiting for it (see :meth:`start`)."""
        self.prepare()
        self.launch()

    def wait_ready(self, deadline: float) -> None:
        """Block until the node answers a metadata request; raise when it exits or ``deadline`` (monotonic) passes."""
        while True:
            if self._process is None or self._process.poll() is not None:
                code = None if self._process is None else self._process.returncode
                raise BrokerStartError(
                    f"Apache Kafka node {self.node_id} exited with code {code} while starting on {self.bootstrap}; "
                    f"see {self.log_path}:\n  {self._log_tail()}"
                )
            if probe_kafka(self.bootstrap) and probe_sync(lambda: _group_coordinator_answers(self.bootstrap)):
                log.info("Apache Kafka node %s ready at %s", self.node_id, self.url)
                return
            if time.monotonic() >= deadline:
                raise BrokerStartError(
                    f"Apache Kafka node {self.node_id} on {self.bootstrap} did not answer a metadata request "
                    f"within {self.start_timeout:.0f} s; see {self.log_path}:\n  {self._log_tail()}"
                )
            time.sleep(0.2)

    def start(self) -> KafkaServer:
        """Start the node and block until it answers; on failure stop it and raise :class:`BrokerStartError`."""
        self.spawn()
        try:
            self.wait_ready(time.monotonic() + self.start_timeout)
        except BrokerStartError:
            self.kill()
            raise
        return self

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text("utf-8", "replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n  ".join(collections.deque(lines, maxlen=LOG_LINES_QUOTED)) or "(empty log)"

    def _reap(self) -> None:
        handle, self._log_handle = self._log_handle, None
        if handle is not None:
            handle.close()  # type: ignore[attr-defined]

    def kill(self) -> None:
        """SIGKILL the node (a crash: nothing flushed, no controlled shutdown)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()
        self._reap()

    def terminate(self) -> None:
        """Ask the node to stop (SIGTERM, a controlled shutdown) without waiting; :meth:`stop` waits."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()

    def stop(self, timeout: float = 30.0) -> None:
        """Controlled shutdown (SIGTERM), SIGKILL after ``timeout`` s. Keeps ``data_dir`` unless it was temporary."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._reap()
        log.info("Apache Kafka node %s stopped", self.node_id)

    def close(self) -> None:
        """Stop the node and remove its temporary directory, if it had one."""
        self.stop()
        if self._temporary is not None:
            self._temporary.cleanup()
            self._temporary = None

    def __enter__(self) -> KafkaServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class KafkaCluster:
    """``size`` Apache Kafka nodes forming one KRaft quorum on loopback (see the module docstring)."""

    def __init__(self, size: int = 3, *, data_dir: Path | None = None, properties: dict[str, str] | None = None, start_timeout: float = 90.0) -> None:
        self._temporary = None if data_dir is not None else tempfile.TemporaryDirectory(prefix="offhours-kafka-cluster-")
        root = Path(data_dir) if data_dir is not None else Path(self._temporary.name)  # type: ignore[union-attr]
        cluster_id = new_cluster_id()
        ports = [(_free_loopback_port(), _free_loopback_port()) for _ in range(size)]
        voters = [(index + 1, controller) for index, (_, controller) in enumerate(ports)]
        self.start_timeout = start_timeout
        self.nodes = [
            KafkaServer(
                data_dir=root / f"node-{index + 1}",
                node_id=index + 1,
                port=port,
                controller_port=controller,
                voters=voters,
                cluster_id=cluster_id,
                properties=dict(properties or {}),
                start_timeout=start_timeout,
            )
            for index, (port, controller) in enumerate(ports)
        ]

    @property
    def bootstrap(self) -> str:
        """Every node's ``127.0.0.1:PORT``, comma-separated, the form aiokafka takes."""
        return ",".join(node.bootstrap for node in self.nodes)

    @property
    def url(self) -> str:
        """``kafka://host:port,kafka://host:port,…``, the form the settings take."""
        return ",".join(node.url for node in self.nodes)

    def node(self, node_id: int) -> KafkaServer:
        return self.nodes[node_id - 1]

    def start(self) -> KafkaCluster:
        """Start every node at once (a quorum needs a majority) and wait for all of them."""
        classpath = kafka_classpath()
        try:
            for node in self.nodes:
                node.classpath = classpath
                node.spawn()
            deadline = time.monotonic() + self.start_timeout
            for node in self.nodes:
                node.wait_ready(deadline)
        except BrokerStartError:
            self.close()
            raise
        return self

    def kill(self, node_id: int) -> None:
        """SIGKILL one node."""
        self.node(node_id).kill()

    def restart(self, node_id: int) -> None:
        """Start a stopped or killed node again on its ports and data, and wait for it.

        Call it from a thread that outlives the node (see :meth:`KafkaServer.launch`). From
        asyncio, without blocking the loop: ``await asyncio.to_thread(node.prepare)``,
        ``node.launch()``, then ``await asyncio.to_thread(node.wait_ready, deadline)``.
        """
        node = self.node(node_id)
        node.spawn()
        node.wait_ready(time.monotonic() + node.start_timeout)

    def close(self) -> None:
        """Stop every node and remove the temporary directory, if any.

        Every node is asked to stop first, then each is waited for: stopped one after
        another, the last node waits out its whole timeout for a controller quorum that
        has already gone (measured: 30 s for three nodes).
        """
        for node in self.nodes:
            node.terminate()
        for node in self.nodes:
            node.stop()
        if self._temporary is not None:
            self._temporary.cleanup()
            self._temporary = None

    def __enter__(self) -> KafkaCluster:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
