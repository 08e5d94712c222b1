"""E-mail of the identity service: templates, queue, transports and the mailer that ties them together.

The composition root builds a :class:`Mailer` from a :class:`RedisMailQueue`, the transport chosen by
:func:`transport_for` and :class:`MailTemplates`, calls :meth:`Mailer.send` from request handlers and
runs :meth:`Mailer.run` as one background task per process.
"""

from identity.mail.mailer import Mailer
from identity.mail.queue import QueuedMail, RedisMailQueue
from identity.mail.rendering import MailTemplates
from identity.mail.transport import (
    MailError,
    MailTransport,
    OutboxTransport,
    PermanentMailError,
    SmtpTransport,
    TransientMailError,
    transport_for,
)

__all__ = [
    "MailError",
    "MailTemplates",
    "MailTransport",
    "Mailer",
    "OutboxTransport",
    "PermanentMailError",
    "QueuedMail",
    "RedisMailQueue",
    "SmtpTransport",
    "TransientMailError",
    "transport_for",
]
