"""crhelper's CfnResource with the pitfalls of crhelper 2.0.12 taken out.

crhelper is pinned exactly (pyproject.toml) because this module relies on its insides:
- `CfnResource.__init__` builds lambda, events and logs clients for a polling mode this function never
  uses: about 90 ms of every cold start, and with no region every later event would answer FAILED.
  It is not called.
- Its sender retries forever and takes any HTTP status as delivered: `put_response` makes a bounded
  number of attempts and checks the status.
- Its timeout timer, its error path and the handler can each answer: `_send` answers once per event.
- At DEBUG it logs the whole event, pre-signed ResponseURL included. Other loggers can print it too (botocore
  at DEBUG logs the body of the Invoke that hands a long wait on, the event inside it): every log record made
  in this process, whatever its logger and level, has the URL, its query and its signature taken out.
- Its timeout timer answers FAILED whatever the event: a Delete that runs out of time answers SUCCESS with a
  warning instead (teardown must not stick on the function's own limits).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from crhelper import log_helper
from crhelper.resource_helper import FAILED, SUCCESS, CfnResource

logger = logging.getLogger(__name__)

MAX_REASON = 255
REQUEST_TYPES = ("Create", "Update", "Delete")
# What crhelper reads from every event before it calls a handler.
ENVELOPE = ("StackId", "RequestId", "LogicalResourceId")
SEND_ATTEMPTS = 3
SEND_TIMEOUT_SECONDS = 10
SIGNATURE_KEYS = ("X-Amz-Signature", "Signature")  # SigV4's and SigV2's


class _RedactResponseUrl(logging.Filter):
    """Replaces the current event's ResponseURL (its signed query, its signature) in a log record's message."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: tuple[str, ...] = ()

    def use(self, url: str) -> None:
        """Redact this URL from now on: whole, its query, and its signature however it is quoted."""
        query = urlsplit(url).query
        raw = [part.partition("=") for part in query.split("&")]
        signatures = [value for key, _, value in raw if key in SIGNATURE_KEYS]
        signatures += [value for key, value in parse_qsl(query) if key in SIGNATURE_KEYS]
        # Longest first, so the whole URL is replaced before its parts are.
        self.secrets = tuple(sorted({s for s in (url, query, *signatures) if len(s) >= 8}, key=len, reverse=True))

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            try:
                message = record.getMessage()
            except (TypeError, ValueError):  # a record whose arguments do not fit: logging reports it itself
                return True
            redacted = message
            for secret in self.secrets:
                redacted = redacted.replace(secret, "<ResponseURL>")
            if redacted != message:
                record.msg, record.args = redacted, None
        return True


_REDACT = _RedactResponseUrl()
_make_record = logging.getLogRecordFactory()


def _redacted_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
    """Every record, whatever its logger (crhelper's, botocore's, ours), with the ResponseURL taken out."""
    record = _make_record(*args, **kwargs)
    _REDACT.filter(record)
    return record


logging.setLogRecordFactory(_redacted_record)


def envelope_problem(event: Mapping[str, Any]) -> str | None:
    """Why an event is not a CloudFormation custom-resource request this function can act on, in a sentence."""
    missing = [key for key in ENVELOPE if not isinstance(event.get(key), str) or not event[key]]
    if missing:
        return f"The event has no {', '.join(missing)}: it is not a CloudFormation request, and nothing was stopped"
    request_type = event.get("RequestType")
    if request_type not in REQUEST_TYPES:
        shown = repr(request_type) if len(repr(request_type)) <= 40 else repr(request_type)[:37] + "..."
        return f"Unknown RequestType {shown}: a custom resource is sent Create, Update or Delete; nothing was stopped"
    return None


def readable(reason: str) -> str:
    """A reason as CloudFormation shows it: one line, at most MAX_REASON characters, the start kept."""
    text = " ".join(str(reason).split())
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


def put_response(
    response_url: str,
    body: Mapping[str, Any],
    *,
    attempts: int = SEND_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """PUT the answer to the pre-signed ResponseURL; True once it was accepted with a 2xx status.

    Retries network errors, 5xx and 429 a bounded number of times; any other status is final. Never raises,
    never logs the URL.
    """
    if urlsplit(response_url).scheme not in ("https", "http"):
        logger.error("The URL to answer to is not http(s); the %s answer cannot be sent", body["Status"])
        return False
    data = json.dumps(body).encode()
    for attempt in range(1, attempts + 1):
        # The scheme was checked above, so urllib cannot be steered to file: or a custom scheme.
        request = urllib.request.Request(response_url, data=data, method="PUT", headers={"Content-Type": ""})  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=SEND_TIMEOUT_SECONDS) as answer:  # noqa: S310
                logger.info("CloudFormation accepted the %s answer (HTTP %s)", body["Status"], answer.status)
                return True
        except urllib.error.HTTPError as error:
            problem, retryable = f"HTTP {error.code}", error.code >= 500 or error.code == 429
        except OSError as error:  # URLError, timeouts, refused connections
            problem, retryable = type(error).__name__, True
        logger.warning(
            "Sending the %s answer failed (attempt %d of %d): %s", body["Status"], attempt, attempts, problem
        )
        if not retryable:
            break
        if attempt < attempts:
            sleep(2**attempt)
    logger.error("Gave up sending the %s answer to CloudFormation", body["Status"])
    return False


class CfnResponder(CfnResource):
    """A crhelper CfnResource that answers each event exactly once, safely (see the module's docstring)."""

    def __init__(self, *, log_level: str = "INFO", sleep_on_delete: int = 2) -> None:
        # CfnResource.__init__ is deliberately not called (it makes unused clients); these are the
        # attributes it sets, which its request path reads. tests/test_responder.py keeps the two in step.
        self._sleep_on_delete = sleep_on_delete
        self._create_func: Any = None
        self._update_func: Any = None
        self._delete_func: Any = None
        self._poll_create_func: Any = None
        self._poll_update_func: Any = None
        self._poll_delete_func: Any = None
        self._timer: threading.Timer | None = None
        self._init_failed: Exception | None = None
        self._json_logging = False
        self._log_level = log_level
        self._boto_level = "ERROR"
        self._send_response = False
        self._polling_interval = 2
        self.Status = ""
        self.Reason = ""
        self.PhysicalResourceId = ""
        self.StackId = ""
        self.RequestId = ""
        self.LogicalResourceId = ""
        self.Data = {}
        self.NoEcho = False
        self._event: dict[str, Any] = {}
        self._context: Any = None
        self._response_url = ""
        self._sam_local = os.getenv("AWS_SAM_LOCAL")
        self._region = os.getenv("AWS_REGION")
        self._ssl_verify = None
        self._answer_lock = threading.Lock()
        self._answered = False
        self._silent = False

    def __call__(self, event: Any, context: Any) -> None:
        with self._answer_lock:
            self._answered = False
            self._silent = False
        url = event.get("ResponseURL") if isinstance(event, dict) else None
        if not isinstance(url, str) or urlsplit(url).scheme not in ("https", "http"):
            logger.error("The event has no URL to answer to: it cannot be answered, and nothing was done")
            return
        _REDACT.use(url)
        # crhelper's polling mode reads these; CloudFormation never sends them, and this function polls no one.
        event = {key: value for key, value in event.items() if not key.startswith("CrHelper")}
        problem = envelope_problem(event)
        if problem:
            log_helper.setup(self._log_level, boto_level=self._boto_level, formatter_cls=None)  # as crhelper does
            logger.debug("The event's keys: %s", sorted(event))  # its keys only: never the values
            self._answer_malformed(event, url, problem)
            return
        super().__call__(event, context)

    def _answer_malformed(self, event: dict[str, Any], url: str, problem: str) -> None:
        """Answer FAILED an event crhelper could not read, once, from what it does hold."""
        logger.error("Answering FAILED without acting: %s", problem)
        self._event, self._response_url, self.Data, self.PhysicalResourceId = event, url, {}, ""
        self.StackId, self.RequestId, self.LogicalResourceId = (
            value if isinstance(value := event.get(key), str) else "" for key in ENVELOPE
        )
        self._send(FAILED, problem)

    def stay_silent(self) -> None:
        """This run does not answer the event: it handed the wait on to the next run, which will."""
        with self._answer_lock:
            self._silent = True

    def _wait_for_cwlogs(self, sleep: Any = time.sleep) -> None:
        if not self._silent:  # crhelper's pause before answering a Delete; a run that does not answer skips it
            super()._wait_for_cwlogs(sleep)  # type: ignore[misc]  # crhelper's stub leaves its private methods out

    def _send(self, status: str | None = None, reason: str = "", send_response: object = None) -> None:
        """Answer CloudFormation once per event (crhelper calls this from the handler, its error path, its timer)."""
        with self._answer_lock:
            if self._silent:
                logger.info("Not answering %s: the next run of the function goes on waiting and answers", status or "")
                return
            if self._answered:
                logger.warning("This event was answered already; not answering %s again", status or self.Status)
                return
            self._answered = True
        body = {
            "Status": status or self.Status,
            "Reason": readable(reason if status else self.Reason),
            "PhysicalResourceId": self._physical_id(),
            "StackId": self.StackId,
            "RequestId": self.RequestId,
            "LogicalResourceId": self.LogicalResourceId,
            "Data": self.Data,
            "NoEcho": self.NoEcho,
        }
        put_response(self._response_url, body)

    def _physical_id(self) -> str:
        # crhelper fills this in on its normal path only; its error and timeout paths can leave it empty.
        if self.PhysicalResourceId:
            return str(self.PhysicalResourceId)
        if self._event.get("PhysicalResourceId"):
            return str(self._event["PhysicalResourceId"])
        if self.StackId.count("/") >= 1 and self.LogicalResourceId:
            return str(self.generate_physical_id(self._event))
        return "failed-before-reading-the-event"

    def _timeout(self) -> None:
        if self._event.get("RequestType") == "Delete":
            # Teardown must not stick on the function's own limits: a stop is irreversible, and a Delete that
            # fails here would leave the stack DELETE_FAILED for something no retry changes.
            reason = (
                "The function ran out of time before the experiment's stop could be seen through; answering the "
                "Delete anyway: the stop may not have been sent or finished (see the function's log)"
            )
            logger.warning("%s", reason)
            self._send(SUCCESS, reason)
            return
        logger.error("The function is about to time out; answering FAILED")
        self._send(FAILED, "The function timed out before the experiment finished stopping; see its log")
