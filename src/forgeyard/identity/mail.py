"""Outgoing e-mail over SMTP (invitations, password resets).

The standard library's client runs in a worker thread: mail is rare, and one dependency
fewer is worth more than an async SMTP client here.
"""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage

from forgeyard.kernel.logging import get_logger
from forgeyard.settings import MailSettings

log = get_logger("forgeyard.mail")


class Mailer:
    def __init__(self, settings: MailSettings) -> None:
        self.settings = settings

    @property
    def configured(self) -> bool:
        return self.settings.smtp_host is not None

    async def send(self, *, to: str, subject: str, body: str) -> bool:
        """True when the server accepted the message; never raises into a request."""
        if not self.configured:
            log.warning("mail not sent: no SMTP server configured", subject=subject)
            return False
        message = EmailMessage()
        message["From"] = self.settings.sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        try:
            await asyncio.to_thread(self._deliver, message)
        except (OSError, smtplib.SMTPException) as exc:
            log.error("mail not sent", subject=subject, error=str(exc))
            return False
        return True

    def _deliver(self, message: EmailMessage) -> None:
        settings = self.settings
        assert settings.smtp_host is not None
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=10) as smtp:
            if settings.starttls:
                smtp.starttls()
            if settings.smtp_username and settings.smtp_password:
                smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
            smtp.send_message(message)
