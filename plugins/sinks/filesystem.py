"""The ``filesystem`` blob sink: an archive in a local (or mounted) folder.

Writes are atomic and create-only: the bytes go to a temporary file in the archive's
``.rcetl-tmp/`` folder (same file system), are fsynced, then hard-linked under the final name
(``link`` fails if the name exists, so two writers never clobber each other). A crash leaves at
most a temp file there, never a half file under a final name; the next run's ``open`` removes temp
files whose process is gone. A binary in the engine's own spool file (``linkable``) on the same file
system is not copied at all: that file is checked and kept where it is (``kept``), and ``sync()``
makes the batch's bytes durable (one syncfs, or an fsync each for a few) before it renames each to
its final name, create-only: no fsync per recording in the download threads, and no name for bytes
that are not on disk (a run killed before ``sync()`` leaves them in the engine's spool folder).

The folders that gained names are fsynced once per batch, by :meth:`FilesystemSink.sync`, which
the engine calls after a batch's binaries are stored and before any record naming them is written
(or the checkpoint moves): one fsync per folder and batch instead of two per file. Sidecars are
fsynced there too (before their folders), by the sync threads, not by the thread storing the binary:
a binary is still durable before it gets its name, but its sidecar's bytes need only be durable
before a record names the binary. A sync owing many paths (a batch of recordings: a sidecar each,
and their folders) makes them durable with one ``syncfs(2)`` per file system instead (Linux; see
``_SYNCFS_FROM``). A sidecar a crash cut short before ``sync()`` is rewritten when the next run finds
its binary in place (see ``sidecar_durable_at_sync``).

A new key's sidecar is created in place, create-only (no temp file and rename: the binary it
describes gets its name only after it is complete, so a crash mid-write leaves a sidecar without a
binary, which the next run's store replaces atomically, through a temp file, like any sidecar
already there).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import hashlib
import itertools
import os
import secrets
import stat
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

import rcetl
from rcetl.hashing import feed

# The checksum rcetl wrote is kept in an extended attribute so a re-run can skip without rehashing.
_XATTR = "user.rcetl.sha256"
_COPY_CHUNK = 8 << 20
#: Files up to this size are hashed in the storing thread (a hand-off to the hash thread costs
#: more than hashing them); larger ones are hashed by the hash thread while the kernel copies.
_INLINE_HASH_BYTES = 1 << 20


def _process_umask() -> int:
    """This process's umask, read without changing it (os.umask sets it: not thread-safe)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


#: What a file created here loses of its requested mode (a linked spool file is given the same).
_UMASK = _process_umask()
#: Threads that fsync a batch's folders at once.
_SYNC_THREADS = 8
#: From this many paths owed (sidecars and folders), sync() makes them durable with one syncfs(2) of
#: each file system they are on instead of an fsync each: the same guarantee (every dirty inode, data
#: block and folder of that file system written and the device cache flushed; a writeback error
#: reported, Linux >= 5.8), at a fraction of the system calls and thread wake-ups when a batch of
#: recordings owes thousands. Its cost: it also writes what other processes left dirty on that file
#: system, so a small sync (an incremental run's few files) keeps its targeted fsyncs.
_SYNCFS_FROM = 64
#: Folders remembered as checked (inside the archive) and created; forgotten past this many.
_KNOWN_DIRS = 4096


#: This process's id for temp names, kept current in a forked child (not a getpid call per file).
_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


def _load_syncfs() -> Callable[[int], int] | None:
    """libc's ``syncfs`` (Linux >= 5.8, where it reports writeback errors), or None."""
    if not os.uname().sysname == "Linux":
        return None
    try:
        major, minor = (int(x) for x in os.uname().release.split(".")[:2])
        if (major, minor) < (5, 8):
            return None
        fn = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, ValueError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_syncfs = _load_syncfs()


def _load_renameat2() -> Callable[[int, bytes, int, bytes, int], int] | None:
    """libc's ``renameat2`` (glibc >= 2.28), or None. Written by hand because ``os.rename`` takes
    no flags, and RENAME_NOREPLACE is what makes a rename create-only."""
    if os.uname().sysname != "Linux":
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_renameat2 = _load_renameat2()
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1

#: Folder inside the archive for writes in flight, and when a leftover there is surely stale.
TEMP_DIR = ".rcetl-tmp"
STALE_TEMP_SECONDS = 24 * 3600

class FilesystemConfig(rcetl.ObjectStoreConfig):
    path: str
    """The archive folder; a relative path resolves against the pipeline file's folder."""
    file_mode: int = 0o600
    """Mode of archived files (owner-only by default: recordings are personal data)."""
    dir_mode: int = 0o700
    fsync: bool = True
    """fsync files and folders before reporting success (off only for throwaway archives)."""


class FilesystemSink(rcetl.ObjectStoreSink):
    #: Reading a local file back is cheap, so `rcetl verify` re-hashes stored bytes by default.
    rehash_is_cheap = True
    #: Sidecars are fsynced by sync(): one a crash cut short is rewritten when its binary is found.
    sidecar_durable_at_sync = True
    config_model = FilesystemConfig
    description = "Local or mounted folder: atomic, create-only writes with JSON sidecars."
    config: FilesystemConfig

    def __init__(self, name: str, config: FilesystemConfig, ctx: rcetl.RunContext) -> None:
        super().__init__(name, config, ctx)
        self.root = Path(os.path.realpath(ctx.resolve(config.path)))
        self._root = str(self.root)
        self.location_prefix = self._root + os.sep
        # One helper thread hashes a large spooled file while the kernel copies it.
        self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"rcetl-{name}-hash")
        # Folders known to exist inside the archive (made here, or each level found a real folder
        # under one known inside; the root once open() made it): a day's folder holds many files, so
        # each is checked or made once, not per file, and a new folder is made under the nearest
        # one known without looking at the levels above it.
        self._inside: set[str] = set()
        # Whether a folder mkdir makes may lack bits of ``dir_mode`` (then chmodded): known at open().
        self._mode_narrowed = True
        # This process's group, asked once (a system call each time, two per recording's folders).
        self._egid = os.getegid()
        # Spool files are hard-linked into the archive until a link fails (another file system).
        self._link_spools = True
        # The engine's spool files kept where they are until sync() names them: final path -> the
        # blob (its path, size and SHA-256, checked against the file when kept). Read without the
        # lock (a dict lookup), changed under it.
        self._kept: dict[str, rcetl.SpooledBlob] = {}
        # Held by sync() (it runs in every session's thread at once) and while a kept file is
        # dropped: a kept file is named once and never after it was dropped, and a sync() returns
        # only once what another sync() took from it meanwhile is durable too.
        self._sync_lock = threading.Lock()
        self._root_dev: int | None = None  # the archive's file system (known at open())
        self._groups: dict[str, int] = {}  # folder -> the group its new files get
        # Folders whose new entries are not yet durable; fsynced by sync() once per batch.
        self._unsynced: set[str] = set()
        # Sidecars written since the last sync(), their bytes not yet fsynced.
        self._unsynced_files: list[str] = []
        self._unsynced_lock = threading.Lock()
        self._sync_pool: ThreadPoolExecutor | None = None
        # Temp names: the process id (stale files of killed runs are found by it), a random part
        # drawn once per sink (two sinks or forks of a process never collide), and a counter.
        self._temp_names = itertools.count()
        self._temp_token = secrets.token_hex(4)

    # --- lifecycle ----------------------------------------------------------------------------

    def open(self) -> None:
        try:
            self._guarded(lambda: self._makedirs(os.path.join(self._root, TEMP_DIR)), "creating the folder")
        except rcetl.PermanentError as exc:  # a read-only mount stops root too, where mode bits don't
            raise rcetl.ConfigError(f"{self.name}: cannot write to {self.root}: {exc}",
                                    hint="check the folder's owner and mode, and that its file system "
                                         "is mounted read-write") from None
        self._guarded(self._clear_stale_temp_files, "clearing temp files of killed runs")
        # mkdir gives a folder ``dir_mode`` minus the umask, or, under a default ACL, minus what the
        # ACL leaves out: a chmod after each mkdir only when either can take bits the mode asks for.
        # (Linux's mkdir also drops the set-user/group-id bits: those are chmodded too.)
        self._mode_narrowed = bool(self.config.dir_mode & (_UMASK | 0o6000)) or _has_default_acl(self._root)
        self._root_dev = os.stat(self._root).st_dev

    def _temp_path(self) -> str:
        # Writes in flight live in one folder of the archive (same file system, so publishing is
        # still an atomic link/rename) named by their process, so leftovers of a killed run are
        # found without walking the archive.
        # (no random draw per file: it was one getrandom system call per stored binary)
        name = f"{_pid}-{self._temp_token}{next(self._temp_names):x}.part"
        return os.path.join(self._root, TEMP_DIR, name)

    def _clear_stale_temp_files(self) -> None:
        now = time.time()
        for entry in os.scandir(self.root / TEMP_DIR):
            pid = entry.name.split("-", 1)[0]
            try:
                stale = not rcetl.process_alive(int(pid)) or now - entry.stat().st_mtime > STALE_TEMP_SECONDS
            except (ValueError, OSError):
                stale = True
            if stale:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)

    def check(self) -> None:
        self.open()
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise rcetl.ConfigError(
                f"{self.name}: cannot write to {self.root}", hint="check the folder's owner and mode"
            )

    def close(self) -> None:
        try:
            self.sync()
        finally:
            self._hasher.shutdown(wait=True)
            if self._sync_pool is not None:
                self._sync_pool.shutdown(wait=True)

    def sync(self) -> None:
        """Name the engine's spool files kept since the last call (their bytes made durable first,
        see _name_kept), then make every name published since durable: fsync the folders that
        gained one (files are durable before they get their name). Called before records point at
        them.

        The folders are fsynced by several threads at once: each fsync waits for the device, and a
        batch of recordings spread over days and extensions can name a thousand folders."""
        with self._sync_lock:
            self._sync()

    def _sync(self) -> None:
        self._write_manifest()  # sidecar: batch: made durable below with the batch's names
        self._name_kept()
        with self._unsynced_lock:
            files, self._unsynced_files = self._unsynced_files, []
            folders, self._unsynced = self._unsynced, set()
        owed_files, owed = set(files), set(folders)
        try:
            if _syncfs is not None and len(owed_files) + len(owed) >= _SYNCFS_FROM:
                # Every sidecar is in a folder that gained its name, and a binary is on its folder's
                # file system: syncing the file system of each owed folder covers all of them.
                self._guarded(functools.partial(_syncfs_all, owed), "syncing the archive's file system")
                owed_files.clear()
                owed.clear()
                return
            # The sidecars' bytes first, then the names of everything in the folders.
            self._fsync_all(owed_files, _fsync_file, "a sidecar")
            self._fsync_all(owed, _fsync_path, "a folder of stored files")
        except BaseException:
            with self._unsynced_lock:  # not durable yet: the next call tries them again
                self._unsynced_files.extend(owed_files)
                self._unsynced.update(owed)
            raise

    def _name_kept(self) -> None:
        """Give every binary kept since the last call its name: their bytes made durable first (one
        syncfs(2) of the archive's file system for a batch, else an fsync each), then each renamed
        to its final name, create-only. No name is given to bytes that are not on disk, and no
        download thread waits for the device: a batch of recordings pays for one syncfs, not an
        fsync (a blocked thread, a hand-off of the interpreter) per recording. A file not named
        yet stays kept for the next call.

        Only files the engine has released are named: every sink is done with them (another sink
        may still be reading a file of a batch in flight, by its path, when a concurrent session's
        batch calls this). A batch's own files are all released before the engine calls sync()."""
        with self._unsynced_lock:
            kept = [(final, blob) for final, blob in self._kept.items() if blob.fd < 0]
        if not kept:
            return  # none, or all still in use
        if _syncfs is not None and len(kept) >= _SYNCFS_FROM:
            self._guarded(functools.partial(_syncfs_all, {self._root}), "syncing the archive's file system")
        else:
            self._fsync_all({blob.path for _, blob in kept}, _fsync_file, "a stored file")
        for final, blob in kept:
            self._guarded(functools.partial(self._name_one, final, blob), f"naming {final}")
            with self._unsynced_lock:
                self._kept.pop(final, None)
            self._unsynced_name(os.path.dirname(final))

    def _name_one(self, final: str, blob: rcetl.SpooledBlob) -> None:
        try:
            _rename_noreplace(blob.path, final)
        except FileExistsError:
            # Free when the binary was stored; another writer (a second run on the same folder)
            # gave the name since. The same bytes: nothing to do. Others: never replaced here.
            if os.stat(final).st_size == blob.size and self.hash_file(final) == blob.sha256:
                _unlink_quietly(blob.path)
                return
            raise rcetl.ConflictError(
                f"{self.name}: {final} was written by someone else, with other bytes, while this run "
                f"stored its binary (size {blob.size}, sha256 {blob.sha256})",
                hint="let one run at a time write an archive folder; the next run stores the binary "
                     "again, under the conflict policy (on_conflict)") from None

    def _fsync_all(self, paths: set[str], fsync_one: Callable[[str], None], what: str) -> None:
        """fsync every path of ``paths`` (removing each from it once durable), several at once.

        The paths are dealt out to at most ``_SYNC_THREADS`` lanes, one task each (this thread takes
        the first): a task per path cost a future, a queue hand-off and a thread wake-up per file,
        and each fsync waits for the device anyway. Every lane runs to its end (or its first
        failure) before this returns, so ``paths`` is left holding exactly what is not durable."""
        if not paths:
            return
        if len(paths) == 1:
            path = next(iter(paths))
            self._guarded(functools.partial(fsync_one, path), f"syncing {what}")
            paths.discard(path)
            return
        todo = list(paths)
        lanes = min(_SYNC_THREADS, len(todo))

        def lane(group: list[str]) -> None:
            for path in group:
                self._guarded(functools.partial(fsync_one, path), f"syncing {path}")
                paths.discard(path)

        pool = self._syncers()
        futures = [pool.submit(lane, todo[i::lanes]) for i in range(1, lanes)]
        first: BaseException | None = None
        try:
            lane(todo[0::lanes])
        except BaseException as exc:  # noqa: BLE001 - raised below, once the other lanes are done
            first = exc
        for fut in futures:
            try:
                fut.result()
            except BaseException as exc:  # noqa: BLE001
                first = first or exc
        if first is not None:
            raise first

    def _syncers(self) -> ThreadPoolExecutor:
        with self._unsynced_lock:
            if self._sync_pool is None:
                self._sync_pool = ThreadPoolExecutor(max_workers=_SYNC_THREADS,
                                                     thread_name_prefix=f"rcetl-{self.name}-sync")
            return self._sync_pool

    # --- primitives ---------------------------------------------------------------------------
    # Paths are plain strings here: pathlib objects cost more than the system calls they wrap.

    def _path(self, key: str) -> str:
        return self._locate(key)[0]

    def _locate(self, key: str, path: str | None = None) -> tuple[str, bool]:
        """The path of ``key`` inside the archive (``path``: already joined), and whether its
        folder was found missing."""
        path = path or os.path.join(self._root, *key.split("/"))
        folder = os.path.dirname(path)
        if folder in self._inside:
            return path, False
        # Keys are sanitised already; this guards against a symlink inside the archive pointing out.
        try:
            inside = self._found_inside(folder)
        except (FileNotFoundError, NotADirectoryError):
            return path, True
        if not inside:
            raise rcetl.PermanentError(f"{self.name}: refusing to write {key!r} outside {self.root}")
        return path, False

    def _path_to_write(self, key: str) -> str:
        """The path of ``key``, its folders made first (a folder made here is known to be inside
        the archive: the path needs no check of its own)."""
        path = os.path.join(self._root, *key.split("/"))
        self._makedirs(os.path.dirname(path))
        return self._locate(key, path)[0]

    def _found_inside(self, folder: str) -> bool:
        """Whether the existing ``folder`` is inside the archive (remembered if so); raises
        FileNotFoundError when it is missing.

        Each level below the nearest folder known inside is looked at once (lstat): a real folder
        under one inside the archive is inside too. A link on the way is resolved (realpath, a
        system call per level of the whole path): inside only if it leads inside."""
        levels = []
        level = folder
        while level not in self._inside:
            if not level.startswith(self.location_prefix):  # the root not known yet (before open())
                return self._resolves_inside(folder)
            levels.append(level)
            level = os.path.dirname(level)
        for level in reversed(levels):
            if not stat.S_ISDIR(os.lstat(level).st_mode):
                return self._resolves_inside(folder)
            self._remember_inside(level)
        return True

    def _resolves_inside(self, folder: str) -> bool:
        """Whether the existing ``folder``, every link on its path followed, is inside the archive."""
        real = os.path.realpath(folder)
        if not os.path.isdir(real):
            raise NotADirectoryError(errno.ENOTDIR, "not a folder", folder)
        if os.path.commonpath([real, self._root]) != self._root:
            return False
        self._remember_inside(folder)
        return True

    def _remember_inside(self, folder: str) -> None:
        if len(self._inside) >= _KNOWN_DIRS:  # forget them all but the root (known again on use)
            root = self._root in self._inside
            self._inside.clear()
            if root:
                self._inside.add(self._root)
        self._inside.add(folder)

    def _head(self, key: str) -> rcetl.ObjectInfo | None:
        path, missing = self._locate(key)
        kept = self._kept.get(path)
        if kept is not None:  # stored in this batch, named at sync()
            return rcetl.ObjectInfo(size=kept.size, sha256=kept.sha256)
        if missing:
            return None  # its folder was not there a moment ago: no file to stat in it
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            return None
        return rcetl.ObjectInfo(size=size, sha256=self._recorded_sha256(path, key))

    def _recorded_sha256(self, path: str, key: str) -> str:
        try:
            return os.getxattr(path, _XATTR).decode()
        except OSError:
            pass
        # A folder copied without xattrs still has its sidecars; failing both, rehash the file.
        return self._sidecar_sha256(key) or self.hash_file(path)

    def _upload(
        self, key: str, blob: rcetl.SpooledBlob, metadata: dict[str, str]
    ) -> rcetl.ObjectInfo:
        final = self._path_to_write(key)
        if self._link_spools and blob.linkable:
            linked = self._link_spooled(blob, final)
            if linked is not None:
                return linked
        tmp = self._temp_path()
        try:
            digest, size = self._copy(blob.path, tmp, blob.size)
            try:
                os.setxattr(tmp, _XATTR, digest.encode())
            except OSError:
                pass  # no user xattrs here (some tmpfs, network mounts): the sidecar carries it
            self._publish(tmp, final)
        except BaseException:
            _unlink_quietly(tmp)
            raise
        os.unlink(tmp)  # published under its final name by a hard link: drop the temp name
        return rcetl.ObjectInfo(size=size, sha256=digest)

    def _link_spooled(self, blob: rcetl.SpooledBlob, final: str) -> rcetl.ObjectInfo | None:
        """Publish the engine's spool file itself under ``final``: hashed (the bytes on disk must
        be those the download hashed) and given the archive's mode and checksum attribute; then
        kept, to be renamed by sync() once durable (the engine's open file on the archive's file
        system, with ``fsync`` on), or fsynced and hard-linked now (atomic and create-only, like a
        copy's publication). None when it cannot be either (another file system, no hard links, a
        file a sink already linked or keeps): copy it."""
        own = blob.fd
        fd = own if own >= 0 else os.open(blob.path, os.O_RDONLY)
        try:
            st = os.fstat(fd)
            if st.st_nlink != 1 or blob.kept:
                return None  # another sink published (or keeps) this file already: each archive gets its own
            digest, size = _hash_fd(fd, st.st_size, 0)
            if digest != blob.sha256 or size != blob.size:
                # Not what was downloaded: never published; the caller's check reports it.
                return rcetl.ObjectInfo(size=size, sha256=digest)
            # The owner, group and mode a file created in the archive folder would get (as a copy's).
            group = self._group_in(os.path.dirname(final))
            if st.st_gid != group:
                try:
                    os.fchown(fd, -1, group)
                except OSError:
                    return None  # not a member of the folder's group: a copy gets it
            mode = self.config.file_mode & ~_UMASK
            if stat.S_IMODE(st.st_mode) != mode:
                os.fchmod(fd, mode)
            try:
                os.setxattr(fd, _XATTR, digest.encode())
            except OSError:
                pass  # no user xattrs here: the sidecar carries it
            # The engine's own file on the archive's file system is kept where it is and named by
            # sync(), once the batch's bytes are durable (see _name_kept); any other is fsynced now.
            keep = self.config.fsync and own >= 0 and st.st_dev == self._root_dev
            if self.config.fsync and not keep:
                os.fsync(fd)
        finally:
            if fd != own:
                os.close(fd)
        if keep:
            with self._unsynced_lock:
                if final in self._kept:
                    raise self.KeyExists(final)  # another thread's binary waits for this name
                self._kept[final] = blob  # its size and SHA-256 are the file's (checked above)
            blob.kept = True
            return rcetl.ObjectInfo(size=size, sha256=digest)
        try:
            os.link(blob.path, final)
        except FileExistsError:
            raise self.KeyExists(final) from None
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            self._link_spools = exc.errno == errno.EMLINK  # only a full inode may link next time
            return None
        if own >= 0:
            blob.linked = True
        self._unsynced_name(os.path.dirname(final))
        return rcetl.ObjectInfo(size=size, sha256=digest)

    def _group_in(self, folder: str) -> int:
        """The group a file created in ``folder`` gets: the folder's own when it is set-group-id
        (a shared archive), else this process's."""
        group = self._groups.get(folder)
        if group is None:
            st = os.stat(folder)
            group = st.st_gid if st.st_mode & stat.S_ISGID else self._egid
            self._note_group(folder, group)
        return group

    def _note_group(self, folder: str, group: int) -> None:
        """Remember the group a file created in ``folder`` gets."""
        if len(self._groups) >= _KNOWN_DIRS:
            self._groups.clear()
        self._groups[folder] = group

    def _copy(self, src: str, dst: str, size: int | None = None) -> tuple[str, int]:
        """Copy ``src`` to a new ``dst``; return the SHA-256 and the size of the bytes copied.

        The kernel copies (sendfile, no user-space buffers). A small file is hashed here first
        (from the page cache; a hand-off to another thread would cost more); a large one is hashed
        by a thread while the kernel copies it: both release the GIL, so the copy costs about
        max(copy, hash) instead of their sum.
        """
        fin = os.open(src, os.O_RDONLY)
        try:
            hashing = None
            if size is not None and size <= _INLINE_HASH_BYTES:
                digest, _ = _hash_fd(fin, size)
                os.lseek(fin, 0, os.SEEK_SET)
            else:
                hashing = self._hasher.submit(self.hash_file, src)
            fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, self.config.file_mode)
            try:
                _copy_fd(fin, fd)
                if self.config.fsync:
                    os.fsync(fd)
                copied = os.fstat(fd).st_size
            finally:
                os.close(fd)
        finally:
            os.close(fin)
        return (hashing.result() if hashing is not None else digest), copied

    def _publish(self, tmp: str, final: str) -> None:
        try:
            os.link(tmp, final)  # atomic and create-only
        except FileExistsError:
            raise self.KeyExists(final) from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            # No hard links on this file system: rename is still atomic, only not create-only.
            if os.path.exists(final):
                raise self.KeyExists(final) from None
            os.rename(tmp, final)
        self._unsynced_name(os.path.dirname(final))

    def _put_small(self, key: str, data: bytes, content_type: str) -> None:
        final = self._path_to_write(key)
        # Create-only in place (a new key's sidecar, before its binary has a name): one file made
        # where it stays, no temp name and rename. A sidecar already there (one to rewrite, or a
        # killed run's without its binary) is replaced atomically through a temp file instead.
        try:
            fd = os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, self.config.file_mode)
        except FileExistsError:
            self._replace_small(final, data)
        else:
            try:
                try:
                    _write_all(fd, data)
                finally:
                    os.close(fd)
            except BaseException:
                _unlink_quietly(final)
                raise
        # Its bytes are fsynced by sync(), with its folder, before any record names its binary.
        self._unsynced_name(os.path.dirname(final), final)

    def _rewrite_small(self, key: str, data: bytes, content_type: str) -> None:
        # Its binary is in place and records may name it: never a moment with half a sidecar.
        final = self._path(key)
        self._replace_small(final, data)
        self._unsynced_name(os.path.dirname(final), final)

    def _replace_small(self, final: str, data: bytes) -> None:
        tmp = self._temp_path()
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, self.config.file_mode)
            try:
                _write_all(fd, data)
            finally:
                os.close(fd)
            os.replace(tmp, final)
        except BaseException:
            _unlink_quietly(tmp)
            raise

    def _open(self, key: str) -> BinaryIO:
        path = self._path(key)
        kept = self._kept.get(path)
        return open(kept.path if kept is not None else path, "rb")

    def _list(self) -> Iterator[str]:
        for folder, dirs, files in os.walk(self.root):
            dirs[:] = [d for d in dirs if not d.startswith(".")]  # the temp folder
            rel = os.path.relpath(folder, self.root)
            for name in files:
                if not name.startswith("."):  # temp files of writes in flight
                    yield name if rel == "." else f"{rel.replace(os.sep, '/')}/{name}"

    def _delete(self, key: str) -> None:
        path = self._path(key)
        with self._sync_lock, self._unsynced_lock:
            kept = self._kept.pop(path, None)
        # A kept binary never had the name: its file (left to this sink by the engine) goes.
        _unlink_quietly(kept.path if kept is not None else path)

    # --- helpers ------------------------------------------------------------------------------

    def _makedirs(self, folder: str, again: bool = True) -> None:
        """Make ``folder`` and the levels above it that are missing, each with ``dir_mode``.

        Levels are made from the nearest folder known inside the archive down, by mkdir alone (a
        level already there answers EEXIST): a recording's new folders (its day's, its extension's)
        cost a mkdir each, not a stat of every level first. Nothing is made under a folder not
        known inside: a level that exists is a real folder (or a link leading inside) before
        anything is made in it."""
        missing = []
        level = folder
        while level not in self._inside:
            if not level.startswith(self.location_prefix):  # the root itself: made at open()
                self._make_root()
                break
            missing.append(level)
            level = os.path.dirname(level)
        for level in reversed(missing):
            try:
                os.mkdir(level, self.config.dir_mode)
            except FileExistsError:
                # There already (a run before this one, or another download thread storing a
                # recording of the same day just now): used only if it is a folder inside the
                # archive. A link or a file is never followed: nothing is made or chmodded through it.
                try:
                    inside = self._found_inside(level)
                except (FileNotFoundError, NotADirectoryError):
                    inside = False
                if not inside:
                    raise rcetl.PermanentError(
                        f"{self.name}: refusing to write under {level!r}: it is not a folder inside "
                        f"{self.root} (a link or a file leading outside)") from None
                continue
            except FileNotFoundError:
                # A folder known inside is gone (removed by hand meanwhile): forget what was known
                # and make the path again from the root, once.
                if not again:
                    raise
                self._inside.clear()
                self._makedirs(folder, again=False)
                return
            if self._mode_narrowed:
                os.chmod(level, self.config.dir_mode)  # the umask took bits the mode asks for
            # A file created in a new folder gets the group it would get in its parent (Linux: the
            # parent's group when the parent is set-group-id, which the new folder inherits with the
            # group; else this process's, also under a set-group-id ``dir_mode``): noted, so a spool
            # file linked into it needs no stat of the folder for its group.
            parent = os.path.dirname(level)
            group = self._groups.get(parent)
            if group is None and self._link_spools:
                group = self._group_in(parent)
            if group is not None:
                self._note_group(level, group)
            self._unsynced_name(parent)  # its parent gained a name
            self._remember_inside(level)

    def _make_root(self) -> None:
        """Make the archive's folder and the levels above it that are missing (at open()), each
        given ``dir_mode`` (makedirs gives it only to the last, and under the umask)."""
        missing = []
        level = self._root
        while not os.path.isdir(level):
            missing.append(level)
            level = os.path.dirname(level)
        os.makedirs(self._root, self.config.dir_mode, exist_ok=True)
        for level in missing:
            os.chmod(level, self.config.dir_mode)
            self._unsynced_name(os.path.dirname(level))
        self._remember_inside(self._root)

    def _found(self, key: str) -> None:
        # A file found in place may be a killed run's, published but never synced: its folder and
        # every folder above it (up to the archive's root) are fsynced by the next sync().
        if not self.config.fsync:
            return
        folder = os.path.dirname(self._path(key))
        with self._unsynced_lock:
            while folder.startswith(self.location_prefix):
                self._unsynced.add(folder)
                folder = os.path.dirname(folder)
            self._unsynced.add(self._root)

    def _unsynced_name(self, folder: str, file: str | None = None) -> None:
        """``folder`` gained a name that :meth:`sync` must make durable (and ``file``, its bytes)."""
        if self.config.fsync:
            with self._unsynced_lock:
                self._unsynced.add(folder)
                if file is not None:
                    self._unsynced_files.append(file)


def _has_default_acl(folder: str) -> bool:
    """Whether ``folder`` carries a default ACL (its new folders' modes then follow it, not the umask)."""
    try:
        os.getxattr(folder, "system.posix_acl_default")
    except OSError:  # ENODATA: none; ENOTSUP: no ACLs on this file system
        return False
    return True


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _syncfs_all(folders: set[str]) -> None:
    """syncfs(2) once per file system the ``folders`` are on (one, unless the archive spans mounts)."""
    assert _syncfs is not None
    seen: dict[int, str] = {}
    for folder in folders:
        try:
            seen.setdefault(os.stat(folder).st_dev, folder)
        except FileNotFoundError:  # removed since (a purge): nothing of it to make durable
            continue
    for folder in seen.values():
        fd = os.open(folder, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if _syncfs(fd) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"syncfs: {os.strerror(err)}", folder)
        finally:
            os.close(fd)


def _rename_noreplace(src: str, dst: str) -> None:
    """Rename ``src`` to ``dst``, atomically and create-only: FileExistsError when ``dst`` exists.
    renameat2(RENAME_NOREPLACE) where the kernel and the file system have it; else a hard link and
    an unlink (the same guarantee, a call more); else, without hard links, a rename after a check."""
    if _renameat2 is not None:
        if _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise OSError(err, os.strerror(err), src, None, dst)  # EEXIST: a FileExistsError
    try:
        os.link(src, dst)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "File exists", dst) from None
        os.rename(src, dst)
        return
    os.unlink(src)


def _fsync_path(path: str) -> None:
    """fsync a folder that gained names, or a sidecar written, since the last sync; one removed
    (or a sidecar replaced) since is not owed."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: The same for a sidecar, under its own name so that sync()'s order (sidecars, then folders) shows.
_fsync_file = _fsync_path


def _hash_fd(fd: int, size: int, offset: int | None = None) -> tuple[str, int]:
    """SHA-256 and length of what ``fd`` holds from its position on (or from ``offset``, without
    moving it); ``size``: the length expected (one read for a small file: a read past it finds the
    end)."""
    sha = hashlib.sha256()
    read = 0
    while True:
        want = min(max(size - read + 1, 1), _COPY_CHUNK)
        chunk = os.read(fd, want) if offset is None else os.pread(fd, want, offset + read)
        feed(sha, chunk)
        read += len(chunk)
        if len(chunk) < want:  # a short read of a regular file: its end
            return sha.hexdigest(), read


def _copy_fd(src: int, dst: int) -> None:
    """sendfile where the kernel allows it, else a plain loop with large buffers."""
    offset = 0
    try:
        while sent := os.sendfile(dst, src, offset, _COPY_CHUNK):
            offset += sent
        return
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP) or offset:
            raise
    while chunk := os.read(src, _COPY_CHUNK):
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst, view) :]
