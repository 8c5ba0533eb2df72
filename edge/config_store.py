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

:func:`read_coverage_in_force` reads the topic once, read-only, by the same rules: what
a report (``offhours sla report``) needs to use the coverage the workers decide with.

Which document wins, on every worker alike: the topic is read in order and a
document replaces the current one when its ``version`` is not lower. Two operators
who publish the same version on two workers at once both succeed locally; the one
later in the topic wins everywhere.

A document may come from anyone holding an admin token, so loading it is bounded
(:class:`~schedules.loader.LoadLimits`) and runs in a worker thread, never on the
event loop (:meth:`ConfigStore.validate`, :meth:`ConfigStore.publish`, and every
document read from the topic); its ``holidays.ics`` calendars come from one
configured folder or from nowhere (:func:`edge.ops_config.api_calendars`), never from
a path of the host.

Secrets in the text (Slack and Teams webhook URLs, any URL's credentials or query
values) are masked by :func:`masked_text` wherever the API shows the text, and
:func:`unmask_text` turns a masked value written back into the value it masks.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

import orjson
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from brokers.client import KafkaConnection, connection_options
from brokers.positions import seek_to_beginning
from records.secrets import MASK, mask_value
from schedules import Coverage, CoverageInvalid, Problem, load_coverage_text
from schedules.holiday import CalendarSource
from schedules.loader import DEFAULT_LIMITS, LoadLimits, compose_bounded

log = logging.getLogger(__name__)

CONFIG_KEY = b"coverage"
Clock = Callable[[], datetime]
CoverageCallback = Callable[[Coverage], "Awaitable[None] | None"]
T = TypeVar("T")


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


def effective_text(document: ConfigDocument, filename: str = "coverage.yaml", limits: LoadLimits = DEFAULT_LIMITS) -> str:
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
        root = compose_bounded(document.yaml, limits)
    except (yaml.YAMLError, RecursionError):
        # The loader reports the fault with its line; let it speak.
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


def load_document(
    document: ConfigDocument,
    *,
    filename: str = "coverage.yaml",
    calendars: CalendarSource | None = None,
    limits: LoadLimits = DEFAULT_LIMITS,
) -> Coverage:
    """The effective coverage of ``document``, or :class:`CoverageInvalid` with every problem.

    The operator's YAML is validated on its own first, so its problems carry the
    file's own line numbers; then with the API overrides merged, where a problem
    (an overlap with an override, an unknown member) has no line in the file and is
    reported without one. ``calendars`` reads ``holidays.ics`` (None: refused, see
    :func:`edge.ops_config.api_calendars`); ``limits`` bound the text. Blocking: call
    it from a worker thread (:meth:`ConfigStore.validate`).
    """
    if calendars is None:
        from edge.ops_config import api_calendars

        calendars = api_calendars(None)
    coverage = load_coverage_text(document.yaml, filename, calendars=calendars, limits=limits)
    if not document.overrides:
        return coverage
    merged_name = f"{filename} with API overrides"
    try:
        return load_coverage_text(effective_text(document, filename, limits), merged_name, calendars=calendars, limits=limits)
    except CoverageInvalid as invalid:
        raise CoverageInvalid([replace(problem, line=None) for problem in invalid.problems]) from None


def _fingerprint(node: Node) -> Any:
    """A comparable value of a node tree (tags and texts), to tell whether a team changed."""
    if isinstance(node, ScalarNode):
        return (node.tag, node.value)
    if isinstance(node, SequenceNode):
        return (node.tag, tuple(_fingerprint(item) for item in node.value))
    if isinstance(node, MappingNode):
        return (node.tag, tuple((_fingerprint(k), _fingerprint(v)) for k, v in node.value))
    return None


@functools.lru_cache(maxsize=4)
def _teams_of(text: str) -> dict[str, Any]:
    """Team id -> fingerprint of its subtree; empty when the text does not compose.

    Remembered for the last few texts: the current document's was made when it was new.
    """
    try:
        root = compose_bounded(text)
    except (yaml.YAMLError, RecursionError):
        return {}
    teams = _value_of(root, "teams")
    if not isinstance(teams, MappingNode):
        return {}
    return {k.value: _fingerprint(v) for k, v in teams.value if isinstance(k, ScalarNode)}


def diff_summary(before: ConfigDocument | None, after: ConfigDocument) -> dict[str, Any]:
    """What changed between two documents, by name and count (never the values).

    Values are left out on purpose: a coverage file holds notification URLs, some
    of which (Slack webhooks) are secrets, and the audit log is read widely.
    """
    old_text = before.yaml if before is not None else ""
    old_teams = _teams_of(old_text)
    new_teams = _teams_of(after.yaml)
    # Lines counted as multisets: linear in the size (a line diff is quadratic), and the
    # same counts as a diff for every edit but a moved line.
    old_lines, new_lines = Counter(old_text.splitlines()), Counter(after.yaml.splitlines())
    added_lines = sum((new_lines - old_lines).values())
    removed_lines = sum((old_lines - new_lines).values())
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


def _scalars(root: Node | None) -> Iterator[tuple[tuple[Any, ...], ScalarNode]]:
    """Every scalar value of the tree with its path (mapping keys and list positions), each node once."""
    seen: set[int] = set()
    stack: list[tuple[tuple[Any, ...], Node]] = [((), root)] if root is not None else []
    while stack:
        path, node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, ScalarNode):
            yield path, node
        elif isinstance(node, SequenceNode):
            stack.extend((path + (index,), item) for index, item in enumerate(node.value))
        elif isinstance(node, MappingNode):
            stack.extend((path + (key.value if isinstance(key, ScalarNode) else None,), value)
                         for key, value in node.value)


def _value_span(text: str, node: ScalarNode) -> tuple[int, int]:
    """Where the scalar's own text is (after any anchor or tag written before it)."""
    start, end = node.start_mark.index, node.end_mark.index
    while start < end and text[start] in "&!":
        while start < end and not text[start].isspace():
            start += 1
        while start < end and text[start].isspace():
            start += 1
    return start, end


def _quoted(value: str) -> str:
    # A JSON string is a YAML double-quoted scalar, on one line.
    return orjson.dumps(value).decode("utf-8")


def _replace_spans(text: str, replacements: dict[tuple[int, int], str]) -> str:
    pieces: list[str] = []
    position = 0
    for (start, end), value in sorted(replacements.items()):
        pieces.append(text[position:start])
        pieces.append(value)
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def masked_text(text: str, limits: LoadLimits = DEFAULT_LIMITS) -> str:
    """The coverage text with every secret masked (:func:`mask_value`), the rest as written.

    Each scalar holding a secret is rewritten as a double-quoted string of its masked
    value; comments, layout and line numbers stay. Text that does not compose is
    masked line by line (every URL), so nothing leaks from a broken document either.
    Blocking (it composes the text): call it from a worker thread.
    """
    try:
        root = compose_bounded(text, limits)
    except (yaml.YAMLError, RecursionError):
        return "\n".join(mask_value(line) for line in text.split("\n"))
    replacements: dict[tuple[int, int], str] = {}
    for _, node in _scalars(root):
        masked = mask_value(node.value)
        if masked != node.value:
            replacements[_value_span(text, node)] = _quoted(masked)
    return _replace_spans(text, replacements)


def unmask_text(text: str, stored: str, filename: str = "coverage.yaml", limits: LoadLimits = DEFAULT_LIMITS) -> str:
    """``text`` with each masked value (one with :data:`MASK`) back to the secret it masks in ``stored``.

    A masked value takes the secret at the same place in ``stored`` (same team,
    member, key and list position) when that one masks to it; else the one secret of
    ``stored`` that masks to it. None, or several: :class:`CoverageInvalid` with the
    line, asking for the full value. Text that does not compose is returned as it is
    (the loader reports why). Blocking: call it from a worker thread.
    """
    if MASK not in text:
        return text
    try:
        root = compose_bounded(text, limits)
        old = compose_bounded(stored, limits)
    except (yaml.YAMLError, RecursionError):
        return text
    by_path: dict[tuple[Any, ...], str] = {}
    by_mask: dict[str, set[str]] = {}
    for path, node in _scalars(old):
        masked = mask_value(node.value)
        if masked != node.value:
            by_path[path] = node.value
            by_mask.setdefault(masked, set()).add(node.value)
    replacements: dict[tuple[int, int], str] = {}
    problems: list[Problem] = []
    for path, node in _scalars(root):
        if MASK not in node.value:
            continue
        secret = by_path.get(path)
        if secret is None or mask_value(secret) != node.value:
            candidates = by_mask.get(node.value, set())
            secret = next(iter(candidates)) if len(candidates) == 1 else None
        if secret is None:
            problems.append(Problem(
                filename, node.start_mark.line + 1,
                "a masked value (****) that matches no single secret of the coverage in use",
                "write the full value (a new webhook URL, say); a masked value written back keeps the secret "
                "only at its place in the coverage read with GET /coverage",
            ))
            continue
        replacements[_value_span(text, node)] = _quoted(secret)
    if problems:
        raise CoverageInvalid(problems)
    return _replace_spans(text, replacements)


SEEDED = "seeded from the coverage file"
"""What the audit says of the seed, the first version of an empty store."""


class ConfigStore(Protocol):
    """Holds the current configuration document, publishes new ones and tells followers."""

    def current(self) -> ConfigDocument:
        """The current document; :class:`NoCoverage` when there is none yet."""
        ...

    def coverage(self) -> Coverage:
        """The effective coverage of the current document; :class:`NoCoverage` when none."""
        ...

    def load(self, document: ConfigDocument) -> Coverage:
        """Validate ``document`` as :func:`load_document` does, without publishing it (blocking)."""
        ...

    async def validate(self, document: ConfigDocument) -> Coverage:
        """:meth:`load` in a worker thread, one at a time: the event loop keeps serving."""
        ...

    async def off_loop(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in a worker thread, one heavy task of this store at a time."""
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


async def _call(callback: CoverageCallback, coverage: Coverage) -> str | None:
    """Call one follower; None when it took the coverage, else the name of what it raised."""
    try:
        result = callback(coverage)
        if inspect.isawaitable(result):
            await result
    except Exception as error:
        # A failing follower must not stop the others, nor the store.
        log.exception("a coverage follower failed")
        return type(error).__name__
    return None


@dataclass(frozen=True, slots=True)
class FollowerState:
    """Whether this process's followers (the worker) took the current coverage.

    ``applied``: the version every follower took last; ``refused``: the version a
    follower raised on (None once a later version is taken), with ``error``, the name
    of the exception. A process whose ``refused`` is set decides with ``applied``
    while the API shows ``refused`` or later: worth a metric and a /readyz check.
    """

    applied: int | None = None
    refused: int | None = None
    error: str | None = None


class _StoreBase:
    """What both stores share: the loader settings, the current state and the followers."""

    def __init__(
        self,
        *,
        clock: Clock,
        filename: str,
        base_dir: Path | None,
        calendars: CalendarSource | None = None,
        limits: LoadLimits = DEFAULT_LIMITS,
    ) -> None:
        if calendars is None:
            from edge.ops_config import api_calendars

            calendars = api_calendars(None)
        self._clock = clock
        # Problems name the file, never where it lies on the host.
        self.filename = Path(filename).name or "coverage.yaml"
        # Kept for callers that pass it; coverage published here never reads files
        # relative to it (holiday calendars come from ``calendars`` only).
        self.base_dir = base_dir
        self.calendars = calendars
        self.limits = limits
        self._document: ConfigDocument | None = None
        self._coverage: Coverage | None = None
        self._followers: list[CoverageCallback] = []
        self._delivered_etag: str | None = None
        self._lock = asyncio.Lock()
        self._heavy = asyncio.Semaphore(1)
        self.followers = FollowerState()

    def current(self) -> ConfigDocument:
        if self._document is None:
            raise NoCoverage("no coverage configuration has been published yet")
        return self._document

    def coverage(self) -> Coverage:
        if self._coverage is None:
            raise NoCoverage("no coverage configuration has been published yet")
        return self._coverage

    def load(self, document: ConfigDocument) -> Coverage:
        return load_document(document, filename=self.filename, calendars=self.calendars, limits=self.limits)

    async def off_loop(self, function: Callable[..., T], *args: Any) -> T:
        async with self._heavy:
            return await asyncio.to_thread(function, *args)

    async def validate(self, document: ConfigDocument) -> Coverage:
        return await self.off_loop(self.load, document)

    def _prepare(
        self, before: ConfigDocument | None, document: ConfigDocument, who: str, what: str
    ) -> tuple[Coverage, dict[str, Any]]:
        """The coverage of ``document`` and its audit event (blocking: both walk the whole text)."""
        coverage = self.load(document)
        return coverage, audit_event(who, self._clock(), what, before, document)

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
        if self._coverage is not None and self._document is not None:
            self._record(self._document.version, [await _call(callback, self._coverage)])

    async def _deliver(self) -> None:
        if self._coverage is None or self._document is None:
            return
        if self._document.etag == self._delivered_etag:
            return
        self._delivered_etag = self._document.etag
        errors = [await _call(callback, self._coverage) for callback in list(self._followers)]
        self._record(self._document.version, errors)

    def _record(self, version: int, errors: list[str | None]) -> None:
        failed = next((error for error in errors if error is not None), None)
        if failed is None:
            self.followers = FollowerState(applied=version)
        else:
            log.error("coverage version %s was refused by a follower (%s); this process keeps version %s",
                      version, failed, self.followers.applied)
            self.followers = FollowerState(applied=self.followers.applied, refused=version, error=failed)


class MemoryConfigStore(_StoreBase):
    """The configuration in memory: the fake beside :class:`KafkaConfigStore`.

    ``seed`` (YAML text), when given, must be valid and becomes version 1, audited and
    counted as applied (no follower refused it) as :class:`KafkaConfigStore` does with
    the seed it publishes. Audit events are kept in
    ``audit``, in order. The contract suite in ``tests/integration/edge_ops/test_store_contract.py``
    runs both stores.
    """

    def __init__(
        self,
        seed: str | None = None,
        *,
        clock: Clock,
        filename: str = "coverage.yaml",
        base_dir: Path | None = None,
        calendars: CalendarSource | None = None,
        limits: LoadLimits = DEFAULT_LIMITS,
    ) -> None:
        super().__init__(clock=clock, filename=filename, base_dir=base_dir, calendars=calendars, limits=limits)
        self.audit: list[dict[str, Any]] = []
        if seed is not None:
            document = ConfigDocument(
                yaml=seed, version=1, updated_by="system:seed",
                updated_at=clock().isoformat(timespec="seconds"),
            )
            self._coverage, event = self._prepare(None, document, document.updated_by, SEEDED)
            self._document = document
            self._delivered_etag = document.etag
            self.audit.append(event)
            self._record(document.version, [])  # taken by its followers, none yet: as KafkaConfigStore.start

    async def publish(
        self, draft: ConfigDocument, *, expected_etag: str | None, who: str, what: str
    ) -> ConfigDocument:
        async with self._lock:
            before = self._document
            document = self._next(draft, expected_etag, who)
            coverage, event = await self.off_loop(self._prepare, before, document, who, what)
            self._document, self._coverage = document, coverage
            self.audit.append(event)
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

    ``kafka`` is the brokers, or :func:`brokers.client.client_options` (TLS/SASL).
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


def _decode(topic: str, value: bytes | None, offset: int) -> ConfigDocument | None:
    """The document of one config-topic record; None for a tombstone or a record that is not one (logged)."""
    if value is None:
        return None  # a tombstone: nothing to apply
    try:
        return ConfigDocument.from_json(value)
    except ValueError as exc:
        log.warning("skipping a configuration record at %s offset %s: %s", topic, offset, exc)
        return None


def _log_invalid(document: ConfigDocument, invalid: CoverageInvalid) -> None:
    log.warning(
        "skipping configuration version %s from %s (keeping the coverage in use): %d problem(s):\n%s",
        document.version, document.updated_by, len(invalid.problems), invalid,
    )


async def _read_winners(consumer: AIOKafkaConsumer, topic: str) -> list[ConfigDocument]:
    """The config topic read from its beginning to its end with ``consumer`` (assigned here).

    Returns the documents that won in turn, the winner last: read in order, a document
    replaces the current one when its ``version`` is not lower (module docstring).
    """
    await consumer.topics()  # fetches the metadata that names the topic's partitions
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or {0})]
    consumer.assign(partitions)
    await seek_to_beginning(consumer, *partitions)
    ends = await consumer.end_offsets(partitions)
    winners: list[ConfigDocument] = []
    while await _behind(consumer, ends):
        batches = await consumer.getmany(timeout_ms=500)
        for records in batches.values():
            for record in records:
                document = _decode(topic, record.value, record.offset)
                if document is not None and (not winners or document.version >= winners[-1].version):
                    winners.append(document)
    return winners


async def _behind(consumer: AIOKafkaConsumer, ends: Mapping[TopicPartition, int]) -> bool:
    for partition, end in ends.items():
        if await consumer.position(partition) < end:
            return True
    return False


async def _first_valid(
    candidates: Iterable[ConfigDocument], validate: Callable[[ConfigDocument], Awaitable[Coverage]]
) -> tuple[ConfigDocument, Coverage] | None:
    """The first of ``candidates`` that loads, with its coverage; the invalid ones are logged and skipped.

    The winner of the topic may be invalid (written by hand, or by an older version):
    given the winners newest first, this is the latest one that loads, as a running
    worker would have taken.
    """
    for document in candidates:
        try:
            return document, await validate(document)
        except CoverageInvalid as invalid:
            _log_invalid(document, invalid)
    return None


@dataclass(frozen=True, slots=True)
class CoverageInForce:
    """The coverage the workers decide with, as read from the config topic.

    ``document`` is the version taken; ``skipped`` the newer versions on the topic that
    do not load (the workers skip them too).
    """

    document: ConfigDocument
    coverage: Coverage
    skipped: tuple[int, ...] = ()


async def read_coverage_in_force(
    kafka: KafkaConnection,
    topic: str,
    *,
    filename: str = "coverage.yaml",
    calendars: CalendarSource | None = None,
    limits: LoadLimits = DEFAULT_LIMITS,
) -> CoverageInForce | None:
    """The coverage a worker starting now would take from ``topic``, read once; None when
    the topic does not exist or holds no valid document.

    The same rules as :class:`KafkaConfigStore` at start (the winner, else the latest
    valid document; :func:`load_document` with ``calendars`` and ``limits``), without
    creating a topic, joining a group or writing anything: for reports such as
    ``offhours sla report``. ``kafka`` is the brokers, or
    :func:`brokers.client.client_options`. Raises aiokafka's ``KafkaError`` when
    the broker cannot be read.
    """
    admin = AIOKafkaAdminClient(**connection_options(kafka), client_id="offhours-coverage-reader")
    try:
        await admin.start()
        # Metadata of every topic: a request naming this one could make the broker create it.
        described = await admin.describe_topics()
    finally:
        await admin.close()
    if not any(entry["topic"] == topic and entry["error_code"] == 0 for entry in described):
        return None
    consumer = AIOKafkaConsumer(
        **connection_options(kafka), group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest", client_id="offhours-coverage-reader",
    )
    try:
        await consumer.start()
        winners = await _read_winners(consumer, topic)
    finally:
        await consumer.stop()

    async def validate(document: ConfigDocument) -> Coverage:
        return await asyncio.to_thread(
            load_document, document, filename=filename, calendars=calendars, limits=limits
        )

    newest_first = list(reversed(winners))
    found = await _first_valid(newest_first, validate)
    if found is None:
        return None
    document, coverage = found
    skipped = tuple(d.version for d in newest_first[: newest_first.index(document)])
    return CoverageInForce(document, coverage, skipped)


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
    brokers, or :func:`brokers.client.client_options` (TLS/SASL).
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
        calendars: CalendarSource | None = None,
        limits: LoadLimits = DEFAULT_LIMITS,
    ) -> None:
        super().__init__(clock=clock, filename=filename, base_dir=base_dir, calendars=calendars, limits=limits)
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
            await self.publish(ConfigDocument(yaml=seed), expected_etag=None, who="system:seed", what=SEEDED)
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
        winners = await _read_winners(consumer, self.topic)
        found = await _first_valid(reversed(winners), self.validate)
        if found is not None:
            self._document, self._coverage = found
        log.info("coverage configuration read from %s: version %s", self.topic,
                 self._document.version if self._document is not None else "none")

    def _decode(self, value: bytes | None, offset: int) -> ConfigDocument | None:
        return _decode(self.topic, value, offset)

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
                coverage = await self.validate(document)
            except CoverageInvalid as invalid:
                _log_invalid(document, invalid)
                continue
            current = self._document
            if current is not None and document.version < current.version:
                continue  # published here while this one was validated
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
            coverage, event = await self.off_loop(self._prepare, before, document, who, what)
            await self._producer.send_and_wait(self.topic, value=document.to_json(), key=CONFIG_KEY)
            # Read-your-writes: this worker answers with the new version at once; the
            # followers are told when the record comes back from the topic, in its order.
            self._document, self._coverage = document, coverage
            await self._producer.send_and_wait(self.audit_topic, value=orjson.dumps(event), key=CONFIG_KEY)
        return document
