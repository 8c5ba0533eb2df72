"""The console's aiohttp application, mounted at ``/console`` (docs/console.md).

:func:`build_console` returns a sub-application; :func:`mount_console` adds it (and the
redirect from ``/console``) to the service's root application. Pages are rendered
server side from :mod:`console.views` with Jinja2 (autoescaped: customer text is
always escaped). Nothing but the sign-in page and the static files is served without
a session (:mod:`console.session`).

Changes go through the operations API itself, on the same server: the console calls
``POST /teams/{team}/overrides`` (with ``If-Match``: the ETag the form was rendered
with), ``DELETE /teams/{team}/overrides/{id}``, ``POST /conversations/{c}/claim`` and
``/answered`` with the signed-in operator's token, so the same validation, ETag,
scopes, rate limit and audit apply, and the API's answer is shown as it is.
"""

from __future__ import annotations

import time as monotonic_time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import jinja2
from aiohttp import web

from brokers.client import KafkaConnection
from console import views
from console.feed import TopicFeed, Topics
from console.projection import Projection
from console.session import COOKIE, Session, Sessions
from edge.config_store import ConfigStore, NoCoverage
from edge.ops_config import OpsSettings, Principal
from records.links import LinkInvalid, LinkSigner
from schedules import Coverage, Team, WallTime

Clock = Callable[[], datetime]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HERE = Path(__file__).parent
PREFIX = "/console"
PUBLIC = frozenset({"login", "login_post", "static", "link"})
DAYS_CHOICES = (14, 21, 28)

SESSIONS = web.AppKey("console_sessions", Sessions)
STORE = web.AppKey("console_store", ConfigStore)
PROJECTION = web.AppKey("console_projection", Projection)
CLOCK = web.AppKey("console_clock", Clock)  # type: ignore[type-abstract]
API_PREFIX = web.AppKey("console_api_prefix", str)
TEMPLATES = web.AppKey("console_templates", jinja2.Environment)
SIGNER = web.AppKey("console_signer", LinkSigner)
SESSION = web.RequestKey("console_session", Session)
STARTED = web.RequestKey("console_started", float)


def environment() -> jinja2.Environment:
    """The templates, autoescaped."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, trim_blocks=True, lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["urlquote"] = lambda value: quote(str(value), safe="")
    return env


def _render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    session = request.get(SESSION)
    cookie = request.cookies.get(COOKIE, "")
    started = request.get(STARTED, monotonic_time.perf_counter())
    body = request.app[TEMPLATES].get_template(template).render(
        session=session, csrf=request.app[SESSIONS].csrf(cookie) if session else "", page=template.split(".")[0],
        notice=request.query.get("notice"), error=request.query.get("error"), prefix=PREFIX,
        server_ms=round((monotonic_time.perf_counter() - started) * 1000, 1), **context,
    )
    return web.Response(text=body, content_type="text/html", status=status, headers=_SECURITY_HEADERS)


_SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer would make browsers send "Origin: null"
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}


@web.middleware
async def _signed_in(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every page needs a session; a POST also a CSRF token and (when sent) a same-origin ``Origin``."""
    request[STARTED] = monotonic_time.perf_counter()
    name = request.match_info.route.name
    if name in PUBLIC:
        return await handler(request)
    cookie = request.cookies.get(COOKIE)
    session = request.app[SESSIONS].read(cookie)
    if session is None:
        raise web.HTTPSeeOther(f"{PREFIX}/login")
    request[SESSION] = session
    if request.method == "POST":
        origin = request.headers.get("Origin")
        if origin is not None and origin != f"{request.scheme}://{request.host}":
            raise web.HTTPForbidden(text="cross-origin form refused")
        form = await request.post()
        csrf = form.get("csrf")
        if not request.app[SESSIONS].csrf_ok(cookie or "", csrf if isinstance(csrf, str) else None):
            raise web.HTTPForbidden(text="the form is stale or not from the console (CSRF); reload the page")
    return await handler(request)


def _coverage(request: web.Request) -> Coverage:
    try:
        return request.app[STORE].coverage()
    except NoCoverage:
        raise web.HTTPServiceUnavailable(text="no coverage loaded yet") from None


def _now(request: web.Request) -> datetime:
    return request.app[CLOCK]()


def _team(request: web.Request, coverage: Coverage, name: str = "team") -> Team:
    value = request.query.get(name)
    if value is None or value not in coverage.teams:
        return next(iter(coverage.teams.values()))
    return coverage.teams[value]


def _back(path: str, **query: str) -> web.HTTPSeeOther:
    query = {k: v for k, v in query.items() if v}
    return web.HTTPSeeOther(f"{PREFIX}{path}" + (f"?{urlencode(query)}" if query else ""))


# -- sign in ------------------------------------------------------------------------------


async def login(request: web.Request) -> web.StreamResponse:
    return _render(request, "login.html.j2")


async def login_post(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    token = form.get("token")
    found = request.app[SESSIONS].principal(token) if isinstance(token, str) and token.strip() else None
    if found is None:
        return _render(request, "login.html.j2", status=401, failed=True)
    value = request.app[SESSIONS].cookie(*found)
    response = web.HTTPSeeOther(f"{PREFIX}/")
    response.set_cookie(COOKIE, value, httponly=True, samesite="Strict", path=PREFIX, secure=request.secure,
                        max_age=int(request.app[SESSIONS].ttl.total_seconds()))
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    response = web.HTTPSeeOther(f"{PREFIX}/login")
    response.del_cookie(COOKIE, path=PREFIX)
    raise response


# -- pages --------------------------------------------------------------------------------


async def now_page(request: web.Request) -> web.StreamResponse:
    coverage = _coverage(request)
    stats = request.app[PROJECTION].promise_stats()
    return _render(request, "now.html.j2", teams=views.now_panel(coverage, _now(request), stats))


async def timeline_page(request: web.Request) -> web.StreamResponse:
    coverage = _coverage(request)
    team = _team(request, coverage)
    try:
        first = date.fromisoformat(request.query.get("from", ""))
    except ValueError:
        first = _now(request).astimezone(team.timezone).date()
    try:
        days = int(request.query.get("days", "14"))
    except ValueError:
        days = 14
    days = min(max(days, 7), 28)
    data = views.timeline(team, first, days)
    return _render(request, "timeline.html.j2", teams=list(coverage.teams), team=team.id, tl=data,
                   days_choices=DAYS_CHOICES, prev=(first - timedelta(days=7)).isoformat(), next=(first + timedelta(days=7)).isoformat())


async def preview_page(request: web.Request) -> web.StreamResponse:
    coverage = _coverage(request)
    team = _team(request, coverage)
    query = request.query
    local_now = _now(request).astimezone(team.timezone)
    form = {
        "team": team.id,
        "account": query.get("account") if query.get("account") in team.accounts else (team.accounts[0] if team.accounts else ""),
        "channel": query.get("channel") if query.get("channel") in views.CHANNELS else "whatsapp",
        "kind": query.get("kind") if query.get("kind") in views.KINDS else "dm",
        "at": query.get("at") or local_now.strftime("%Y-%m-%dT%H:%M"),
        "text": query.get("text", "Buonasera, il mio ordine non è arrivato"),
        "lang": query.get("lang", team.locale),
        "author": query.get("author", "Ana Lopez"),
    }
    result = None
    problem = None
    if "at" in query:
        try:
            wall = datetime.fromisoformat(form["at"])
            at = (WallTime(wall).to_instant(team.timezone) if wall.tzinfo is None else wall).astimezone(team.timezone)
        except ValueError:
            problem = "write the time as 2026-12-24T02:00 (the team's local time)"
        else:
            triage = request.app[PROJECTION].triage()
            if triage is not None:
                result = views.preview(triage, team, account=form["account"], channel=form["channel"], kind=form["kind"],
                                       at=at, text=form["text"], lang=form["lang"], author=form["author"],
                                       stats=request.app[PROJECTION].promise_stats())
    return _render(request, "preview.html.j2", teams=list(coverage.teams), accounts=team.accounts, form=form, result=result,
                   problem=problem, channels=views.CHANNELS, kinds=views.KINDS)


async def queue_page(request: web.Request) -> web.StreamResponse:
    coverage = _coverage(request)
    team_id = request.query.get("team") if request.query.get("team") in coverage.teams else None
    # All teams: the first rows of each backlog (each team's own queue lists more).
    data = views.queue(coverage, request.app[PROJECTION], _now(request), team_id=team_id,
                       backlog_limit=None if team_id else views.BACKLOG_PREVIEW)
    return _render(request, "queue.html.j2", teams=list(coverage.teams), team=team_id or "", q=data)


async def overrides_page(request: web.Request) -> web.StreamResponse:
    coverage = _coverage(request)
    team = _team(request, coverage)
    document = request.app[STORE].current()
    return _render(request, "overrides.html.j2", teams=list(coverage.teams), team=team.id, etag=document.etag,
                   version=document.version, data=views.overrides(team, document.overrides))


async def reply_times_page(request: web.Request) -> web.StreamResponse:
    coverage = _coverage(request)
    now = _now(request)
    try:
        start = datetime.fromisoformat(request.query.get("from", "")).replace(tzinfo=UTC)
    except ValueError:
        start = datetime.combine(now.date() - timedelta(days=28), datetime.min.time(), UTC)
    try:
        end = datetime.fromisoformat(request.query.get("to", "")).replace(tzinfo=UTC) + timedelta(days=1)
    except ValueError:
        end = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    projection = request.app[PROJECTION]
    data = views.reply_times(coverage, projection.answers, projection.messages, projection.promise_stats(), start, end, now)
    return _render(request, "reply_times.html.j2", data=data, end_day=(end - timedelta(days=1)).date().isoformat())


async def link_page(request: web.Request) -> web.StreamResponse:
    """A staff member's signed link (the one in their notification), read-only: that one conversation."""
    signer = request.app.get(SIGNER)
    if signer is None:
        raise web.HTTPNotFound()
    try:
        link = signer.verify(request.match_info["token"])
    except LinkInvalid as invalid:
        return _render(request, "link.html.j2", status=403, row=None, problem=str(invalid), action_url=None)
    coverage = _coverage(request)
    projection = request.app[PROJECTION]
    row = None
    if link.conversation in projection.states and projection.states[link.conversation].team in coverage.teams:
        row = views._row(coverage, projection, link.conversation, _now(request))
    action_url = f"{request.app[API_PREFIX]}/actions/{request.match_info['token']}"
    return _render(request, "link.html.j2", row=row, problem=None, action_url=action_url, member=link.member,
                   action=link.action, conversation=link.conversation)


# -- changes, through the operations API ---------------------------------------------------


async def _api(request: web.Request, method: str, path: str, body: dict[str, Any] | None,
               headers: Mapping[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """Call the operations API of this same server with the operator's token."""
    sockname = request.transport.get_extra_info("sockname") if request.transport is not None else None
    host, port = (sockname[0], sockname[1]) if sockname else ("127.0.0.1", 8080)
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    base = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    session: Session = request[SESSION]
    all_headers = {"Authorization": f"Bearer {session.token}", **(headers or {})}
    url = aiohttp.client.URL(base + request.app[API_PREFIX] + path, encoded=True)
    async with aiohttp.ClientSession() as client, client.request(method, url, json=body, headers=all_headers) as answer:
        try:
            data = await answer.json(content_type=None)
        except Exception:
            data = {"detail": await answer.text()}
        return answer.status, data if isinstance(data, dict) else {"detail": str(data)}


def _problem_text(data: dict[str, Any]) -> str:
    text = str(data.get("detail") or data.get("title") or "refused")
    for problem in data.get("problems") or []:
        text += f"; {problem.get('message')} ({problem.get('hint')})"
    return text


def _field(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


async def override_add(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    team = _field(form, "team")
    day = _field(form, "day")
    kind = _field(form, "kind")
    start, end = _field(form, "start"), _field(form, "end")
    to_day = _field(form, "to_day") or day
    if end == "24:00" or (end and start and end <= start and kind == "member"):
        to_day = (date.fromisoformat(to_day) + timedelta(days=1)).isoformat() if _is_date(to_day) else to_day
        end = "00:00" if end == "24:00" else end
    body: dict[str, Any] = {"from": f"{day} {start}", "to": f"{to_day} {end}"}
    if kind == "member":
        body["member"] = _field(form, "member")
    else:
        body["mode"] = _field(form, "mode")
        if _field(form, "note"):
            body["note"] = _field(form, "note")
    headers = {"If-Match": f'"{_field(form, "etag")}"'} if _field(form, "etag") else {}
    status, data = await _api(request, "POST", f"/teams/{quote(team, safe='')}/overrides", body, headers)
    if status == 201:
        raise _back("/overrides", team=team, notice=f"added override {data.get('id')}")
    raise _back("/overrides", team=team, error=f"{status}: {_problem_text(data)}")


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


async def override_remove(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    team, override = _field(form, "team"), _field(form, "override")
    headers = {"If-Match": f'"{_field(form, "etag")}"'} if _field(form, "etag") else {}
    status, data = await _api(request, "DELETE", f"/teams/{quote(team, safe='')}/overrides/{quote(override, safe='')}", None, headers)
    if status == 200:
        raise _back("/overrides", team=team, notice=f"removed override {override}")
    raise _back("/overrides", team=team, error=f"{status}: {_problem_text(data)}")


async def conversation_action(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    action = request.match_info["action"]
    conversation, member, team = _field(form, "conversation"), _field(form, "member"), _field(form, "team")
    body = {"member": member} if member else {}
    status, data = await _api(request, "POST", f"/conversations/{quote(conversation, safe='')}/{action}", body)
    if status == 202:
        who = f" by {member}" if member else ""
        raise _back("/queue", team=team, notice=f"{action} recorded for {conversation}{who}")
    raise _back("/queue", team=team, error=f"{status}: {_problem_text(data)}")


# -- the application ------------------------------------------------------------------------


def build_console(
    store: ConfigStore,
    projection: Projection,
    tokens: Mapping[str, Principal],
    session_secret: str,
    *,
    clock: Clock,
    api_prefix: str = "/api/v1",
    signer: LinkSigner | None = None,
) -> web.Application:
    """The console as a sub-application for ``/console``.

    ``store`` is the coverage in force (the operations API's), ``projection`` the queue's
    view of all partitions (fed by :class:`console.feed.TopicFeed` in the service),
    ``tokens`` the operations tokens (token -> :class:`~edge.ops_config.Principal`),
    ``session_secret`` the key session cookies are signed under (the link secret),
    ``api_prefix`` where the operations API is mounted on the same server, ``signer``
    the action links' signer (staff open one conversation with their link).
    """
    app = web.Application(middlewares=[_signed_in])
    app[SESSIONS] = Sessions(tokens, session_secret, clock)
    app[STORE] = store
    app[PROJECTION] = projection
    app[CLOCK] = clock
    app[API_PREFIX] = api_prefix
    app[TEMPLATES] = environment()
    if signer is not None:
        app[SIGNER] = signer
    app.router.add_get("/login", login, name="login")
    app.router.add_post("/login", login_post, name="login_post")
    app.router.add_post("/logout", logout, name="logout")
    app.router.add_get("/", now_page, name="now")
    app.router.add_get("/timeline", timeline_page, name="timeline")
    app.router.add_get("/preview", preview_page, name="preview")
    app.router.add_get("/queue", queue_page, name="queue")
    app.router.add_post("/queue/{action:claim|answered}", conversation_action, name="conversation_action")
    app.router.add_get("/overrides", overrides_page, name="overrides")
    app.router.add_post("/overrides/add", override_add, name="override_add")
    app.router.add_post("/overrides/remove", override_remove, name="override_remove")
    app.router.add_get("/reply-times", reply_times_page, name="reply_times")
    app.router.add_get("/link/{token}", link_page, name="link")
    app.router.add_static("/static", HERE / "static", name="static")
    return app


async def _to_console(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(f"{PREFIX}/")


def mount_console(root: web.Application, console: web.Application) -> None:
    """Serve ``console`` under ``/console`` of ``root`` (and redirect ``/console`` there)."""
    root.router.add_get(PREFIX, _to_console)
    root.add_subapp(PREFIX, console)


CONSOLE_OFF = (
    "The operations console is off in this process (OFFHOURS_OPS__CONSOLE=false). "
    "Open /console on a process that serves it (in deploy/, the api replicas).\n"
)


def mount_console_off(root: web.Application) -> None:
    """``/console`` of a process whose console is off: a 404 that says where the console is."""

    async def off(request: web.Request) -> web.Response:
        return web.Response(status=404, text=CONSOLE_OFF, content_type="text/plain")

    root.router.add_get(PREFIX, off)
    root.router.add_get(PREFIX + "/{rest:.*}", off)


def mount_service_console(
    root: web.Application,
    store: ConfigStore,
    ops: OpsSettings,
    connection: KafkaConnection,
    topics: Topics,
    *,
    clock: Clock,
    signer: LinkSigner | None = None,
) -> None:
    """The console of ``offhours run`` and ``offhours ingest``: its projection fed from the
    broker's topics (:class:`console.feed.TopicFeed`, started and stopped with ``root``),
    signed in with ``ops.tokens``, sessions signed under ``ops.link_secret``."""

    def coverage() -> Coverage | None:
        try:
            return store.coverage()
        except NoCoverage:
            return None

    projection = Projection(coverage)
    feed = TopicFeed(connection, topics, projection)

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        await feed.start()
        try:
            yield
        finally:
            await feed.stop()

    root.cleanup_ctx.append(lifetime)
    console = build_console(store, projection, ops.bearer_tokens(), ops.link_secret.get_secret_value(), clock=clock,
                            api_prefix=ops.api_prefix, signer=signer)
    mount_console(root, console)
