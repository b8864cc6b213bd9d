"""Email over SMTP with smtplib: one connection kept for a whole batch, temporary refusals
(4xx) retried with back-off, permanent ones (5xx) answered with the server's reply.

A message is in flight from the moment its DATA is sent until the server's reply: if the
connection is lost in between, nobody knows whether it was taken, so the answer is
`unknown` and it is never sent again. Anything that fails before DATA is safe to retry."""

from __future__ import annotations

import contextlib
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.policy import compat32
from email.utils import formataddr, formatdate, make_msgid
from typing import Any

# smtplib sends bytes as they are, so lines end CRLF here; headers fold only past 998.
WIRE = compat32.clone(linesep="\r\n", max_line_length=998)
UTF8 = Charset("utf-8")
UTF8.body_encoding = QP


@dataclass(frozen=True)
class Sent:
    state: str  # sent, failed, unknown
    reason: str = ""
    message_id: str = ""


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    text: str
    html: str
    message_uid: str
    unsubscribe_url: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


def _reply(code: int, text: Any) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {text}".strip()[:300]


def _part(text: str, subtype: str) -> MIMENonMultipart:
    part = MIMENonMultipart("text", subtype, charset="utf-8")
    part.set_payload(text, UTF8)
    return part


class Mailer:
    """One SMTP session for a batch; `send` never raises for what a server or network does."""

    def __init__(self, config: dict[str, Any], *, attempts: int = 4, backoff: float = 0.5) -> None:
        self.config = config
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.connection: smtplib.SMTP | None = None
        self.down: str | None = None  # set when the server cannot be reached this batch
        self.last_send = 0.0
        self.sender = str(config["from_address"])
        self.domain = self.sender.rsplit("@", 1)[-1]

    def build(self, email: Email) -> Message:
        """The message: headers, a text part and an HTML part (quoted-printable, so every
        line stays short whatever the template made; SMTP allows 998 octets a line)."""
        message = MIMEMultipart("alternative")
        message["From"] = formataddr(
            (str(self.config.get("from_name") or ""), self.sender), "utf-8"
        )
        message["To"] = email.to
        subject = email.subject
        message["Subject"] = subject if subject.isascii() else Header(subject, "utf-8").encode()
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = make_msgid(idstring=email.message_uid, domain=self.domain)
        if self.config.get("reply_to"):
            message["Reply-To"] = str(self.config["reply_to"])
        if email.unsubscribe_url:
            message["List-Unsubscribe"] = f"<{email.unsubscribe_url}>"
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        for name, value in email.headers:
            message[name] = value
        message.attach(_part(email.text or "\n", "plain"))
        if email.html:
            message.attach(_part(email.html, "html"))
        return message

    def _connect(self) -> smtplib.SMTP:
        host, port = str(self.config["host"]), int(self.config.get("port") or 587)
        timeout = float(self.config.get("timeout") or 20)
        security = self.config.get("security") or "starttls"
        connection: smtplib.SMTP
        if security == "tls":
            context = ssl.create_default_context()
            connection = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            connection = smtplib.SMTP(host, port, timeout=timeout)
            if security == "starttls":
                connection.starttls(context=ssl.create_default_context())
        connection.ehlo_or_helo_if_needed()
        if self.config.get("username"):
            connection.login(str(self.config["username"]), str(self.config.get("password") or ""))
        return connection

    def _drop(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(OSError):
                self.connection.close()
        self.connection = None

    def _pace(self) -> None:
        rate = float(self.config.get("per_second") or 0)
        if rate > 0:
            wait = self.last_send + 1 / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        self.last_send = time.monotonic()

    def send(self, message: Message, to: str) -> Sent:
        message_id = str(message["Message-ID"])
        if self.down:
            return Sent("failed", self.down)
        payload = message.as_bytes(policy=WIRE)
        reason = ""
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            if self.connection is None:
                try:
                    self.connection = self._connect()
                except smtplib.SMTPResponseException as exc:
                    said = _reply(exc.smtp_code, exc.smtp_error)
                    reason = f"the SMTP server refused the connection: {said}"
                    if exc.smtp_code >= 500:
                        self.down = reason
                        return Sent("failed", reason)
                    continue
                except (OSError, smtplib.SMTPException) as exc:
                    host = f"{self.config['host']}:{self.config.get('port') or 587}"
                    reason = f"cannot reach the SMTP server {host}: {exc}"[:300]
                    continue
            self._pace()
            connection = self.connection
            try:
                code, text = connection.mail(self.sender)
                if code != 250:
                    raise smtplib.SMTPSenderRefused(code, text, self.sender)
                code, text = connection.rcpt(to)
                if code not in (250, 251):
                    raise smtplib.SMTPRecipientsRefused({to: (code, text)})
            except smtplib.SMTPRecipientsRefused as exc:
                code, text = exc.recipients[to]
                reason = _reply(code, text)
                if not self._reset(code):
                    return Sent("failed", f"the SMTP server refused it: {reason}")
                continue
            except smtplib.SMTPResponseException as exc:
                reason = _reply(exc.smtp_code, exc.smtp_error)
                if not self._reset(exc.smtp_code):
                    return Sent("failed", f"the SMTP server refused it: {reason}")
                continue
            except (OSError, smtplib.SMTPException) as exc:
                reason = f"the connection to the SMTP server failed: {exc}"[:300]
                self._drop()
                continue
            # In flight from here until the server answers.
            answer: Any = None
            try:
                code, answer = connection.data(payload)
            except smtplib.SMTPDataError as exc:  # refused DATA itself: nothing was sent
                code, answer = exc.smtp_code, exc.smtp_error
            except (OSError, smtplib.SMTPException) as exc:
                self._drop()
                return Sent(
                    "unknown",
                    f"the connection was lost while the server took the message ({exc}); "
                    "it may have been delivered, so it is not sent again",
                    message_id,
                )
            if code == 250:
                return Sent("sent", "", message_id)
            reason = _reply(code, answer)
            if not self._reset(code):
                return Sent("failed", f"the SMTP server refused it: {reason}")
        if reason.startswith("cannot reach"):
            self.down = reason
        return Sent("failed", reason or "not sent")

    def _reset(self, code: int) -> bool:
        """After a refusal: True when it is temporary and worth another try."""
        if code == 421:  # the server is closing this connection
            self._drop()
            return True
        try:
            if self.connection is not None:
                self.connection.rset()
        except (OSError, smtplib.SMTPException):
            self._drop()
        return 400 <= code < 500

    def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self.connection.quit()
        self._drop()
