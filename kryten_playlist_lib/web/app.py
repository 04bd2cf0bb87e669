"""The Bottle app: one per service instance, no module-level default app.

What every request gets, so routes need not think about it:
- a request id (`X-Request-Id` header, log lines), one log line and metrics;
- for POST/PUT/PATCH/DELETE under /api/: the body checks (413, 415, 400) and
  then the CSRF check, before the route runs; the route reads `request_body()`;
- errors as JSON in the format of http-api.md: a `ServiceError` keeps its
  status and details, Bottle's 404/405 become `not_found`/`method_not_allowed`,
  anything else is a logged 500 `internal` whose text never reaches the client;
- a dict returned by a route is sent as JSON with the charset.
"""

from __future__ import annotations

import itertools
import json
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any, Protocol

import bottle

from kryten_playlist_lib.errors import ServiceError
from kryten_playlist_lib.web import (
    routes_activity,
    routes_auth,
    routes_catalog,
    routes_marathons,
    routes_pages,
    routes_playlists,
    routes_queue,
    routes_service,
)
from kryten_playlist_lib.web.http import (
    BODY_KEY,
    JSON_CONTENT_TYPE,
    MAX_BODY_BYTES,
    REQUEST_ID_KEY,
    WRITE_METHODS,
    check_csrf,
    json_body,
    request_id,
)
from kryten_playlist_lib.web.metrics import Metrics

# A class attribute shared by every app in the process; 1 MiB is the API's body limit.
bottle.BaseRequest.MEMFILE_MAX = MAX_BODY_BYTES

log = logging.getLogger("kryten_playlist.http")

# Methods outside this set are counted as "OTHER": clients choose the method,
# and a metric label must not grow without bound.
_METRIC_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# The errors Bottle raises by itself, in our vocabulary.
_BOTTLE_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_json", "The request could not be parsed."),
    404: ("not_found", "Nothing is served at this path."),
    405: ("method_not_allowed", "This path does not accept this method."),
    413: ("payload_too_large", f"The body is larger than {MAX_BODY_BYTES} bytes."),
}
_INTERNAL_MESSAGE = "Internal error; the X-Request-Id header identifies it in the server log."


class WebConfig(Protocol):
    @property
    def trusted_proxies(self) -> list[str]: ...

    @property
    def cookie_secure(self) -> str | bool: ...


class WebServices(Protocol):
    """What the web layer needs from the service; routes_*.py grow it as they come."""

    @property
    def config(self) -> WebConfig: ...

    @property
    def metrics(self) -> Metrics: ...

    def health(self) -> dict[str, Any]: ...


def create_app(services: WebServices) -> bottle.Bottle:
    app = _App(services.metrics)
    routes_service.register(app, services)
    # These need the whole service; the skeleton's Protocol covers only the service routes.
    routes_auth.register(app, services)  # type: ignore[arg-type]
    routes_catalog.register(app, services)  # type: ignore[arg-type]
    routes_playlists.register(app, services)  # type: ignore[arg-type]
    routes_marathons.register(app, services)  # type: ignore[arg-type]
    routes_activity.register(app, services)  # type: ignore[arg-type]
    routes_queue.register(app, services)  # type: ignore[arg-type]
    routes_pages.register(app, services)
    return app


class _App(bottle.Bottle):
    def __init__(self, metrics: Metrics) -> None:
        super().__init__()
        # Bottle's JSON plugin omits the charset; _api_plugin renders dicts instead.
        self.uninstall(bottle.JSONPlugin)
        # Installed first, so it wraps every other plugin and every route added later.
        self.install(_api_plugin)
        # 16 hex characters, cheap: a random prefix per process and a counter (random bytes per request cost a
        # syscall, a tenth of a fast search's time).
        self._id_prefix = secrets.token_hex(4)
        self._request_numbers = itertools.count(1)
        self._requests = metrics.counter(
            "kryten_playlist_http_requests_total", "HTTP requests by route rule, method and status.",
            ("route", "method", "status"))
        self._durations = metrics.histogram(
            "kryten_playlist_http_request_duration_seconds", "Time to produce the response headers.",
            ("route",))

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        # Wrapping start_response sees the final status of every response,
        # including the ones Bottle builds itself after its hooks have run.
        request_id = environ[REQUEST_ID_KEY] = f"{self._id_prefix}{next(self._request_numbers) & 0xFFFFFFFF:08x}"
        started = time.perf_counter()

        def start_and_record(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers.append(("X-Request-Id", request_id))
            self._record(environ, int(status[:3]), time.perf_counter() - started)
            return start_response(status, headers, exc_info)

        return super().wsgi(environ, start_and_record)

    def _record(self, environ: dict[str, Any], status: int, seconds: float) -> None:
        route = environ.get("bottle.route")
        rule = route.rule if route is not None else "unmatched"
        method = environ.get("REQUEST_METHOD", "")
        method = method if method in _METRIC_METHODS else "OTHER"
        self._requests.inc(route=rule, method=method, status=str(status))
        self._durations.observe(seconds, route=rule)
        # Only these fields: query strings, cookies, bodies and headers carry codes and session ids.
        fields = {"request_id": environ[REQUEST_ID_KEY], "method": method, "route": rule,
                  "status": status, "duration_ms": round(seconds * 1000, 1)}
        # The fields ride along too, so `log_json` lines carry them as JSON members.
        log.info("%s", " ".join(f"{k}={v}" for k, v in fields.items()), extra={"fields": fields})

    def default_error_handler(self, res: bottle.HTTPError) -> str:
        """Render every error response, whatever raised it, in the API's error format."""
        if isinstance(res.exception, ServiceError):
            error = res.exception
        else:
            if res.exception is not None:
                log.error("unhandled error in request %s", request_id(), exc_info=res.exception)
            code, message = _BOTTLE_ERRORS.get(res.status_code, ("internal", _INTERNAL_MESSAGE))
            error = ServiceError(code, message)
        bottle.response.status = error.http_status
        bottle.response.content_type = JSON_CONTENT_TYPE
        if error.code == "rate_limited" and "retry_after_seconds" in error.details:
            bottle.response.set_header("Retry-After", str(error.details["retry_after_seconds"]))
        return json.dumps(error.to_json(), ensure_ascii=False)


def _api_plugin(callback: Callable[..., Any]) -> Callable[..., Any]:
    """Run the write checks, turn exceptions into HTTPError and dicts into JSON."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        request = bottle.request
        try:
            # Body before CSRF: http-api.md orders the checks 413, 415, 400, csrf_rejected.
            if request.method in WRITE_METHODS and request.path.startswith("/api/"):
                request.environ[BODY_KEY] = json_body(request)
                check_csrf(request.environ)
            result = callback(*args, **kwargs)
            if isinstance(result, dict):
                body = json.dumps(result, ensure_ascii=False)
                bottle.response.content_type = JSON_CONTENT_TYPE
                return body
            return result
        except bottle.HTTPResponse:
            raise
        except ServiceError as exc:
            raise bottle.HTTPError(exc.http_status, exception=exc) from None
        except Exception as exc:
            # default_error_handler logs it with the request id and sends a generic 500.
            raise bottle.HTTPError(500, exception=exc) from None

    return wrapper
