"""``email_sender`` (``email-sender``; a machine tool, off by default): send one email.

``{provider = "smtp", from, to, subject, body, html_body?}`` plus, for ``smtp``:
``smtp_host``, ``smtp_port = 587``, ``smtp_username?``, ``smtp_password?``,
``use_tls = true`` (STARTTLS; port 465 means implicit TLS); for ``sendgrid``: the key from
``$SENDGRID_API_KEY`` (or ``$LLMSPELL_API_KEY_SENDGRID``, rs-llmspell's name), never from
the script. -> ``{sent = true, provider, to, subject}``. ``ses`` (AWS) is not supported and
says so; ``attachments`` are refused rather than silently dropped. 30 s timeout.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import UsageError
from .base import Tool, text
from .net import exchange

__all__ = ["TOOL"]

SENDGRID = "https://api.sendgrid.com/v3/mail/send"
TIMEOUT = 30.0


def _recipients(params: dict) -> list[str]:
    to = params.get("to")
    found = [to] if isinstance(to, str) else to if isinstance(to, list) else None
    if not found or not all(isinstance(t, str) and "@" in t for t in found):
        raise UsageError("parameter 'to' must be an address or a list of addresses")
    return found


def _smtp(params: dict, sender: str, to: list[str], subject: str, body: str) -> None:
    import smtplib
    from email.message import EmailMessage

    host = text(params, "smtp_host")
    port = params.get("smtp_port", 587)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise UsageError("parameter 'smtp_port' must be a port number")
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, ", ".join(to), subject
    msg.set_content(body)
    if isinstance(params.get("html_body"), str):
        msg.add_alternative(params["html_body"], subtype="html")
    try:
        if port == 465:
            server: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=TIMEOUT)
        else:
            server = smtplib.SMTP(host, port, timeout=TIMEOUT)
        with server:
            if port != 465 and params.get("use_tls", True) is not False:
                server.starttls()
            user, password = params.get("smtp_username"), params.get("smtp_password")
            if isinstance(user, str) and isinstance(password, str):
                server.login(user, password)
            server.send_message(msg)
    except (OSError, smtplib.SMTPException) as e:
        raise UsageError(f"smtp {host}:{port}: {e or type(e).__name__}") from None


def _sendgrid(params: dict, sender: str, to: list[str], subject: str, body: str) -> None:
    key = os.environ.get("SENDGRID_API_KEY") or os.environ.get("LLMSPELL_API_KEY_SENDGRID")
    if not key:
        raise UsageError("sendgrid: no API key ($SENDGRID_API_KEY is not set)")
    content = [{"type": "text/plain", "value": body}]
    if isinstance(params.get("html_body"), str):
        content.append({"type": "text/html", "value": params["html_body"]})
    answer = exchange(
        "POST",
        SENDGRID,
        timeout=TIMEOUT,
        headers={"Authorization": f"Bearer {key}"},
        payload={
            "personalizations": [{"to": [{"email": t} for t in to]}],
            "from": {"email": sender},
            "subject": subject,
            "content": content,
        },
    )
    if answer.status_code >= 300:
        raise UsageError(f"sendgrid: HTTP {answer.status_code}: {answer.text[:200]}")


def _send(params: dict, ctx: Any) -> dict:
    provider = text(params, "provider", default="smtp")
    sender = text(params, "from")
    to = _recipients(params)
    subject = text(params, "subject", default="")
    body = text(params, "body", default="")
    if params.get("attachments"):
        raise UsageError("attachments are not supported by spellfs's email_sender")
    if provider == "smtp":
        _smtp(params, sender, to, subject, body)
    elif provider == "sendgrid":
        _sendgrid(params, sender, to, subject, body)
    else:
        raise UsageError(f"provider not supported: {provider} (use smtp or sendgrid)")
    return {"sent": True, "provider": provider, "to": to, "subject": subject}


TOOL = Tool(
    "email_sender",
    "Send an email through SMTP or SendGrid",
    _send,
    category="communication",
    machine=True,
    operations=("send",),
    parameters={
        "provider": "smtp or sendgrid",
        "from": "sender address",
        "to": "address or list",
        "subject": "text",
        "body": "text",
        "smtp_host": "for smtp",
    },
)
