"""The coverage configuration as the service holds it, shares it and audits it.

The *configuration document* is the unit that is published and versioned::

    {"yaml": "<the operator's coverage file, as written>",
     "overrides": [<overrides added through the API>],
     "version": 7, "etag": "<sha256>", "updated_by": "ops:anna", "updated_at": "…"}

The operator's YAML text stays the source of truth for everything in the file; the
overrides added through the API are kept beside it, each with an ``id``::

    {"id": "ovr-3f9a…", "team": "care-it", "kind": "coverage",
     "from": "2026-11-24 14:00", "to": "2026-11-25 00:00", "mode": "closed", "note": "strike"}
    {"id": "ovr-77c1…", "team": "care-it", "kind": "on_call",
     "from": "2026-11-23 19:00", "to": "2026-11-24 09:00", "member": "luca"}

The *effective coverage* is the YAML with those overrides appended to
``teams.<id>.overrides`` and ``teams.<id>.on_call.overrides`` (in YAML's node tree,
see :func:`effective_text`), loaded by the same
loader as the command line, so overlaps and unknown members are found exactly as in
a file. A document is only ever accepted whole and valid; an invalid one changes
nothing.

The ETag of a document is the SHA-256 of its canonical JSON (yaml, overrides,
version): the optimistic-concurrency token of the operations API.

Two stores share one interface, :class:`ConfigStore`:

* :class:`KafkaConfigStore` publishes documents on a compacted topic (key
  ``coverage``) and audit events on an audit topic; every worker reads the topic from
  the beginning at start (so a restarted worker starts from the latest) and then
  follows it, so all workers apply the same coverage within seconds.
* :class:`MemoryConfigStore` keeps them in memory, for component tests.

Which document wins, on every worker alike: the topic is read in order and a
document replaces the current one when its ``version`` is not lower. Two operators
who publish the same version on two workers at once both succeed locally; the one
later in the topic wins everywhere.
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import orjson
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from schedules import Coverage, CoverageInvalid, Problem, load_coverage_text
from streams.kafka_client import KafkaConnection, connection_options

log = logging.getLogger(__name__)

CONFIG_KEY = b"coverage"
Clock = Callable[[], datetime]
CoverageCallback = Callable[[Coverage], "Awaitable[None] | None"]


class NoCoverage(LookupError):
    """No configuration document has been published yet (and no seed was given)."""


class EtagMismatch(Exception):
    """The document changed since the caller read it; ``current`` is the document now."""

    def __init__(self, current: ConfigDocument) -> None:
        super().__init__("the coverage configuration changed since it was read")
        self.current = current


@dataclass(frozen=True, slots=True)
class ConfigDocument:
    """One version of the coverage configuration (module docstring)."""

    yaml: str
    overrides: tuple[Mapping[str, Any], ...] = ()
    version: int = 0
    updated_by: str | None = None
    updated_at: str | None = field(default=None, compare=False)

    @property
    def etag(self) -> str:
        """SHA-256 (hex) of the canonical JSON of yaml, overrides and version."""
        canonical = orjson.dumps(
            {"yaml": self.yaml, "overrides": [dict(o) for o in self.overrides], "version": self.version},
            option=orjson.OPT_SORT_KEYS,
        )
        return hashlib.sha256(canonical).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {
            "yaml": self.yaml,
            "overrides": [dict(o) for o in self.overrides],
            "version": self.version,
            "etag": self.etag,
            "updated_by": self.updated_by,
            "updated_at": self.updated_at,
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_json(cls, raw: bytes | str) -> ConfigDocument:
        """Decode a published document; ``ValueError`` when it is not one."""
        data = orjson.loads(raw)
        if not isinstance(data, dict) or not isinstance(data.get("yaml"), str):
            raise ValueError("a configuration document is an object with a 'yaml' text")
        overrides = data.get("overrides") or []
        version = data.get("version", 0)
        if not isinstance(overrides, list) or not all(isinstance(o, dict) for o in overrides):
            raise ValueError("'overrides' must be a list of objects")
        if not isinstance(version, int) or isinstance(version, bool):
            raise ValueError("'version' must be an integer")
        return cls(
            yaml=data["yaml"],
            overrides=tuple(overrides),
            version=version,
            updated_by=data.get("updated_by"),
            updated_at=data.get("updated_at"),
        )

    def override(self, override_id: str) -> Mapping[str, Any] | None:
        """The API override with ``override_id``, or None."""
        return next((o for o in self.overrides if o.get("id") == override_id), None)


def _override_problem(filename: str, override: Mapping[str, Any], message: str, hint: str) -> Problem:
    return Problem(file=f"{filename} (API override {override.get('id', '?')})", line=None, message=message, hint=hint)


_STR_TAG = "tag:yaml.org,2002:str"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_NULL_TAG = "tag:yaml.org,2002:null"


def _value_of(mapping: Node | None, key: str) -> Node | None:
    if not isinstance(mapping, MappingNode):
        return None
    return next((v for k, v in mapping.value if isinstance(k, ScalarNode) and k.value == key), None)


def _append_entry(mapping: MappingNode, key: str, entry: Mapping[str, str]) -> None:
    """Append ``entry`` to the sequence under ``key`` in ``mapping``, creating it when absent or null."""
    item = MappingNode(_MAP_TAG, [
        (ScalarNode(_STR_TAG, name), ScalarNode(_STR_TAG, str(value))) for name, value in entry.items()
    ])
    for index, (k, v) in enumerate(mapping.value):
        if isinstance(k, ScalarNode) and k.value == key:
            if isinstance(v, SequenceNode):
                v.value.append(item)
            elif isinstance(v, ScalarNode) and v.tag == _NULL_TAG:
                mapping.value[index] = (k, SequenceNode(_SEQ_TAG, [item]))
            else:
                # Not a list: leave it, the loader names the fault with its line.
                pass
            return
    mapping.value.append((ScalarNode(_STR_TAG, key), SequenceNode(_SEQ_TAG, [item])))


def effective_text(document: ConfigDocument, filename: str = "coverage.yaml") -> str:
    """The coverage YAML with the document's API overrides merged in.

    Without API overrides this is the operator's text unchanged (comments, line
    numbers and all). With them, the text is composed into YAML's node tree, the
    overrides are appended as nodes and the tree is written back: every scalar of the
    file keeps the text it was written with (``09:00`` stays a time, ``NO`` stays
    Norway), which a load-and-dump round trip through Python values would not
    guarantee. Raises :class:`CoverageInvalid` when an override names a team that is
    not in the file, or an on-call override a team without an ``on_call`` mapping.
    """
    if not document.overrides:
        return document.yaml
    try:
        root = yaml.compose(document.yaml, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        # The loader reports the syntax error with its line; let it speak.
        return document.yaml
    teams = _value_of(root, "teams")
    if not isinstance(teams, MappingNode):
        return document.yaml
    problems: list[Problem] = []
    for override in document.overrides:
        team = _value_of(teams, str(override.get("team")))
        if not isinstance(team, MappingNode):
            problems.append(_override_problem(
                filename, override, f"team {override.get('team')!r} is not in the coverage file",
                "remove this override (DELETE /teams/{team}/overrides/{id}) or add the team back",
            ))
            continue
        if override.get("kind") == "on_call":
            on_call = _value_of(team, "on_call")
            if not isinstance(on_call, MappingNode):
                problems.append(_override_problem(
                    filename, override, f"team {override.get('team')!r} has no on_call rotation",
                    "add an on_call rotation to the team, or remove this on-call override",
                ))
                continue
            _append_entry(on_call, "overrides", {
                "from": override.get("from"), "to": override.get("to"), "member": override.get("member"),
            })
        else:
            entry = {"from": override.get("from"), "to": override.get("to"), "mode": override.get("mode")}
            if override.get("note") is not None:
                entry["note"] = override["note"]
            _append_entry(team, "overrides", entry)
    if problems:
        raise CoverageInvalid(problems)
    return yaml.serialize(root, Dumper=yaml.SafeDumper, allow_unicode=True)


def load_document(document: ConfigDocument, *, filename: str = "coverage.yaml", base_dir: Path | None = None) -> Coverage:
    """The effective coverage of ``document``, or :class:`CoverageInvalid` with every problem.

    The operator's YAML is validated on its own first, so its problems carry the
    file's own line numbers; then with the API overrides merged, where a problem
    (an overlap with an override, an unknown member) has no line in the file and is
    reported without one.
    """
    base = base_dir if base_dir is not None else Path.cwd()
    coverage = load_coverage_text(document.yaml, filename, base)
    if not document.overrides:
        return coverage
    merged_name = f"{filename} with API overrides"
    try:
        return load_coverage_text(effective_text(document, filename), merged_name, base)
    except CoverageInvalid as invalid:
        raise CoverageInvalid([replace(problem, line=None) for problem in invalid.problems]) from None


def _teams_of(text: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return {}
    teams = data.get("teams") if isinstance(data, dict) else None
    return teams if isinstance(teams, dict) else {}


def diff_summary(before: ConfigDocument | None, after: ConfigDocument) -> dict[str, Any]:
    """What changed between two documents, by name and count (never the values).

    Values are left out on purpose: a coverage file holds notification URLs, some
    of which (Slack webhooks) are secrets, and the audit log is read widely.
    """
    old_text = before.yaml if before is not None else ""
    old_teams = _teams_of(old_text)
    new_teams = _teams_of(after.yaml)
    added_lines = removed_lines = 0
    for line in difflib.ndiff(old_text.splitlines(), after.yaml.splitlines()):
        if line.startswith("+ "):
            added_lines += 1
        elif line.startswith("- "):
            removed_lines += 1
    old_ids = {o.get("id") for o in (before.overrides if before is not None else ())}
    new_ids = {o.get("id") for o in after.overrides}
    return {
        "from_version": before.version if before is not None else None,
        "to_version": after.version,
        "yaml_lines_added": added_lines,
        "yaml_lines_removed": removed_lines,
        "teams_added": sorted(set(new_teams) - set(old_teams)),
        "teams_removed": sorted(set(old_teams) - set(new_teams)),
        "teams_changed": sorted(t for t in set(old_teams) & set(new_teams) if old_teams[t] != new_teams[t]),
        "overrides_added": sorted(str(i) for i in new_ids - old_ids),
        "overrides_removed": sorted(str(i) for i in old_ids - new_ids),
    }


def audit_event(who: str, at: datetime, what: str, before: ConfigDocument | None, after: ConfigDocument) -> dict[str, Any]:
    """One audit record: who (a token's identity), when, what, and the diff summary."""
    return {
        "who": who,
        "at": at.isoformat(timespec="seconds"),
        "what": what,
        "version": after.version,
        "etag": after.etag,
        "diff": diff_summary(before, after),
    }


class ConfigStore(Protocol):
    """Holds the current configuration document, publishes new ones and tells followers."""

    def current(self) -> ConfigDocument:
        """The current document; :class:`NoCoverage` when there is none yet."""
        ...

    def coverage(self) -> Coverage:
        """The effective coverage of the current document; :class:`NoCoverage` when none."""
        ...

    def load(self, document: ConfigDocument) -> Coverage:
        """Validate ``document`` as :func:`load_document` does, without publishing it."""
        ...

    async def publish(
        self, draft: ConfigDocument, *, expected_etag: str | None, who: str, what: str
    ) -> ConfigDocument:
        """Make ``draft`` (its yaml and overrides) the next version and audit it.

        ``expected_etag`` None skips the concurrency check; otherwise the current
        document's ETag must equal it (:class:`EtagMismatch`). An invalid draft raises
        :class:`CoverageInvalid` and changes nothing. Returns the stored document.
        """
        ...

    async def follow(self, callback: CoverageCallback) -> None:
        """Call ``callback`` now with the current coverage (when there is one) and on every change."""
        ...


async def _call(callback: CoverageCallback, coverage: Coverage) -> None:
    try:
        result = callback(coverage)
        if inspect.isawaitable(result):
            await result
    except Exception:
        # A failing follower must not stop the others, nor the store.
        log.exception("a coverage follower failed")


class _StoreBase:
    """What both stores share: the loader settings, the current state and the followers."""

    def __init__(self, *, clock: Clock, filename: str, base_dir: Path | None) -> None:
        self._clock = clock
        self.filename = filename
        self.base_dir = base_dir
        self._document: ConfigDocument | None = None
        self._coverage: Coverage | None = None
        self._followers: list[CoverageCallback] = []
        self._delivered_etag: str | None = None
        self._lock = asyncio.Lock()

    def current(self) -> ConfigDocument:
        if self._document is None:
            raise NoCoverage("no coverage configuration has been published yet")
        return self._document

    def coverage(self) -> Coverage:
        if self._coverage is None:
            raise NoCoverage("no coverage configuration has been published yet")
        return self._coverage

    def load(self, document: ConfigDocument) -> Coverage:
        return load_document(document, filename=self.filename, base_dir=self.base_dir)

    def _next(self, draft: ConfigDocument, expected_etag: str | None, who: str) -> ConfigDocument:
        current = self._document
        if expected_etag is not None and (current is None or current.etag != expected_etag):
            if current is None:
                raise NoCoverage("no coverage configuration has been published yet")
            raise EtagMismatch(current)
        return ConfigDocument(
            yaml=draft.yaml,
            overrides=tuple(dict(o) for o in draft.overrides),
            version=(current.version if current is not None else 0) + 1,
            updated_by=who,
            updated_at=self._clock().isoformat(timespec="seconds"),
        )

    async def follow(self, callback: CoverageCallback) -> None:
        self._followers.append(callback)
        if self._coverage is not None:
            await _call(callback, self._coverage)

    async def _deliver(self) -> None:
        if self._coverage is None or self._document is None:
            return
        if self._document.etag == self._delivered_etag:
            return
        self._delivered_etag = self._document.etag
        for callback in list(self._followers):
            await _call(callback, self._coverage)


class MemoryConfigStore(_StoreBase):
    """The configuration in memory: the fake beside :class:`KafkaConfigStore`.

    ``seed`` (YAML text), when given, must be valid and becomes version 1. Audit
    events are kept in ``audit``, in order.
    """

    def __init__(
        self,
        seed: str | None = None,
        *,
        clock: Clock,
        filename: str = "coverage.yaml",
        base_dir: Path | None = None,
    ) -> None:
        super().__init__(clock=clock, filename=filename, base_dir=base_dir)
        self.audit: list[dict[str, Any]] = []
        if seed is not None:
            document = ConfigDocument(
                yaml=seed, version=1, updated_by="system:seed",
                updated_at=clock().isoformat(timespec="seconds"),
            )
            self._coverage = self.load(document)
            self._document = document
            self._delivered_etag = document.etag

    async def publish(
        self, draft: ConfigDocument, *, expected_etag: str | None, who: str, what: str
    ) -> ConfigDocument:
        async with self._lock:
            before = self._document
            document = self._next(draft, expected_etag, who)
            coverage = self.load(document)
            self._document, self._coverage = document, coverage
            self.audit.append(audit_event(who, self._clock(), what, before, document))
        await self._deliver()
        return document


async def ensure_topic(
    kafka: KafkaConnection,
    topic: str,
    *,
    partitions: int = 1,
    replication: int = 1,
    configs: Mapping[str, str] | None = None,
) -> None:
    """Create ``topic`` with ``configs`` unless it exists (a topic that exists is left as it is).

    ``kafka`` is the brokers, or :func:`streams.kafka_client.client_options` (TLS/SASL).
    """
    admin = AIOKafkaAdminClient(**connection_options(kafka))
    await admin.start()
    try:
        if topic in await admin.list_topics():
            return
        try:
            await admin.create_topics(
                [NewTopic(topic, partitions, replication, topic_configs=dict(configs or {}))]
            )
        except TopicAlreadyExistsError:
            # Another worker created it between our look and our create: fine.
            pass
    finally:
        await admin.close()


class KafkaConfigStore(_StoreBase):
    """The configuration on a compacted Kafka topic, shared by every worker.

    ``start(seed)`` creates the topics when missing (the config topic with
    ``cleanup.policy=compact``, one partition so the log has one order), reads the
    config topic from the beginning to its end and takes the winning document (module
    docstring; the latest valid one when the winner is invalid), publishes ``seed``
    as version 1 when the topic is empty, then keeps following the topic in the
    background. Followers registered with :meth:`follow` are called with each new
    effective coverage; an invalid document on the topic is logged and skipped, and
    the worker keeps the coverage it had. ``stop()`` ends it all. ``kafka`` is the
    brokers, or :func:`streams.kafka_client.client_options` (TLS/SASL).
    """

    def __init__(
        self,
        kafka: KafkaConnection,
        *,
        topic: str,
        audit_topic: str,
        clock: Clock,
        filename: str = "coverage.yaml",
        base_dir: Path | None = None,
        replication: int = 1,
    ) -> None:
        super().__init__(clock=clock, filename=filename, base_dir=base_dir)
        self._kafka = kafka
        self.topic = topic
        self.audit_topic = audit_topic
        self._replication = replication
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self, seed: str | None = None) -> None:
        try:
            await self._start(seed)
        except BaseException:
            await self.stop()
            raise

    async def _start(self, seed: str | None) -> None:
        await ensure_topic(
            self._kafka, self.topic, partitions=1, replication=self._replication,
            configs={"cleanup.policy": "compact"},
        )
        await ensure_topic(self._kafka, self.audit_topic, partitions=1, replication=self._replication)
        self._producer = AIOKafkaProducer(**connection_options(self._kafka), acks="all")
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            **connection_options(self._kafka),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await self._consumer.start()
        await self._catch_up(self._consumer)
        if self._document is None and seed is not None:
            await self.publish(ConfigDocument(yaml=seed), expected_etag=None, who="system:seed",
                               what="seeded from the coverage file")
        await self._deliver()
        self._reader = asyncio.create_task(self._follow_topic(self._consumer), name=f"follow {self.topic}")

    async def stop(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def _catch_up(self, consumer: AIOKafkaConsumer) -> None:
        await consumer.topics()  # fetches the metadata that names the topic's partitions
        partitions = [TopicPartition(self.topic, p) for p in sorted(consumer.partitions_for_topic(self.topic) or {0})]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        winners: list[ConfigDocument] = []
        while await self._behind(consumer, ends):
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    document = self._decode(record.value, record.offset)
                    if document is not None and (not winners or document.version >= winners[-1].version):
                        winners.append(document)
        # The winner may be invalid (written by hand, or by an older version): take
        # the latest one that loads, as a running worker would have.
        for document in reversed(winners):
            try:
                coverage = self.load(document)
            except CoverageInvalid as invalid:
                self._log_invalid(document, invalid)
                continue
            self._document, self._coverage = document, coverage
            break
        log.info("coverage configuration read from %s: version %s", self.topic,
                 self._document.version if self._document is not None else "none")

    @staticmethod
    async def _behind(consumer: AIOKafkaConsumer, ends: Mapping[TopicPartition, int]) -> bool:
        for partition, end in ends.items():
            if await consumer.position(partition) < end:
                return True
        return False

    def _decode(self, value: bytes | None, offset: int) -> ConfigDocument | None:
        if value is None:
            return None  # a tombstone: nothing to apply
        try:
            return ConfigDocument.from_json(value)
        except ValueError as exc:
            log.warning("skipping a configuration record at %s offset %s: %s", self.topic, offset, exc)
            return None

    def _log_invalid(self, document: ConfigDocument, invalid: CoverageInvalid) -> None:
        log.warning(
            "skipping configuration version %s from %s (keeping the coverage in use): %d problem(s):\n%s",
            document.version, document.updated_by, len(invalid.problems), invalid,
        )

    async def _follow_topic(self, consumer: AIOKafkaConsumer) -> None:
        async for record in consumer:
            document = self._decode(record.value, record.offset)
            if document is None:
                continue
            current = self._document
            if current is not None and document.version < current.version:
                continue
            if current is not None and document.etag == current.etag:
                await self._deliver()
                continue
            try:
                coverage = self.load(document)
            except CoverageInvalid as invalid:
                self._log_invalid(document, invalid)
                continue
            self._document, self._coverage = document, coverage
            log.info("coverage configuration version %s applied (by %s)", document.version, document.updated_by)
            await self._deliver()

    async def publish(
        self, draft: ConfigDocument, *, expected_etag: str | None, who: str, what: str
    ) -> ConfigDocument:
        if self._producer is None:
            raise RuntimeError("the configuration store is not started")
        async with self._lock:
            before = self._document
            document = self._next(draft, expected_etag, who)
            coverage = self.load(document)
            await self._producer.send_and_wait(self.topic, value=document.to_json(), key=CONFIG_KEY)
            # Read-your-writes: this worker answers with the new version at once; the
            # followers are told when the record comes back from the topic, in its order.
            self._document, self._coverage = document, coverage
            event = audit_event(who, self._clock(), what, before, document)
            await self._producer.send_and_wait(self.audit_topic, value=orjson.dumps(event), key=CONFIG_KEY)
        return document
