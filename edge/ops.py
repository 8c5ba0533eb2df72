"""The operations API: read and change coverage, see who is on call, claim conversations.

:func:`build_operations_api` returns an aiohttp sub-application, to be mounted at
``/api/v1`` (``app.add_subapp("/api/v1", ops)``). Everything is JSON; errors are
``application/problem+json`` (``{"type", "title", "status", "detail", "problems"?}``).

Authentication: ``Authorization: Bearer <token>``, where the token is one of the
configured tokens; its identity (``ops:anna``) is the "who" of every change in the
audit log. A missing or unknown token gets ``401`` with ``WWW-Authenticate: Bearer``.
Two routes need no token: ``GET /openapi.json`` (the OpenAPI 3.1 document of this
API) and ``/actions/{token}``, the target of a signed action link, whose signature is
the authorisation.

Authorisation: each token has a scope, and the scopes nest. ``read``: the GET
endpoints (the coverage with its secrets masked). ``operate``: also overrides,
claims and "answered". ``admin``: also ``PUT /coverage`` and
``GET /coverage?unmasked=true``. A token without the scope a route needs gets ``403``
naming it (:data:`ROUTE_SCOPES`).

Rate limit: a token bucket per token (per client address for requests without a
valid token, and for the action links): ``rate_limit`` requests per second on
average, ``rate_burst`` at once; beyond, ``429`` with ``Retry-After`` (seconds).

Endpoints (paths relative to the mount point):

* ``GET /coverage`` - the operator's YAML text (``application/yaml``), or the whole
  configuration document as JSON when the client accepts ``application/json``;
  ``ETag`` header; ``If-None-Match`` answers ``304``. Secrets are masked
  (:func:`edge.config_store.masked_text`: ``slack:https://hooks.slack.com/services/T…/B…/****``);
  ``?unmasked=true`` (admin) answers the text as stored.
* ``PUT /coverage`` - replace the YAML (body: the YAML text, or JSON ``{"yaml": …}``,
  at most ``max_coverage_bytes``). ``If-Match`` is required (``428`` without it,
  ``412`` when the coverage changed since it was read); an invalid file gets ``422``
  with every problem and nothing changes. Overrides added through the API are kept.
  A masked value written back (as GET answered it) keeps the secret it masks
  (:func:`edge.config_store.unmask_text`). The file is parsed and validated in a
  worker thread: the API keeps answering meanwhile. ``holidays.ics`` must name a file
  of the holiday calendars folder (``OFFHOURS_OPS__HOLIDAY_CALENDARS_DIR``), by name.
* ``GET /teams`` - the teams, with zone, locale, accounts and staff names.
* ``GET /teams/{team}/coverage?at=`` - the object of ``offhours coverage at`` (README:
  Command line) at ``at`` (ISO 8601; no
  offset means the team's zone), now when absent.
* ``GET /teams/{team}/week?from=`` - the stretches and on-call shifts of the seven
  local days from ``from`` (a date; today in the team's zone when absent). A stretch
  is one mode decided by one rule (:meth:`schedules.Team.pieces`): a holiday's or an
  override's name is on the hours it decides and nowhere else.
* ``GET /teams/{team}/on-call?at=`` - who is on call (ids and names).
* ``GET|POST /teams/{team}/overrides`` - list or add an API override: a coverage
  override ``{from, to, mode, note?}`` or an on-call override ``{from, to, member}``
  (local wall-clock times of the team); ``422`` when invalid or overlapping;
  ``201`` with its ``id``. ``DELETE /teams/{team}/overrides/{id}`` removes one.
  ``If-Match`` is optional on these: an override is an addition, not an overwrite.
* ``POST /conversations/{conversation}/claim`` ``{"member", "event_id"?}`` and
  ``POST /conversations/{conversation}/answered`` ``{"member"?, "event_id"?}`` -
  record the on-call action (``202``); a claim stops the conversation's escalation.
* ``GET /actions/{token}`` - a small HTML page with one button; the button POSTs to
  the same URL, which records the action. Opening the link changes nothing, so mail
  scanners that fetch links cannot claim on anyone's behalf. A link works once
  (:class:`records.links.UsedLinks`, per process): used again, it answers ``409``
  "already used".
"""

from __future__ import annotations

import hmac
import html
import math
import time as monotonic_time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

import orjson
from aiohttp import web

from edge.actions import ActionKind, ActionSink, action_record
from edge.config_store import (
    ConfigDocument,
    ConfigStore,
    EtagMismatch,
    NoCoverage,
    masked_text,
    unmask_text,
)
from edge.ops_config import SCOPES, Principal, Scope
from edge.ratelimit import TokenBuckets
from records.links import ActionLink, LinkInvalid, LinkSigner, UsedLinks
from responders.base import read_capped
from schedules import Coverage, CoverageInvalid, Problem, Team, WallTime
from schedules.loader import parse_wall_time

Clock = Callable[[], datetime]
Monotonic = Callable[[], float]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CONFIG_STORE = web.AppKey("config_store", ConfigStore)
ACTION_SINK = web.AppKey("action_sink", ActionSink)
TOKENS = web.AppKey("tokens", Mapping[str, Principal])
LINK_SIGNER = web.AppKey("link_signer", LinkSigner)
CLOCK = web.AppKey("clock", Clock)  # type: ignore[type-abstract]
IDENTITY = web.RequestKey("identity", str)
SCOPE = web.RequestKey("scope", str)

# Routes that need no bearer token (see the module docstring).
PUBLIC_ROUTES = frozenset({"openapi", "action_page", "action_perform"})
ROUTE_SCOPES: Mapping[str, Scope] = {
    "coverage": "read", "teams": "read", "team_coverage": "read", "team_week": "read",
    "team_on_call": "read", "overrides": "read",
    "override_add": "operate", "override_remove": "operate", "claim": "operate", "answered": "operate",
    "coverage_put": "admin",
}
"""The scope each route needs (``GET /coverage?unmasked=true`` needs ``admin``)."""
DEFAULT_RATE_LIMIT = 20.0
DEFAULT_RATE_BURST = 100
DEFAULT_MAX_COVERAGE_BYTES = 1024 * 1024
PROBLEM_TYPE = "urn:offhours:problem:"
MODES = ("open", "reduced", "closed")
WEEK = timedelta(days=7)
OVERRIDE_RETRIES = 5
# Instants the engine is asked about: a century around now is all operations need, and
# it keeps absurd years (0001, 9999) from overflowing the zone arithmetic.
FIRST_YEAR, LAST_YEAR = 1970, 2199


class ApiProblem(Exception):
    """An error answered as problem+json; raised by handlers, rendered by the middleware."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        kind: str = "about:blank",
        problems: list[Problem] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.kind = kind
        self.problems = problems
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        body: dict[str, Any] = {
            "type": self.kind if self.kind == "about:blank" else PROBLEM_TYPE + self.kind,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.problems is not None:
            body["problems"] = [
                {"file": p.file, "line": p.line, "message": p.message, "hint": p.hint}
                for p in self.problems
            ]
        return web.Response(
            status=self.status,
            body=orjson.dumps(body),
            content_type="application/problem+json",
            headers=self.headers,
        )


def _json(data: Any, *, status: int = 200, etag: str | None = None, headers: Mapping[str, str] | None = None) -> web.Response:
    response = web.Response(status=status, body=orjson.dumps(data), content_type="application/json", headers=headers)
    if etag is not None:
        response.etag = etag
    return response


def _invalid(invalid: CoverageInvalid) -> ApiProblem:
    count = len(invalid.problems)
    return ApiProblem(
        422, "Invalid coverage", f"the coverage was refused with {count} problem(s); nothing changed",
        kind="coverage-invalid", problems=invalid.problems,
    )


@web.middleware
async def _problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render every error as problem+json; an unexpected one as a bare 500 (details in the log)."""
    try:
        return await handler(request)
    except ApiProblem as problem:
        return problem.response()
    except web.HTTPException as http:
        if http.status < 400:
            raise
        return ApiProblem(http.status, http.reason, http.text or http.reason, headers={
            k: v for k, v in http.headers.items() if k.lower() in ("allow", "www-authenticate")
        }).response()
    except NoCoverage as missing:
        return ApiProblem(503, "No coverage", str(missing), kind="no-coverage").response()


RATE_LIMITER = web.AppKey("rate_limiter", TokenBuckets)
USED_LINKS = web.AppKey("used_links", UsedLinks)
MAX_COVERAGE_BYTES = web.AppKey("max_coverage_bytes", int)
MASKED = web.AppKey("masked", dict)


def _limit(request: web.Request, key: str) -> None:
    """Spend one request of ``key``'s bucket, or raise 429 with Retry-After."""
    wait = request.app[RATE_LIMITER].take(key)
    if wait > 0:
        raise ApiProblem(
            429, "Too Many Requests", f"too many requests; retry in {math.ceil(wait)} s",
            kind="rate-limited", headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


def _client(request: web.Request) -> str:
    return f"address:{request.remote or 'unknown'}"


def _has_scope(scope: str, needed: str) -> bool:
    return SCOPES.index(scope) >= SCOPES.index(needed)  # type: ignore[arg-type]


def _require(request: web.Request, needed: Scope) -> None:
    """403 unless the request's token has ``needed`` (or a wider scope)."""
    if not _has_scope(request[SCOPE], needed):
        raise ApiProblem(
            403, "Forbidden", f"this needs a token with scope '{needed}' (this token's scope is '{request[SCOPE]}')",
            kind="forbidden",
        )


@web.middleware
async def _bearer(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a request without a known bearer token (except on the public routes), over its rate, or out of its scope."""
    route_name = request.match_info.route.name
    if route_name in PUBLIC_ROUTES or route_name is None:
        _limit(request, _client(request))
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    principal: Principal | None = None
    if scheme.lower() == "bearer" and presented.strip():
        candidate = presented.strip().encode("utf-8")
        # Compare with every token, without stopping early: the time taken says nothing.
        for token, who in request.app[TOKENS].items():
            if hmac.compare_digest(candidate, token.encode("utf-8")):
                principal = who
    if principal is None:
        _limit(request, _client(request))
        challenge = 'Bearer realm="offhours"' + (', error="invalid_token"' if header else "")
        raise ApiProblem(
            401, "Unauthorized", "a valid bearer token is required (Authorization: Bearer <token>)",
            kind="unauthorized", headers={"WWW-Authenticate": challenge},
        )
    _limit(request, f"token:{principal.identity}")
    request[IDENTITY] = principal.identity
    request[SCOPE] = principal.scope
    _require(request, ROUTE_SCOPES.get(route_name or "", "admin"))
    return await handler(request)


# -- helpers ----------------------------------------------------------------------------


def _team(request: web.Request) -> tuple[Coverage, Team]:
    coverage = request.app[CONFIG_STORE].coverage()
    team_id = request.match_info["team"]
    team = coverage.teams.get(team_id)
    if team is None:
        raise ApiProblem(404, "Unknown team", f"no team {team_id!r} in the coverage; see GET /teams", kind="unknown-team")
    return coverage, team


def _instant(request: web.Request, team: Team, name: str = "at") -> datetime:
    """The ``at`` query parameter as an aware instant (no offset: the team's zone); now when absent."""
    text = request.query.get(name)
    if text is None or not text.strip():
        return request.app[CLOCK]().astimezone(team.timezone)
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ApiProblem(
            400, "Bad time", f"'{name}' must be ISO 8601, e.g. 2026-11-23T21:14:05+01:00 or 2026-11-23T21:14",
            kind="bad-request",
        ) from None
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ApiProblem(400, "Bad time", f"'{name}' must lie between {FIRST_YEAR} and {LAST_YEAR}", kind="bad-request")
    if value.tzinfo is None:
        return WallTime(value).to_instant(team.timezone).astimezone(team.timezone)
    return value.astimezone(team.timezone)


def _if_match(request: web.Request, etag: str) -> None:
    """Raise 412 unless the request's ``If-Match`` names ``etag`` (or is ``*``)."""
    header = request.headers.get("If-Match")
    if header is None:
        return
    if header.strip() == "*":
        return
    # Strong comparison (RFC 9110): a weak tag never matches.
    presented = {part.strip().strip('"') for part in header.split(",") if not part.strip().startswith("W/")}
    if etag not in presented:
        raise ApiProblem(
            412, "Precondition Failed",
            "the coverage changed since you read it; GET /coverage again, re-apply your change and retry",
            kind="etag-mismatch", headers={"ETag": f'"{etag}"'},
        )


async def _read_json_object(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiProblem(400, "Bad JSON", "the body is not valid JSON", kind="bad-request") from None
    if not isinstance(data, dict):
        raise ApiProblem(422, "Bad body", "the body must be a JSON object", kind="bad-request")
    return data


def _field_problem(field: str, message: str, hint: str) -> Problem:
    return Problem(file="request body", line=None, message=f"'{field}': {message}", hint=hint)


def _wall_clock(value: Any, field: str, team: Team, problems: list[Problem]) -> str | None:
    """A team-local wall-clock time as the coverage file writes it (``2026-11-24 14:00``)."""
    hint = 'write a local time of the team, e.g. "2026-11-24 14:00"'
    if not isinstance(value, str) or not value.strip():
        problems.append(_field_problem(field, "is required, a text", hint))
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        aware = datetime.fromisoformat(text)
    except ValueError:
        aware = None
    if aware is not None and not FIRST_YEAR <= aware.year <= LAST_YEAR:
        problems.append(_field_problem(field, f"{value!r} is out of range", f"write a year from {FIRST_YEAR} to {LAST_YEAR}"))
        return None
    if aware is not None and aware.tzinfo is not None:
        local = aware.astimezone(team.timezone).replace(tzinfo=None)
    else:
        wall = parse_wall_time(text)
        if wall is None:
            problems.append(_field_problem(field, f"{value!r} is not a date and time", hint))
            return None
        local = wall.local
    if local.second or local.microsecond:
        problems.append(_field_problem(field, f"{value!r} has seconds", "overrides are to the minute"))
        return None
    return local.strftime("%Y-%m-%d %H:%M")


def _override_from_body(body: dict[str, Any], team: Team, who: str, at: datetime) -> dict[str, Any]:
    """The stored override for a request body, or 422 naming every fault of the body."""
    problems: list[Problem] = []
    known = {"from", "to", "mode", "note", "member"}
    for unknown in sorted(set(body) - known):
        problems.append(_field_problem(unknown, "is not a field of an override", "use from, to and mode (with note) or member"))
    start = _wall_clock(body.get("from"), "from", team, problems)
    end = _wall_clock(body.get("to"), "to", team, problems)
    mode, member, note = body.get("mode"), body.get("member"), body.get("note")
    override: dict[str, Any] = {"id": f"ovr-{uuid.uuid4().hex[:12]}", "team": team.id}
    if (mode is None) == (member is None):
        problems.append(_field_problem(
            "mode", "give exactly one of 'mode' (a coverage override) or 'member' (an on-call override)",
            '{"from": …, "to": …, "mode": "closed"} or {"from": …, "to": …, "member": "luca"}',
        ))
    elif mode is not None:
        if mode not in MODES:
            problems.append(_field_problem("mode", f"{mode!r} is not a mode", "write open, reduced or closed"))
        if note is not None and not isinstance(note, str):
            problems.append(_field_problem("note", "must be a text", 'e.g. "strike"'))
        override.update(kind="coverage", mode=mode, note=note)
    else:
        if not isinstance(member, str) or not member:
            problems.append(_field_problem("member", "must be a staff id", "e.g. luca"))
        if note is not None:
            problems.append(_field_problem("note", "an on-call override has no note", "leave 'note' out"))
        override.update(kind="on_call", member=member)
    if problems:
        raise ApiProblem(422, "Invalid override", f"the override was refused with {len(problems)} problem(s)",
                         kind="override-invalid", problems=problems)
    override.update({"from": start, "to": end, "by": who, "at": at.isoformat(timespec="seconds")})
    return override


async def _publish(
    request: web.Request,
    change: Callable[[ConfigDocument], ConfigDocument],
    what: Callable[[ConfigDocument], str],
) -> ConfigDocument:
    """Apply ``change`` to the current document and publish it, retrying when another change won the race.

    With ``If-Match`` the caller's version must still be current (412 otherwise);
    without it the change is re-applied to the newest document a few times.
    """
    store = request.app[CONFIG_STORE]
    strict = "If-Match" in request.headers
    for _ in range(OVERRIDE_RETRIES):
        current = store.current()
        _if_match(request, current.etag)
        draft = change(current)
        try:
            return await store.publish(draft, expected_etag=current.etag, who=request[IDENTITY], what=what(current))
        except CoverageInvalid as invalid:
            raise _invalid(invalid) from None
        except EtagMismatch:
            if strict:
                _if_match(request, store.current().etag)
    raise ApiProblem(409, "Conflict", "the coverage kept changing; retry", kind="conflict")


# -- coverage ---------------------------------------------------------------------------


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").strip().lower() in ("1", "true", "yes")


async def _masked(request: web.Request, document: ConfigDocument) -> str:
    """The document's text with its secrets masked, made off the event loop once per version."""
    cache = request.app[MASKED]
    text = cache.get(document.etag)
    if text is None:
        store = request.app[CONFIG_STORE]
        text = await store.off_loop(masked_text, document.yaml)
        cache.clear()  # one version at a time is all that is asked for
        cache[document.etag] = text
    return text


async def get_coverage(request: web.Request) -> web.StreamResponse:
    unmasked = _flag(request, "unmasked")
    if unmasked:
        _require(request, "admin")
    document = request.app[CONFIG_STORE].current()
    if_none_match = request.headers.get("If-None-Match", "")
    if document.etag in {part.strip().removeprefix("W/").strip('"') for part in if_none_match.split(",")}:
        response = web.Response(status=304)
        response.etag = document.etag
        return response
    text = document.yaml if unmasked else await _masked(request, document)
    headers = {"Cache-Control": "no-store"}
    accept = request.headers.get("Accept", "")
    if "application/json" in accept and "yaml" not in accept:
        followers = request.app[CONFIG_STORE].followers
        worker = {"applied": followers.applied, "refused": followers.refused, "error": followers.error}
        return _json({**document.to_dict(), "yaml": text, "worker": worker}, etag=document.etag, headers=headers)
    response = web.Response(text=text, content_type="application/yaml", headers=headers)
    response.etag = document.etag
    return response


async def _read_limited(request: web.Request) -> bytes:
    """The request body, or 413 when it is larger than the coverage limit."""
    limit = request.app[MAX_COVERAGE_BYTES]
    too_large = ApiProblem(
        413, "Payload Too Large", f"the coverage must be at most {limit} bytes", kind="too-large",
    )
    # A JSON body escapes the text (newlines, quotes): room for that; the loader checks the text itself.
    allowed = 2 * limit + 64 if request.content_type == "application/json" else limit
    body = await read_capped(request, allowed)
    if body is None:
        raise too_large
    return body


async def put_coverage(request: web.Request) -> web.StreamResponse:
    if "If-Match" not in request.headers:
        raise ApiProblem(
            428, "Precondition Required",
            "send If-Match with the ETag of GET /coverage, so that two operators cannot overwrite each other",
            kind="if-match-required",
        )
    raw = await _read_limited(request)
    if request.content_type == "application/json":
        try:
            body = orjson.loads(raw) if raw.strip() else {}
        except orjson.JSONDecodeError:
            raise ApiProblem(400, "Bad JSON", "the body is not valid JSON", kind="bad-request") from None
        text = body.get("yaml") if isinstance(body, dict) else None
        if not isinstance(text, str):
            raise ApiProblem(422, "Bad body", 'the JSON body must be {"yaml": "<the coverage file>"}', kind="bad-request")
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiProblem(422, "Bad body", "the coverage file must be UTF-8 text", kind="bad-request") from None
    store = request.app[CONFIG_STORE]
    current = store.current()
    _if_match(request, current.etag)
    try:
        # Masked values written back keep their secrets (GET answers them masked).
        text = await store.off_loop(unmask_text, text, current.yaml, getattr(store, "filename", "coverage.yaml"))
    except CoverageInvalid as invalid:
        raise _invalid(invalid) from None
    # Validated once, in publish (the file alone first, so its problems carry its own lines).
    document = await _publish(
        request,
        lambda current: ConfigDocument(yaml=text, overrides=current.overrides),
        lambda current: "replaced the coverage file",
    )
    return _json({**document.to_dict(), "yaml": await _masked(request, document)}, etag=document.etag)


# -- teams ------------------------------------------------------------------------------


def _team_summary(team: Team) -> dict[str, Any]:
    return {
        "id": team.id,
        "name": team.name,
        "timezone": team.timezone.key,
        "locale": team.locale,
        "accounts": list(team.accounts),
        "staff": [{"id": member.id, "name": member.name} for member in team.staff.values()],
    }


async def list_teams(request: web.Request) -> web.StreamResponse:
    coverage = request.app[CONFIG_STORE].coverage()
    return _json({"teams": [_team_summary(team) for team in coverage.teams.values()]})


async def team_coverage(request: web.Request) -> web.StreamResponse:
    _, team = _team(request)
    at = _instant(request, team)
    return _json(team.at(at).to_contract())


def _text(instant: datetime) -> str:
    return instant.isoformat(timespec="seconds")


async def team_week(request: web.Request) -> web.StreamResponse:
    _, team = _team(request)
    text = request.query.get("from")
    if text is None or not text.strip():
        first = request.app[CLOCK]().astimezone(team.timezone).date()
    else:
        try:
            first = date.fromisoformat(text.strip())
        except ValueError:
            raise ApiProblem(400, "Bad date", "'from' must be a date, e.g. 2026-11-23", kind="bad-request") from None
        if not FIRST_YEAR <= first.year <= LAST_YEAR:
            raise ApiProblem(400, "Bad date", f"'from' must lie between {FIRST_YEAR} and {LAST_YEAR}", kind="bad-request")
    start = WallTime(datetime.combine(first, time())).to_instant(team.timezone)
    end = WallTime(datetime.combine(first + WEEK, time())).to_instant(team.timezone)
    return _json({
        "team": team.id,
        "from": _text(start.astimezone(team.timezone)),
        "to": _text(end.astimezone(team.timezone)),
        "stretches": [
            {"start": _text(s.start), "end": _text(s.end), "mode": s.mode, "source": s.source, "note": s.note}
            for s in team.pieces(start, end)
        ],
        "on_call": [
            {"start": _text(s.start), "end": _text(s.end), "member": s.member}
            for s in team.on_call_shifts(start, end)
        ],
    })


async def team_on_call(request: web.Request) -> web.StreamResponse:
    _, team = _team(request)
    at = _instant(request, team)
    members = team.on_call_at(at)
    return _json({
        "team": team.id,
        "at": _text(at),
        "on_call": [
            {"id": member, "name": team.staff[member].name if member in team.staff else member}
            for member in members
        ],
    })


# -- overrides --------------------------------------------------------------------------


async def list_overrides(request: web.Request) -> web.StreamResponse:
    _, team = _team(request)
    document = request.app[CONFIG_STORE].current()
    return _json(
        {"overrides": [dict(o) for o in document.overrides if o.get("team") == team.id]},
        etag=document.etag,
    )


async def add_override(request: web.Request) -> web.StreamResponse:
    _, team = _team(request)
    body = await _read_json_object(request)
    override = _override_from_body(body, team, request[IDENTITY], request.app[CLOCK]())
    summary = (
        f"{override['mode']} {override['from']} to {override['to']}" if override["kind"] == "coverage"
        else f"on call {override['member']} {override['from']} to {override['to']}"
    )
    document = await _publish(
        request,
        lambda current: ConfigDocument(yaml=current.yaml, overrides=(*current.overrides, override)),
        lambda current: f"added override {override['id']} to {team.id}: {summary}",
    )
    location = f"{request.path.rstrip('/')}/{override['id']}"
    return _json(override, status=201, etag=document.etag, headers={"Location": location})


async def remove_override(request: web.Request) -> web.StreamResponse:
    _, team = _team(request)
    override_id = request.match_info["override"]
    store = request.app[CONFIG_STORE]
    found = store.current().override(override_id)
    if found is None or found.get("team") != team.id:
        raise ApiProblem(
            404, "Unknown override",
            f"no API override {override_id!r} for team {team.id!r} (overrides in the file are changed with PUT /coverage)",
            kind="unknown-override",
        )

    def without(current: ConfigDocument) -> ConfigDocument:
        return ConfigDocument(yaml=current.yaml, overrides=tuple(o for o in current.overrides if o.get("id") != override_id))

    document = await _publish(request, without, lambda current: f"removed override {override_id} from {team.id}")
    return _json({"removed": override_id, "version": document.version}, etag=document.etag)


# -- on-call actions --------------------------------------------------------------------


async def _conversation_action(request: web.Request, action: ActionKind) -> web.StreamResponse:
    body = await _read_json_object(request)
    member, event_id = body.get("member"), body.get("event_id")
    problems: list[Problem] = []
    if action == "claim" and member is None:
        problems.append(_field_problem("member", "is required", 'the staff id who takes the conversation, e.g. "marta"'))
    if member is not None and (not isinstance(member, str) or not member):
        problems.append(_field_problem("member", "must be a staff id", 'e.g. "marta"'))
    if event_id is not None and (not isinstance(event_id, str) or not event_id):
        problems.append(_field_problem("event_id", "must be an event id", 'e.g. "fb:m_abc123"'))
    if problems:
        raise ApiProblem(422, "Invalid action", f"the {action} was refused", kind="action-invalid", problems=problems)
    record = action_record(
        action=action, conversation=request.match_info["conversation"], member=member,
        by=request[IDENTITY], via="api", at=request.app[CLOCK](), event_id=event_id,
    )
    await request.app[ACTION_SINK].record(record)
    return _json(record.to_dict(), status=202)


async def claim(request: web.Request) -> web.StreamResponse:
    return await _conversation_action(request, "claim")


async def answered(request: web.Request) -> web.StreamResponse:
    return await _conversation_action(request, "answered")


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title></head>
<body style="font-family: sans-serif; max-width: 32rem; margin: 3rem auto; padding: 0 1rem">
<h1>{title}</h1>
{body}
</body></html>
"""

_LINK_ERRORS = {
    "used": (409, "This link was already used", "Each link works once; use the operations API to change the conversation again."),
    "expired": (410, "This link has expired", "Ask for a new notification, or use the operations API."),
    "tampered": (403, "This link is not valid", "The link was changed or is not ours."),
    "malformed": (403, "This link is not valid", "The link is incomplete; copy the whole link."),
}
_ACTION_WORDS = {"claim": ("Claim this conversation", "claimed"), "answered": ("Mark as answered", "marked as answered")}


def _page(title: str, body: str, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        text=_PAGE.format(title=html.escape(title), body=body),
        content_type="text/html",
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


def _verified(request: web.Request) -> ActionLink | web.Response:
    """The link of the request's token, or the page that says why it is not valid."""
    try:
        link = request.app[LINK_SIGNER].verify(request.match_info["token"])
    except LinkInvalid as invalid:
        return _link_error(invalid.reason)
    if request.app[USED_LINKS].used(link):
        return _link_error("used")
    return link


def _link_error(reason: str) -> web.Response:
    status, title, text = _LINK_ERRORS[reason]
    return _page(title, f"<p>{html.escape(text)}</p>", status)


async def action_page(request: web.Request) -> web.StreamResponse:
    link = _verified(request)
    if isinstance(link, web.Response):
        return link
    button, _ = _ACTION_WORDS[link.action]
    token = html.escape(request.match_info["token"], quote=True)
    body = (
        f"<p>Conversation <code>{html.escape(link.conversation)}</code>, "
        f"for <strong>{html.escape(link.member)}</strong>.</p>"
        f'<form method="post" action="{token}"><button type="submit" '
        f'style="font-size: 1.2rem; padding: .6rem 1.2rem">{html.escape(button)}</button></form>'
        f"<p><small>This link expires at {html.escape(_text(link.expires))}.</small></p>"
    )
    return _page(button, body)


async def action_perform(request: web.Request) -> web.StreamResponse:
    link = _verified(request)
    if isinstance(link, web.Response):
        return link
    used = request.app[USED_LINKS]
    if not used.use(link):  # another click got here first
        return _link_error("used")
    record = action_record(
        action=link.action, conversation=link.conversation, member=link.member,
        by=f"link:{link.member}", via="link", at=request.app[CLOCK](),
        link_token=request.match_info["token"],
    )
    try:
        await request.app[ACTION_SINK].record(record)
    except BaseException:
        used.release(link)  # not recorded: the link may be used again
        raise
    _, done = _ACTION_WORDS[link.action]
    return _page(
        f"Conversation {done}",
        f"<p>Thank you, {html.escape(link.member)}: <code>{html.escape(link.conversation)}</code> is {done}.</p>",
    )


async def openapi(request: web.Request) -> web.StreamResponse:
    server = request.path[: -len("/openapi.json")] or "/"
    try:
        teams = list(request.app[CONFIG_STORE].coverage().teams)
    except NoCoverage:
        teams = []
    return _json(openapi_document(server, teams))


def build_operations_api(
    config_store: ConfigStore,
    actions_sink: ActionSink,
    tokens: Mapping[str, str | Principal],
    link_signer: LinkSigner,
    clock: Clock,
    *,
    rate_limit: float = DEFAULT_RATE_LIMIT,
    rate_burst: int = DEFAULT_RATE_BURST,
    max_coverage_bytes: int = DEFAULT_MAX_COVERAGE_BYTES,
    monotonic: Monotonic = monotonic_time.monotonic,
    used_links: UsedLinks | None = None,
) -> web.Application:
    """The operations API as a sub-application to mount at ``/api/v1`` (module docstring).

    ``tokens`` maps each bearer token to who it stands for: a
    :class:`~edge.ops_config.Principal` (identity and scope;
    :meth:`edge.ops_config.OpsSettings.bearer_tokens`) or an identity alone, scope
    ``admin`` (``{"s3cr3t": "ops:anna"}``). ``clock`` returns the current aware instant
    ("now" for coverage, audit and links); ``monotonic`` the seconds of the rate
    limiter (:class:`edge.ratelimit.TokenBuckets`: ``rate_limit`` per second, ``rate_burst`` at once,
    per token). ``max_coverage_bytes`` bounds a ``PUT /coverage`` body. ``used_links``
    remembers used action links (a new :class:`~records.links.UsedLinks` when None);
    :meth:`edge.ops_config.OpsSettings.api_options` gives the keyword arguments.
    """
    app = web.Application(middlewares=[_problems, _bearer])
    app[CONFIG_STORE] = config_store
    app[ACTION_SINK] = actions_sink
    app[TOKENS] = {token: who if isinstance(who, Principal) else Principal(who) for token, who in tokens.items()}
    app[LINK_SIGNER] = link_signer
    app[CLOCK] = clock
    app[RATE_LIMITER] = TokenBuckets(rate_limit, rate_burst, monotonic)
    app[USED_LINKS] = used_links if used_links is not None else UsedLinks(clock)
    app[MAX_COVERAGE_BYTES] = max_coverage_bytes
    app[MASKED] = {}
    app.router.add_get("/openapi.json", openapi, name="openapi")
    app.router.add_get("/coverage", get_coverage, name="coverage")
    app.router.add_put("/coverage", put_coverage, name="coverage_put")
    app.router.add_get("/teams", list_teams, name="teams")
    app.router.add_get("/teams/{team}/coverage", team_coverage, name="team_coverage")
    app.router.add_get("/teams/{team}/week", team_week, name="team_week")
    app.router.add_get("/teams/{team}/on-call", team_on_call, name="team_on_call")
    app.router.add_get("/teams/{team}/overrides", list_overrides, name="overrides")
    app.router.add_post("/teams/{team}/overrides", add_override, name="override_add")
    app.router.add_delete("/teams/{team}/overrides/{override}", remove_override, name="override_remove")
    app.router.add_post("/conversations/{conversation}/claim", claim, name="claim")
    app.router.add_post("/conversations/{conversation}/answered", answered, name="answered")
    app.router.add_get("/actions/{token}", action_page, name="action_page")
    app.router.add_post("/actions/{token}", action_perform, name="action_perform")
    return app


# -- the OpenAPI document -----------------------------------------------------------------


def _problem_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def _json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_AT = {"name": "at", "in": "query", "required": False, "schema": {"type": "string"},
       "description": "ISO 8601 instant; without an offset it is read in the team's zone; now when absent"}
_IF_MATCH = {"name": "If-Match", "in": "header", "schema": {"type": "string"},
             "description": "the ETag of the coverage read"}
_COMMON = {"401": _problem_response("missing or unknown bearer token"),
           "403": _problem_response("the token's scope does not allow this (the answer names the scope needed)"),
           "429": _problem_response("too many requests from this token; see Retry-After"),
           "503": _problem_response("no coverage configured yet")}
_LINK_LIMIT = {"429": {"description": "too many requests from this address; see Retry-After"}}


def openapi_document(server: str = "/api/v1", teams: Sequence[str] = ()) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the operations API, served at ``GET /openapi.json``.

    ``teams``, when given, are the team ids of the coverage in use, listed as the
    values the ``{team}`` path parameter takes.
    """
    team_schema: dict[str, Any] = {"type": "string"}
    if teams:
        team_schema["enum"] = list(teams)
    team = {"name": "team", "in": "path", "required": True, "schema": team_schema}
    team_errors = {**_COMMON, "400": _problem_response("bad query parameter"), "404": _problem_response("unknown team")}
    override_input = {
        "oneOf": [
            {"type": "object", "required": ["from", "to", "mode"], "additionalProperties": False,
             "properties": {"from": {"type": "string", "examples": ["2026-11-24 14:00"]},
                            "to": {"type": "string", "examples": ["2026-11-25 00:00"]},
                            "mode": {"enum": list(MODES)}, "note": {"type": "string"}}},
            {"type": "object", "required": ["from", "to", "member"], "additionalProperties": False,
             "properties": {"from": {"type": "string"}, "to": {"type": "string"}, "member": {"type": "string"}}},
        ]
    }
    action_body = {"type": "object", "properties": {"member": {"type": "string"}, "event_id": {"type": "string"}}}
    html_response = {"content": {"text/html": {"schema": {"type": "string"}}}}
    token = {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
    conversation = {"name": "conversation", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "offhours operations API", "version": "1",
                 "description": "Coverage configuration, overrides, on-call and on-call actions."},
        "servers": [{"url": server}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": (
                "a token of OFFHOURS_OPS__TOKENS; its scope (read, operate or admin, each including the ones "
                "before) decides what it may do: read the GET endpoints, operate overrides and on-call actions, "
                "admin replace the coverage and read it unmasked")}},
            "schemas": {
                "Problem": {"type": "object", "required": ["type", "title", "status", "detail"], "properties": {
                    "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                    "detail": {"type": "string"},
                    "problems": {"type": "array", "items": {"type": "object", "properties": {
                        "file": {"type": "string"}, "line": {"type": ["integer", "null"]},
                        "message": {"type": "string"}, "hint": {"type": "string"}}}}}},
                "ConfigDocument": {"type": "object", "properties": {
                    "yaml": {"type": "string"}, "overrides": {"type": "array", "items": {"type": "object"}},
                    "version": {"type": "integer"}, "etag": {"type": "string"},
                    "updated_by": {"type": ["string", "null"]}, "updated_at": {"type": ["string", "null"]}}},
                "CoverageAt": {"type": "object", "required": ["team", "at", "mode", "since", "until", "next_open", "on_call", "source"],
                               "properties": {"team": {"type": "string"}, "at": {"type": "string"},
                                              "mode": {"enum": list(MODES)},
                                              "since": {"type": ["string", "null"]}, "until": {"type": ["string", "null"]},
                                              "next_open": {"type": ["string", "null"]},
                                              "on_call": {"type": "array", "items": {"type": "string"}},
                                              "source": {"enum": ["hours", "holiday", "override"]}}},
                "Action": {"type": "object", "properties": {
                    "action_id": {"type": "string"}, "action": {"enum": ["claim", "answered"]},
                    "conversation": {"type": "string"}, "event_id": {"type": ["string", "null"]},
                    "member": {"type": ["string", "null"]}, "by": {"type": "string"},
                    "via": {"enum": ["api", "link"]}, "at": {"type": "string"}}},
            },
        },
        "paths": {
            "/openapi.json": {"get": {"summary": "This document", "security": [],
                                      "responses": {"200": _json_response("the OpenAPI document", {"type": "object"})}}},
            "/coverage": {
                "get": {"summary": "The coverage file in use, secrets masked (scope read)", "parameters": [
                    {"name": "unmasked", "in": "query", "required": False, "schema": {"type": "boolean"},
                     "description": "true: the text as stored, secrets included (scope admin)"}], "responses": {
                    "200": {"description": "the YAML, or the whole document as JSON",
                            "headers": {"ETag": {"schema": {"type": "string"}}},
                            "content": {"application/yaml": {"schema": {"type": "string"}},
                                        "application/json": {"schema": {"$ref": "#/components/schemas/ConfigDocument"}}}},
                    "304": {"description": "not modified (If-None-Match)"}, **_COMMON}},
                "put": {"summary": "Replace the coverage file (scope admin); masked values written back keep their secrets",
                        "parameters": [_IF_MATCH],
                        "requestBody": {"required": True, "content": {
                            "application/yaml": {"schema": {"type": "string"}},
                            "application/json": {"schema": {"type": "object", "required": ["yaml"],
                                                            "properties": {"yaml": {"type": "string"}}}}}},
                        "responses": {"200": _json_response("replaced", {"$ref": "#/components/schemas/ConfigDocument"}),
                                      "400": _problem_response("bad body"),
                                      "412": _problem_response("the coverage changed since it was read"),
                                      "413": _problem_response("larger than the coverage size limit"),
                                      "422": _problem_response("invalid coverage: every problem listed"),
                                      "428": _problem_response("If-Match is required"), **_COMMON}},
            },
            "/teams": {"get": {"summary": "The teams", "responses": {
                "200": _json_response("the teams", {"type": "object"}), **_COMMON}}},
            "/teams/{team}/coverage": {"get": {"summary": "Coverage at an instant", "parameters": [team, _AT],
                                               "responses": {"200": _json_response("the coverage at the instant (team, at, mode, since, until, next_open, on_call, source)", {"$ref": "#/components/schemas/CoverageAt"}), **team_errors}}},
            "/teams/{team}/week": {"get": {"summary": "Stretches and on-call shifts of seven days", "parameters": [
                team, {"name": "from", "in": "query", "required": False, "schema": {"type": "string"},
                        "description": "first local day (YYYY-MM-DD); today when absent"}],
                "responses": {"200": _json_response("the week", {"type": "object"}), **team_errors}}},
            "/teams/{team}/on-call": {"get": {"summary": "Who is on call", "parameters": [team, _AT],
                                              "responses": {"200": _json_response("on call", {"type": "object"}), **team_errors}}},
            "/teams/{team}/overrides": {
                "get": {"summary": "API overrides of a team", "parameters": [team],
                        "responses": {"200": _json_response("the overrides", {"type": "object"}), **team_errors}},
                "post": {"summary": "Add an override", "parameters": [team, _IF_MATCH],
                         "requestBody": {"required": True, "content": {"application/json": {"schema": override_input}}},
                         "responses": {"201": _json_response("added; its id", {"type": "object"}),
                                       "409": _problem_response("the coverage kept changing"),
                                       "412": _problem_response("the coverage changed since it was read"),
                                       "422": _problem_response("invalid or overlapping"), **team_errors}},
            },
            "/teams/{team}/overrides/{override}": {"delete": {
                "summary": "Remove an API override",
                "parameters": [team, {"name": "override", "in": "path", "required": True, "schema": {"type": "string"}}, _IF_MATCH],
                "responses": {"200": _json_response("removed", {"type": "object"}),
                              "412": _problem_response("the coverage changed since it was read"),
                              "422": _problem_response("the coverage without it is invalid"), **team_errors}}},
            "/conversations/{conversation}/claim": {"post": {
                "summary": "Claim a routed or paged conversation (stops its escalation)", "parameters": [conversation],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {**action_body, "required": ["member"]}}}},
                "responses": {"202": _json_response("recorded", {"$ref": "#/components/schemas/Action"}),
                              "400": _problem_response("bad JSON"), "422": _problem_response("invalid"), **_COMMON}}},
            "/conversations/{conversation}/answered": {"post": {
                "summary": "Mark a conversation answered", "parameters": [conversation],
                "requestBody": {"required": False, "content": {"application/json": {"schema": action_body}}},
                "responses": {"202": _json_response("recorded", {"$ref": "#/components/schemas/Action"}),
                              "400": _problem_response("bad JSON"), "422": _problem_response("invalid"), **_COMMON}}},
            "/actions/{token}": {
                "get": {"summary": "The page of a signed action link", "security": [], "parameters": [token],
                        "responses": {"200": {"description": "a page with one button", **html_response},
                                      "403": {"description": "not a valid link", **html_response},
                                      "409": {"description": "already used", **html_response},
                                      "410": {"description": "expired", **html_response}, **_LINK_LIMIT}},
                "post": {"summary": "Perform the action of a signed link", "security": [], "parameters": [token],
                         "responses": {"200": {"description": "done", **html_response},
                                       "403": {"description": "not a valid link", **html_response},
                                       "409": {"description": "already used", **html_response},
                                       "410": {"description": "expired", **html_response}, **_LINK_LIMIT}},
            },
        },
    }
