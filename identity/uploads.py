"""Uploaded files on disk: streamed into a temporary file, checked, then renamed into place.

A file is first *staged*: its chunks go into ``<directory>/.part-*`` while its size is counted (beyond
``max_size`` → 413 ``resource.documents.file_too_large``) and its type is judged from its first bytes
(magic numbers) and its declared type, which must agree and be allowed (else 422
``resource.documents.invalid_format``).  Only when every file of a request has been staged are they
*committed*: renamed to random storage names (``<32 hex>.<ext>``), with nothing taken from the client's file
name.  A failing request discards what it staged; nothing is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import tempfile
from collections.abc import AsyncIterable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import filetype

from identity.errors import PayloadTooLarge, StorageUnavailable, ValidationFailed

INVALID_FORMAT = "resource.documents.invalid_format"
FILE_TOO_LARGE = "resource.documents.file_too_large"
SNIFF_BYTES = 8192  # what ``filetype`` looks at
_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "application/x-pdf": "application/pdf"}
_STORAGE_NAME = re.compile(r"[0-9a-f]{32}\.[a-z0-9]{1,8}")


def normalise_type(declared: str | None) -> str:
    """``image/JPG; name=x`` → ``image/jpeg``."""
    media = (declared or "").split(";", 1)[0].strip().lower()
    return _ALIASES.get(media, media)


@dataclass
class StagedFile:
    """A checked upload waiting in a temporary file."""

    temp_path: Path
    content_type: str
    extension: str
    size: int


class UploadStore:
    """The upload directory (``<data dir>/uploads``)."""

    def __init__(self, directory: Path, *, max_size: int, content_types: Collection[str]) -> None:
        self.directory = Path(directory)
        self.max_size = max_size
        self.content_types = frozenset(normalise_type(t) for t in content_types)

    def _ensure_directory(self) -> None:
        if not self.directory.is_dir():
            self.directory.mkdir(parents=True, exist_ok=True)
            os.chmod(self.directory, 0o700)  # identity documents: the service's user only

    async def stage(self, chunks: AsyncIterable[bytes], declared_type: str | None) -> StagedFile:
        """Stream ``chunks`` into a temporary file, checking size and type on the way.

        Stops reading at the first problem; the temporary file is gone whenever this raises.
        """
        try:
            fd, name = await asyncio.to_thread(self._open_temp)
        except OSError as exc:
            raise StorageUnavailable() from exc
        temp = Path(name)
        file = os.fdopen(fd, "wb")
        try:
            return await self._fill(file, temp, chunks, normalise_type(declared_type))
        except BaseException:
            await asyncio.to_thread(_close_and_remove, file, temp)
            raise

    def _open_temp(self) -> tuple[int, str]:
        self._ensure_directory()
        return tempfile.mkstemp(dir=self.directory, prefix=".part-")

    async def _fill(
        self, file: BinaryIO, temp: Path, chunks: AsyncIterable[bytes], declared: str
    ) -> StagedFile:
        head = b""
        kind = None
        size = 0
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > self.max_size:
                    raise PayloadTooLarge(FILE_TOO_LARGE)
                if kind is None:
                    head += chunk
                    if len(head) < SNIFF_BYTES:
                        continue
                    kind = self._judge(head, declared)
                    chunk, head = head, b""
                await asyncio.to_thread(file.write, chunk)
            if kind is None:  # the whole file was shorter than the sniffed prefix
                kind = self._judge(head, declared)
                await asyncio.to_thread(file.write, head)
            await asyncio.to_thread(file.close)
        except OSError as exc:
            raise StorageUnavailable() from exc
        return StagedFile(temp, kind.mime, kind.extension, size)

    def _judge(self, head: bytes, declared: str) -> filetype.Type:
        """The file's type from its magic bytes; it must be allowed and be what the client declared."""
        kind = filetype.guess(head) if head else None
        if kind is None or kind.mime not in self.content_types or declared != kind.mime:
            raise ValidationFailed(INVALID_FORMAT)
        return kind

    async def commit(self, staged: Sequence[StagedFile]) -> list[str]:
        """Move staged files into place; their storage names, in order.  All or nothing."""
        try:
            return await asyncio.to_thread(self._commit, staged)
        except OSError as exc:
            raise StorageUnavailable() from exc

    def _commit(self, staged: Sequence[StagedFile]) -> list[str]:
        names: list[str] = []
        try:
            for item in staged:
                name = f"{secrets.token_hex(16)}.{item.extension}"
                os.replace(item.temp_path, self.directory / name)
                names.append(name)
        except BaseException:
            self._remove(names)
            raise
        return names

    async def discard(self, staged: Sequence[StagedFile]) -> None:
        """Remove staged files that will not be committed."""
        await asyncio.to_thread(_unlink_all, [item.temp_path for item in staged])

    async def remove(self, names: Sequence[str]) -> None:
        """Remove committed files (their rows could not be written)."""
        await asyncio.to_thread(self._remove, names)

    def _remove(self, names: Sequence[str]) -> None:
        _unlink_all([self.directory / name for name in names])

    def path_of(self, name: str) -> Path | None:
        """Where a stored file is; None for a name this store never gives out (or a missing file)."""
        if not _STORAGE_NAME.fullmatch(name):
            return None
        path = self.directory / name
        return path if path.is_file() else None


def _close_and_remove(file: BinaryIO, temp: Path) -> None:
    with contextlib.suppress(OSError):
        file.close()
    temp.unlink(missing_ok=True)


def _unlink_all(paths: Sequence[Path]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
