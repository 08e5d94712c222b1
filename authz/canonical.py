"""One canonical spelling of every path the service itself serves, for rules and requests alike.

The identity, resource, admin and public APIs (and the management block) answer under both
``api/v2/barong/<area>/…`` (Barong's gateway naming) and ``api/v2/<area>/…`` (a gateway that strips
``barong``).  Prefix rules compare strings, so a DROP row written with one spelling would not hold for the
other: an admin refused ``api/v2/barong/admin/permissions`` could call ``api/v2/admin/permissions``.  So
the decision matches one form only: the alias is rewritten to the ``barong`` spelling in request paths
(:func:`canonical_path`) and in every rule prefix (:func:`canonical_prefixes`: permissions, path rules,
restriction exemptions, login paths, audit topics), and a rule written either way holds for both.  Stored
rows keep the spelling the admin wrote.
"""

from __future__ import annotations

#: The areas served under both spellings.  ``management`` is not served here, but the gateway blocks it
#: under both, so it is canonicalised too.
ALIASED_AREAS = frozenset({"admin", "identity", "resource", "public", "management"})

ROOT = "api/v2/"
CANONICAL_ROOT = "api/v2/barong/"
_AREA_START = len(ROOT)


def canonical_path(path: str) -> str:
    """``path`` (no leading slash) with ``api/v2/<area>`` rewritten to ``api/v2/barong/<area>``.

    Only a whole segment names an area: ``api/v2/administrators`` is another upstream's path and stays.
    """
    if not path.startswith(ROOT):
        return path
    end = path.find("/", _AREA_START)
    area = path[_AREA_START:] if end < 0 else path[_AREA_START:end]
    if area in ALIASED_AREAS:
        return CANONICAL_ROOT + path[_AREA_START:]
    return path


def canonical_prefixes(prefix: str) -> tuple[str, ...]:
    """The prefixes that match, in canonical request paths, what ``prefix`` matches in either spelling.

    A prefix naming a whole area (``api/v2/admin``, ``api/v2/admin/users``) becomes its ``barong``
    spelling.  One that stops inside an area's name (``api/v2/adm``) matched that area's stripped
    spelling, so it also stands for the area's canonical root (``api/v2/barong/admin``): a rule never
    covers less than it did before, and what it covers, it covers under both spellings.
    """
    canonical = canonical_path(prefix)
    if canonical != prefix or not prefix.startswith(ROOT):
        return (canonical,)
    rest = prefix[_AREA_START:]
    if not rest or "/" in rest:
        return (prefix,)
    # ``rest`` is a proper beginning of an area name (a whole one was rewritten above).
    extra = sorted(CANONICAL_ROOT + area for area in ALIASED_AREAS if area.startswith(rest))
    return (prefix, *extra)


def aliases(path: str) -> tuple[str, ...]:
    """Every spelling under which the service serves ``path``: the canonical one first."""
    canonical = canonical_path(path)
    if canonical.startswith(CANONICAL_ROOT):
        area = canonical[len(CANONICAL_ROOT) :].split("/", 1)[0]
        if area in ALIASED_AREAS:
            return (canonical, ROOT + canonical[len(CANONICAL_ROOT) :])
    return (canonical,)


__all__ = ["ALIASED_AREAS", "CANONICAL_ROOT", "aliases", "canonical_path", "canonical_prefixes"]
