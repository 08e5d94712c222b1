"""The two small pages a mailed link opens (``/u/{key}``, ``/p/{key}``): success or error, in HTML.

They are opened by people in a browser, so they answer HTML (the seed says so; the original sent plain
text); a client asking for JSON (``Accept: application/json``) gets the token API's ``{code, message}``.
"""

from __future__ import annotations

import html

import orjson
from aiohttp import web

_PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#1f2933}}
h1{{font-size:1.4rem}}</style></head>
<body><h1>{title}</h1><p>{text}</p></body></html>
"""

#: (title, text) of each page, per language.
TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    "en": {
        "signup_confirmed": ("E-mail confirmed", "Your account is ready: we have mailed you its password."),
        "reset_confirmed": (
            "Password reset",
            "We have mailed you a new password. Every session was signed out.",
        ),
        "not_found": ("Link not valid", "This link is unknown, was used already, or has expired."),
        "bad_request": ("Bad request", "The link is incomplete: open it exactly as it came in the e-mail."),
    },
    "ru": {
        "signup_confirmed": ("Адрес подтверждён", "Учётная запись готова: пароль отправлен вам письмом."),
        "reset_confirmed": ("Пароль сброшен", "Новый пароль отправлен вам письмом. Все сеансы завершены."),
        "not_found": ("Ссылка недействительна", "Ссылка неизвестна, уже использована или устарела."),
        "bad_request": ("Неверный запрос", "Ссылка неполная: откройте её в точности как в письме."),
    },
}
_MESSAGES = {200: "OK", 400: "BAD_PARAMETERS", 404: "404 Not Found"}


def language_of(request: web.Request, preferred: str | None = None) -> str:
    """``preferred`` (the account's language) when known, else the browser's first known language."""
    if preferred in TEXTS:
        return preferred  # type: ignore[return-value]
    for part in request.headers.get("Accept-Language", "").split(","):
        primary = part.split(";")[0].strip().lower()[:2]
        if primary in TEXTS:
            return primary
    return "en"


def page(request: web.Request, status: int, name: str, language: str | None = None) -> web.Response:
    accept = request.headers.get("Accept", "")
    if "application/json" in accept and "text/html" not in accept:
        body = {"code": status, "message": _MESSAGES.get(status, str(status))}
        return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")
    lang = language_of(request, language)
    title, text = TEXTS[lang][name]
    document = _PAGE.format(lang=lang, title=html.escape(title), text=html.escape(text))
    return web.Response(
        status=status,
        text=document,
        content_type="text/html",
        headers={
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )
