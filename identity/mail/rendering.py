"""Rendering of the service's e-mails from the Jinja2 templates shipped in ``templates/<language>/``.

Each e-mail is a pair of files, ``<name>.txt`` and ``<name>.html``. The text file starts with a
``Subject: ...`` line and a blank line; the rest is the plain-text body. Both use ``StrictUndefined``, so a
context key the caller forgot is an error (caught by the tests), not a silently empty string.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATE_DIR = Path(__file__).parent / "templates"

# The e-mails the service sends; a name outside this set is a programming error.
TEMPLATE_NAMES = frozenset(
    {
        "email_confirmation",
        "password_reset",
        "password_changed",
        "new_login",
        # the token API (Financelime): sign-up link, generated password, reset link, new password
        "signup_confirmation",
        "account_password",
        "reset_link",
        "new_password",
    }
)


class MailTemplates:
    """Renders an e-mail's subject, text and HTML body in the user's language (English by default)."""

    def __init__(self, default_language: str = "en") -> None:
        self.default_language = default_language
        # Which (language, template) pairs exist, read once: the request path does not touch the disk.
        files = TEMPLATE_DIR.glob("*/*.txt")
        self._available = frozenset((f.parent.name, f.stem) for f in files if f.stem in TEMPLATE_NAMES)
        missing = TEMPLATE_NAMES - {name for lang, name in self._available if lang == default_language}
        if missing:
            raise ValueError(f"no {default_language!r} mail templates for: {', '.join(sorted(missing))}")
        options: dict[str, Any] = {"loader": FileSystemLoader(TEMPLATE_DIR), "undefined": StrictUndefined}
        self._text = Environment(autoescape=False, **options)
        # User-controlled values (the user agent of a new login) end up in the HTML part.
        self._html = Environment(autoescape=True, **options)

    def language_for(self, template: str, language: str | None) -> str:
        """The language whose templates are used: ``ru-RU`` and ``RU`` give ``ru``; unknown ones English."""
        primary = (language or "").strip().lower().replace("_", "-").split("-")[0]
        return primary if (primary, template) in self._available else self.default_language

    def render(self, template: str, language: str | None, context: Mapping[str, Any]) -> tuple[str, str, str]:
        """Return ``(subject, text, html)``; raise ``jinja2.UndefinedError`` when a context key is missing."""
        if template not in TEMPLATE_NAMES:
            raise ValueError(f"unknown mail template {template!r}")
        lang = self.language_for(template, language)
        rendered = self._text.get_template(f"{lang}/{template}.txt").render(context)
        first, _, body = rendered.partition("\n")
        if not first.startswith("Subject:"):
            raise ValueError(f"mail template {lang}/{template}.txt does not start with a Subject: line")
        subject = first.removeprefix("Subject:").strip()
        html = self._html.get_template(f"{lang}/{template}.html").render(context)
        return subject, body.lstrip("\n"), html
