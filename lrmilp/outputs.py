"""Every file lrmilp writes goes through here: whole or not at all, never over a link or a device.

Guarantees of :class:`AtomicFile` (and :func:`atomic_path`, for files an external library writes):

* the target is refused (:class:`~lrmilp.errors.InputError`, one line naming the path) when it is a
  symbolic link (never written through or replaced), a FIFO, a device, a socket or a folder, or when
  its folder does not exist;
* the data goes to a temporary file in the target's folder, which is flushed, fsynced and renamed over
  the target only when writing succeeded; on any failure the temporary file is removed and the target
  is untouched;
* every OSError (a full disk, ENOSPC, included) becomes an InputError naming the path.

:func:`check_distinct` refuses outputs that name the same file as another output or as an input
(same path after resolving links, or the same inode: a hard link).
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator, Mapping

from .errors import InputError

def _kind(mode: int) -> str | None:
    """What a non-regular file is, for messages; None for a regular file."""
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return None if stat.S_ISREG(mode) else "not a regular file"


def _oserror_message(e: OSError) -> str:
    return e.strerror or str(e) or errno.errorcode.get(e.errno or 0, "I/O error")


def _error(param: str, message: str) -> InputError:
    """InputError for ``param``: a parameter name (rewritten as its flag by the CLI) or, when it is
    not an identifier, a plain description such as "results file"."""
    return InputError(f"{param}: {message}", param=param if param.isidentifier() else None)


def check_writable(path: str | os.PathLike, param: str) -> Path:
    """``path`` as a Path if lrmilp may create or replace a regular file there.

    Parameters
    ----------
    path : str or PathLike
        The output file.
    param : str
        The parameter naming it (``regions_out``), or a description (``results file``), for messages.

    Returns
    -------
    Path

    Raises
    ------
    InputError
        When a symbolic link, a FIFO, a device, a socket or a folder is at the path, or its folder
        does not exist.
    """
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise _error(param, f"cannot write {path}: {_oserror_message(e)}") from None
    if st is not None:
        kind = _kind(st.st_mode)
        if kind == "a symbolic link":
            raise _error(param, f"{path} is a symbolic link; lrmilp does not write through or replace links "
                                "(give the file's own path)")
        if kind is not None:
            raise _error(param, f"{path} is {kind}; lrmilp writes regular files only")
    parent = path.parent
    if not parent.is_dir():
        raise _error(param, f"cannot write {path}: no folder {parent}")
    return path


def _identity(path: Path) -> tuple[str, tuple[int, int] | None]:
    """(resolved path, (device, inode) if the file exists)."""
    try:
        st = os.stat(path)
        ino = (st.st_dev, st.st_ino)
    except OSError:
        ino = None
    return str(path.resolve()), ino


def check_distinct(outputs: Mapping[str, "str | os.PathLike | None"],
                   inputs: Mapping[str, "str | os.PathLike | None"] | None = None) -> None:
    """Refuse outputs that would destroy another output or an input.

    Parameters
    ----------
    outputs : mapping
        {parameter: path} of the files a command writes (None entries are skipped).
    inputs : mapping, optional
        {parameter: path} of the files it reads (the model, a box file).

    Raises
    ------
    InputError
        When two of them name one file: the same path once links are resolved, or the same inode
        (a hard link).
    """
    seen: list[tuple[str, Path, tuple]] = []
    for role, items in (("input", inputs or {}), ("output", outputs)):
        for param, p in items.items():
            if p is None:
                continue
            path = Path(p)
            ident = _identity(path)
            for other, other_path, other_ident in seen:
                same = ident[0] == other_ident[0] or (ident[1] is not None and ident[1] == other_ident[1])
                if same:
                    raise InputError(f"{other} and {param} name the same file ({path}); writing {param} would "
                                     f"destroy {other}", param=(other, param))
            seen.append((param, path, ident))


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: some file systems refuse fsync on folders)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temp_path(path: Path, suffix: str) -> tuple[Path, int]:
    """A new, empty, hidden temporary file beside ``path`` (mode 0666 less the umask), and its fd."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part{suffix}")
        try:
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        except FileExistsError:
            continue


class AtomicFile:
    """A file written whole or not at all (module docstring).  Use as a context manager, or call
    :meth:`commit` / :meth:`discard` yourself; :meth:`write` may be called any number of times.

    Parameters
    ----------
    path : str or PathLike
        The target file.
    param : str
        The parameter naming it (``regions_out``, ``out``), used in error messages.
    binary : bool
        Write bytes instead of UTF-8 text.
    suffix : str
        Ending of the temporary file's name (some writers choose the format by it).
    """

    def __init__(self, path: str | os.PathLike, param: str, *, binary: bool = False, suffix: str = "") -> None:
        self.path = check_writable(path, param)
        self.param = param
        self.tmp: Path | None = None
        self.fh: IO | None = None
        self.closed = False
        with self._errors():
            self.tmp, fd = _temp_path(self.path, suffix)
            self.fh = os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"}))

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except OSError as e:
            self.discard()
            raise oserror(self.path, self.param, e) from None

    def write(self, data) -> None:
        """Append ``data`` (str, or bytes when binary); InputError (temporary file removed) on failure."""
        with self._errors():
            self.fh.write(data)

    def flush(self) -> None:
        """Flush Python's buffer (file-like interface; :meth:`commit` makes the data durable)."""
        with self._errors():
            self.fh.flush()

    def commit(self) -> Path:
        """Flush, fsync and rename the temporary file over the target; the target's path."""
        if self.closed:
            return self.path
        with self._errors():
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.fh.close()
            check_writable(self.path, self.param)  # nothing became a link or a FIFO meanwhile
            os.replace(self.tmp, self.path)
        self.closed = True
        _fsync_dir(self.path.parent)
        return self.path

    def discard(self) -> None:
        """Remove the temporary file; the target stays as it was."""
        if self.closed:
            return
        self.closed = True
        if self.fh is not None:
            try:
                self.fh.close()
            except OSError:
                pass
        if self.tmp is not None:
            try:
                os.unlink(self.tmp)
            except OSError:
                pass

    def __enter__(self) -> "AtomicFile":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


@contextmanager
def atomic_path(path: str | os.PathLike, param: str, *, suffix: str = "") -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer outside our control (HiGHS).

    On a clean exit the file is fsynced and renamed over ``path``; on any error it is removed.  The
    caller must check that the writer wrote the whole file (such writers may ignore a full disk).

    Parameters
    ----------
    path : str or PathLike
        The target file (checked as by :func:`check_writable`).
    param : str
        The parameter naming it, for messages.
    suffix : str
        Ending of the temporary file's name (writers that pick the format by it).

    Yields
    ------
    Path
        The temporary file, created empty.

    Raises
    ------
    InputError
        For a bad target, or an OSError while syncing or renaming.
    """
    af = AtomicFile(path, param, binary=True, suffix=suffix)
    af.fh.close()
    try:
        yield af.tmp
    except BaseException:
        af.discard()
        raise
    with af._errors():
        with open(af.tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        check_writable(af.path, param)
        os.replace(af.tmp, af.path)
    af.closed = True
    _fsync_dir(af.path.parent)


def write_text(path: str | os.PathLike, text: str, param: str) -> Path:
    """Write ``text`` to ``path`` whole or not at all (:class:`AtomicFile`).

    Parameters
    ----------
    path : str or PathLike
        The target file.
    text : str
        Its whole content (UTF-8).
    param : str
        The parameter naming it, for messages.

    Returns
    -------
    Path

    Raises
    ------
    InputError
        For a bad target or any write error; the target is then untouched.
    """
    with AtomicFile(path, param) as af:
        af.write(text)
    return af.path


def open_append(path: str | os.PathLike, param: str, *, create: bool = False) -> IO[bytes]:
    """A regular file opened for appending bytes, never through a link.

    Parameters
    ----------
    path : str or PathLike
        The file (checked as by :func:`check_writable`).
    param : str
        The parameter naming it, for messages.
    create : bool
        Create the file when it does not exist.

    Returns
    -------
    binary file object
        Opened with O_APPEND and O_NOFOLLOW.

    Raises
    ------
    InputError
        For a bad target or an OSError while opening.
    """
    path = check_writable(path, param)
    flags = os.O_WRONLY | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags | (os.O_CREAT if create else 0), 0o666)
        return os.fdopen(fd, "ab")
    except OSError as e:
        raise oserror(path, param, e) from None


def oserror(path: str | os.PathLike, param: str, e: OSError) -> InputError:
    """The InputError for an OSError ``e`` met while writing ``path``.

    Parameters
    ----------
    path : str or PathLike
        The file being written.
    param : str
        The parameter naming it.
    e : OSError
        The error (its strerror, e.g. "No space left on device", goes into the message).

    Returns
    -------
    InputError
    """
    return _error(param, f"cannot write {path}: {_oserror_message(e)}")
