"""The one HTTP client every gateway uses, and the helpers that read its answers."""

import dataclasses
import json
import re
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Callable, Optional
from urllib.parse import quote, urlsplit

import requests

from ..bounded import call_with_timeout
from ..constants import (
    CRITICAL,
    DEADLINE_CHECK_EVERY,
    GATEWAY_TYPES,
    MAX_BODY_BYTES,
    MAX_CHANNEL_ID_CHARS,
    MAX_QUOTE_CHARS,
    PROGRAM,
    UNKNOWN,
    __version__,
)
from ..errors import HealthcheckError
from ..settings import Settings
from ..text import _SURROGATES, display_url, quote_untrusted


@dataclass(frozen=True)
class Origin:
    """Where answers come from, for the messages about them: the address people may see, the
    settings that name the address and the key in this configuration, and the run's redactor
    for what the gateway said (it may echo the key)."""

    url: str = "the gateway"
    url_setting: str = "WPP_GATEWAY_BASE_URL"
    key_setting: str = "WPP_GATEWAY_SECRET"
    redact: Optional[Callable[[str], str]] = None
    #: What runs behind the gateway and may be the one failing (the wrapper's WPPConnect).
    backend: Optional[str] = "WPPConnect"
    #: The port the gateway usually listens on, for "is the port right?".
    usual_port: Optional[int] = 8443

    def port_hint(self) -> str:
        return f" (:{self.usual_port})" if self.usual_port else ""

    def suspects(self, joint: str) -> str:
        """"the gateway", or "the gateway or WPPConnect" (joint "or"), for advice."""
        return f"the gateway {joint} {self.backend}" if self.backend else "the gateway"

    def quote(self, value, limit: int = MAX_QUOTE_CHARS) -> str:
        """Quote what the gateway said, its secrets masked before the cut."""
        return quote_untrusted(value, limit, self.redact)


@dataclass(frozen=True)
class Answer:
    """One HTTP answer from the gateway, read in full (bounded)."""

    status: int
    content_type: str
    www_authenticate: str
    location: str
    body: bytes
    #: For a 401: what the gateway that was asked says to check (its own settings, by name).
    key_refused: str = ""
    origin: Origin = Origin()

    @property
    def is_html(self) -> bool:
        head = self.body[:200].lstrip().lower()
        return "html" in self.content_type or head.startswith((b"<!doctype", b"<html", b"<"))

    def json(self):
        """Return the decoded JSON body, or raise ValueError."""
        decoded, value = self._decoded
        if not decoded:
            raise ValueError("not JSON")
        return value

    @cached_property
    def _decoded(self) -> tuple[bool, object]:
        # Decoded once: a body of up to 10 MB is read by several classifiers.
        try:
            return True, json.loads(self.body.decode("utf-8-sig"))
        except (ValueError, RecursionError):  # RecursionError: nesting meant to crash parsers
            return False, None

    def error_text(self) -> Optional[str]:
        """Return the wrapper's `error`/`message` text, if the body carries one."""
        try:
            data = self.json()
        except ValueError:
            return None
        if isinstance(data, dict):
            for key in ("error", "message"):
                if isinstance(data.get(key), str) and data[key].strip():
                    return data[key]
        return None


class HttpClient:
    """Talks HTTP to the gateway: every call bounded in time and size, never redirected."""

    def __init__(self, settings: Settings, budget_end: float, auth_headers: dict[str, str],
                 key_refused: Optional[Callable[["Answer"], str]] = None,
                 backend: Optional[str] = None):
        self.settings = settings
        self.budget_end = budget_end
        self._key_refused = key_refused
        # The port of the gateway's example address is the one it listens on by default.
        usual_port = urlsplit(GATEWAY_TYPES[settings.gateway]).port
        self.origin = Origin(display_url(settings.base_url), settings.url_setting,
                             settings.key_setting, settings.redact, backend, usual_port)
        self._session = requests.Session()
        self._session.headers.update({**auth_headers,
                                      "Accept": "application/json",
                                      # No compressed answers: a small body cannot inflate.
                                      "Accept-Encoding": "identity",
                                      "User-Agent": f"{PROGRAM}/{__version__}"})
        # Given with each request: a Session-level value loses to REQUESTS_CA_BUNDLE.
        self._verify: object = True
        if not settings.verify_tls:
            self._verify = False
            import urllib3
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        elif settings.ca_bundle:
            self._verify = str(settings.ca_bundle)
        adapter = requests.adapters.HTTPAdapter(pool_connections=1,
                                                pool_maxsize=max(settings.workers, 1))
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def list_call(self, method: str, path: str, **kwargs) -> Answer:
        """A call that lists sessions: HEALTHCHECK_LIST_TIMEOUT."""
        return self.call(method, path, self.settings.list_timeout, "HEALTHCHECK_LIST_TIMEOUT",
                         **kwargs)

    def session_call(self, method: str, path: str, **kwargs) -> Answer:
        """A call about one session (its state, its revival): HEALTHCHECK_QR_TIMEOUT."""
        return self.call(method, path, self.settings.qr_timeout, "HEALTHCHECK_QR_TIMEOUT",
                         **kwargs)

    def call(self, method: str, path: str, timeout: float, timeout_name: str,
             json_body=None, headers: Optional[dict[str, str]] = None) -> Answer:
        """Return the answer to one call, or raise HealthcheckError(CRITICAL) saying why not."""
        left = self.budget_end - time.monotonic()
        if left <= 0:
            raise HealthcheckError("deadline: no time left in HEALTHCHECK_DEADLINE", CRITICAL)
        limit, limit_name = (timeout, timeout_name) if timeout <= left else (
            left, "HEALTHCHECK_DEADLINE")
        too_slow = (f"no complete answer from {self.origin.url} within {limit:g}s "
                    f"({limit_name}); {self.origin.suspects('or')} is hung or overloaded")
        try:
            return call_with_timeout(lambda: self._fetch(method, path, limit, too_slow,
                                                         json_body, headers), limit)
        except TimeoutError:
            raise HealthcheckError(too_slow, CRITICAL) from None

    def _fetch(self, method: str, path: str, limit: float, too_slow: str, json_body,
               headers) -> Answer:
        """Return the whole answer (at most MAX_BODY_BYTES), or raise HealthcheckError."""
        started = time.monotonic()
        try:
            response = self._session.request(
                method, self.settings.base_url + path, allow_redirects=False, stream=True,
                json=json_body, headers=headers, verify=self._verify,
                timeout=(min(self.settings.connect_timeout, limit), limit))
            with response:
                declared = response.headers.get("Content-Length", "").strip()
                # [0-9], not isdigit(): "²" is a digit to Python but not a length.
                if re.fullmatch(r"[0-9]{1,20}", declared) and int(declared) > MAX_BODY_BYTES:
                    raise self._too_big(response.status_code)
                encoding = response.headers.get("Content-Encoding", "").strip().lower()
                if encoding not in ("", "identity"):
                    # Not asked for; a few KB of gzip can inflate to gigabytes on old urllib3.
                    raise HealthcheckError(
                        f"{self.origin.url} sent a compressed answer "
                        f"({self.origin.quote(encoding, 40)}) although none was asked for; "
                        f"refused unread: check the proxy in front of the gateway", CRITICAL)
                chunks, size = [], 0
                for chunk in response.iter_content(64 * 1024):
                    size += len(chunk)
                    if size > MAX_BODY_BYTES:
                        raise self._too_big(response.status_code)
                    if time.monotonic() - started > limit:
                        raise HealthcheckError(too_slow, CRITICAL)  # the caller gave up already
                    chunks.append(chunk)
                answer = Answer(status=response.status_code,
                                content_type=response.headers.get("Content-Type", "").lower(),
                                www_authenticate=response.headers.get("WWW-Authenticate", ""),
                                location=response.headers.get("Location", ""),
                                body=b"".join(chunks), origin=self.origin)
                if answer.status == 401 and self._key_refused:
                    answer = dataclasses.replace(answer, key_refused=self._key_refused(answer))
                return answer
        except requests.exceptions.ReadTimeout:
            raise HealthcheckError(too_slow, CRITICAL) from None
        except requests.RequestException as exc:
            raise HealthcheckError(self._describe_transport_error(exc), CRITICAL) from None
        except ValueError as exc:
            # requests parses a Location even when it does not follow it: `http://[::1` or a
            # byte that is not UTF-8 raises here, not as a RequestException.
            raise HealthcheckError(f"{self.origin.url} sent an answer that cannot be parsed "
                                   f"({type(exc).__name__}), such as a redirect to an address "
                                   f"that cannot be read; nothing was followed: check "
                                   f"{self.origin.url_setting} and the proxy in front of the "
                                   f"gateway",
                                   CRITICAL) from None

    def _too_big(self, status: int) -> HealthcheckError:
        # A 2xx this size is an answer outside the contract (UNKNOWN); an error page, CRITICAL.
        return HealthcheckError(f"{self.origin.url} sent an answer over "
                                f"{MAX_BODY_BYTES // 2**20} MB (HTTP {status}); refused unread: "
                                f"check that {self.origin.url_setting} points at the gateway",
                                UNKNOWN if 200 <= status < 300 else CRITICAL)

    def _describe_transport_error(self, exc: "requests.RequestException") -> str:
        """Say what failed below HTTP, and what to check."""
        where = self.origin.url
        chain = _exception_chain_text(exc)
        if isinstance(exc, requests.exceptions.SSLError) and any(
                s in chain for s in ("wrong version number", "record layer failure",
                                     "http request", "unknown protocol")):
            return (f"TLS failure talking to {where}: the server answered in plain HTTP, not "
                    f"TLS; use http:// in {self.origin.url_setting}, or the port that serves "
                    f"https")
        if isinstance(exc, requests.exceptions.SSLError):
            return (f"TLS failure talking to {where}: the certificate was not accepted; "
                    f"check the gateway's certificate, or point HEALTHCHECK_CA_BUNDLE at the CA "
                    f"that signed it")
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return (f"timed out connecting to {where} after "
                    f"{self.settings.connect_timeout:g}s (HEALTHCHECK_CONNECT_TIMEOUT); check "
                    f"the host, the port and any firewall")
        if isinstance(exc, requests.exceptions.InvalidHeader):
            return (f"the secret cannot be sent as an HTTP header: check "
                    f"{self.origin.key_setting}")
        if isinstance(exc, (requests.exceptions.ChunkedEncodingError,
                            requests.exceptions.ContentDecodingError)):
            return (f"the connection to {where} broke while the answer was being read; "
                    f"check the gateway and the proxy in front of it")
        if isinstance(exc, requests.exceptions.ConnectionError):
            if any(s in chain for s in ("name or service not known", "nodename nor servname",
                                        "failed to resolve", "getaddrinfo failed",
                                        "temporary failure in name resolution",
                                        "no address associated")):
                return (f"gateway unreachable: the host name in {where} does not resolve; "
                        f"check the host in {self.origin.url_setting} and the DNS")
            if "refused" in chain:
                return (f"gateway unreachable: connection refused by {where}; check the host and "
                        f"port in {self.origin.url_setting} and that the gateway is running")
            if "reset" in chain or "aborted" in chain or "remotedisconnected" in chain:
                return (f"the connection to {where} was closed before a full answer; check the "
                        f"gateway and the proxy in front of it")
            return (f"gateway unreachable at {where}: {type(exc).__name__}; check the host, the "
                    f"port and the network")
        return f"request to {where} failed: {type(exc).__name__}"


def _exception_chain_text(exc: BaseException) -> str:
    """Return the lower-cased texts of an exception and its causes, for classification only."""
    texts, seen = [], set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        texts.append(f"{type(current).__name__} {current}")
        stack.extend(a for a in getattr(current, "args", ()) if isinstance(a, BaseException))
        for linked in (current.__cause__, current.__context__, getattr(current, "reason", None)):
            if isinstance(linked, BaseException):
                stack.append(linked)
    return " ".join(texts).lower()


def channel_path(channel_id: str) -> str:
    """Return a channel id percent-encoded as one path segment (`a/b c` -> `a%2Fb%20c`)."""
    if channel_id.strip(".") == "":
        # `.` and `..` would be resolved away by the client, leaving /api/channels.
        return "%2E" * len(channel_id)
    return quote(channel_id, safe="")


def describe_http_failure(answer: Answer, what: str) -> str:
    """Say why a non-2xx answer came, and what to check."""
    status, origin = answer.status, answer.origin
    error = answer.error_text()
    if 300 <= status < 400:
        target = origin.quote(display_url(answer.location) if "://" in answer.location
                              else answer.location or "nowhere", 120)
        return (f"{what}: HTTP {status} redirect to {target}, not followed (it would carry "
                f"the secret); set {origin.url_setting} to the address that answers directly")
    if status == 401:
        if "basic" in answer.www_authenticate.lower():
            return (f"{what}: HTTP 401 with a basic-auth challenge: something in front of /api "
                    f"(nginx basic auth) wants a password; exempt /api from basic auth")
        if answer.key_refused:  # the gateway's own words
            return f"{what}: HTTP 401, {answer.key_refused}"
        return (f"{what}: HTTP 401, the gateway refused the secret; check "
                f"{origin.key_setting} (and INFRA_SECRET_KEY if the secret is stored "
                f"encrypted)")
    if status == 403:
        return (f"{what}: HTTP 403 forbidden; check {origin.key_setting} and any IP "
                f"allow-list in front of the gateway")
    if error and not answer.is_html:
        return f"{what}: HTTP {status}, gateway error: {origin.quote(error)}"
    if status == 404:
        return (f"{what}: HTTP 404 {'HTML page' if answer.is_html else 'not found'}: this is "
                f"not the gateway's API; is the port in {origin.url_setting} right"
                f"{origin.port_hint()}?")
    if status in (502, 503, 504):
        return (f"{what}: HTTP {status} from the proxy at {origin.url}: the gateway container is "
                f"down, restarting or too slow; check {origin.suspects('and')}")
    kind = "an HTML page" if answer.is_html else "no JSON error"
    return f"{what}: HTTP {status} with {kind}; check the gateway's logs"


def json_answer(answer: Answer, what: str):
    """Return the JSON of a 2xx answer, or raise HealthcheckError saying why there is none."""
    if not 200 <= answer.status < 300:
        raise HealthcheckError(describe_http_failure(answer, what), CRITICAL)
    if answer.is_html:
        raise HealthcheckError(f"{what}: HTTP {answer.status} with an HTML page, not the "
                               f"gateway's JSON; check {answer.origin.url_setting} (the "
                               f"port{answer.origin.port_hint()}?)")
    try:
        return answer.json()
    except ValueError:
        raise HealthcheckError(f"{what}: HTTP {answer.status} but the body is not "
                               f"valid JSON; check the gateway's logs") from None


def entries_in_time(entries: list, budget_end: float, what: str):
    """Yield (position from 1, entry); raise HealthcheckError when time runs short first.

    Checking 200,000 entries takes seconds, and reporting on them as long again: reading stops
    once it has taken as long as the time left before `budget_end`, so that the deadline holds
    whatever the listing's size.
    """
    started = time.monotonic()
    for position, entry in enumerate(entries, 1):
        if position % DEADLINE_CHECK_EVERY == 0 and \
                time.monotonic() - started > budget_end - time.monotonic():
            raise HealthcheckError(f"deadline: no time left in HEALTHCHECK_DEADLINE while "
                                   f"{what} ({position} of {len(entries)} read, none kicked): "
                                   f"raise -t for a listing this size", CRITICAL)
        yield position, entry


def checked_id(entry, key: str, position: int, problems: list,
               origin: Origin) -> Optional[str]:
    """Return entry[key] when it is an id fit to request and store, else None (problem added)."""
    value = entry.get(key) if isinstance(entry, dict) else None
    if not isinstance(value, str) or not value.strip():
        problems.append((UNKNOWN, f"channel entry #{position} has no usable id, skipped: "
                                  f"{origin.quote(entry, 80)}"))
        return None
    # Half an emoji (a lone surrogate) cannot be sent in a URL: replaced, still handled.
    value = _SURROGATES.sub("\ufffd", value)
    if (value.strip(".") == "" or len(value) > MAX_CHANNEL_ID_CHARS
            or (origin.redact is not None and origin.redact(value) != value)):
        # `.` and `..` would leave /api/channels/<id>/ (clients resolve them away); an id
        # longer than any real one would flood the log and the state.
        problems.append((UNKNOWN, f"channel entry #{position} has an id that cannot be a "
                                  f"channel (only dots, over {MAX_CHANNEL_ID_CHARS} "
                                  f"characters, or holding a secret), skipped: "
                                  f"{origin.quote(value, 60)}"))
        return None
    return value
