"""What backups ask of an engine: dump, restore, count, check, scratch databases (``golive.backup``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from golive.dialects.base.concern import Concern

if TYPE_CHECKING:
    from golive.urls import DatabaseURL
    from contextlib import AbstractContextManager
    from pathlib import Path

    from golive.model.backup import Manifest, ObjectSink, TableEntry


class Backup(Concern):
    """Back up, restore and check a database of this engine (``golive.backup``).

    The engine makes a consistent dump (one snapshot: row counts and the schema fingerprint describe exactly the
    dumped data) and writes it as objects into the ``ObjectSink`` it is given; it restores those objects, counts
    and fingerprints a database, and provides a scratch database to verify in. Storage, compression, encryption,
    manifests and retention are the capability's; the models both sides share are in ``golive.model.backup``.
    """

    def check_connects(self, url: "DatabaseURL", role: str = "database") -> None:
        """Connect once and close, so a wrong password or host fails in one line before anything is dumped or
        downloaded (``ConnectionFailed``).

        Args:
            role: how the message names the database ("database", "target").
        """
        self.dialect.connect(url, role=role).close()

    def default_name(self, url: "DatabaseURL") -> str | None:
        """The name a backup's ID carries when none is given: the database's."""
        return url.database

    def backup(self, url: "DatabaseURL", sink: "ObjectSink", *, scratch_dir: str | None = None) -> dict:
        """Dump ``url`` from one consistent snapshot into objects opened on ``sink``.

        Args:
            sink: opens one writer per object (``sink.open(name, kind, table=None)``); the caller removes them
                all when this raises.
            scratch_dir: where a local copy may be made while it is stored (default: the temp directory).

        Returns:
            The manifest's engine fields: ``server_version``, ``database``, ``tool`` (a ``Tool``), ``objects``
            (the writers' ``ObjectEntry`` list), ``tables`` (``TableEntry`` row counts of the snapshot),
            ``schema_fingerprint``, ``details`` (engine specifics, e.g. the server to verify on) and optionally
            ``warnings``.

        Raises:
            GoliveError: one line, password masked (driver errors translated by the session).
        """
        raise NotImplementedError

    def restore(self, url: "DatabaseURL", files: dict[str, "Path"], manifest: "Manifest", *, force: bool,
                jobs: int = 2, no_owner: bool = False) -> dict:
        """Restore a backup's downloaded objects into ``url``.

        Args:
            files: object name -> local file, each already checked against the manifest (size, SHA-256).
            force: replace everything in a non-empty target; else it is refused with ``TargetNotEmpty``.
            jobs: parallel restore workers, where the engine can use them.
            no_owner: do not restore owners and privileges, where the engine has them (other roles).

        Returns:
            Details for the result (the tool used, workers).
        """
        raise NotImplementedError

    def check_objects(self, files: dict[str, "Path"]) -> list[str]:
        """Checks of a backup's downloaded objects of their own, before a verification restores them (SQLite:
        ``PRAGMA integrity_check``): the checks passed. Raises ``BackupCorrupt`` when one fails."""
        return []

    def inspect(self, url: "DatabaseURL", *, counts: bool = True) -> tuple[list["TableEntry"], str]:
        """The tables of a database now (with row counts unless ``counts`` is False: then -1) and its schema
        fingerprint, as a backup's manifest records them (a restore is compared with those)."""
        raise NotImplementedError

    def schema_rows(self, url: "DatabaseURL") -> list[tuple]:
        """The rows the schema fingerprint hashes, sorted (relations, columns, constraints, indexes…): what a
        release compares before and after to say which objects changed."""
        raise NotImplementedError

    def scratch_database(self, manifest: "Manifest", *, name: str, server: "DatabaseURL | None", workdir: "Path",
                         notes: list[str], own: "DatabaseURL | None" = None) -> "AbstractContextManager[DatabaseURL]":
        """A context manager yielding the URL of an empty scratch database to verify ``manifest``'s backup in,
        removed on exit.

        Args:
            name: the scratch database's name (unique per verification).
            server: the server given to verify on (None: the engine's default: an embedded server, the backup's
                own server, a file in ``workdir``).
            workdir: the verification's scratch directory (removed by the caller afterwards).
            notes: receives a line when the scratch is not the default one, saying why.
            own: the backup's own server with the credentials the backup used, when they are at hand (a
                verification right after the backup); else the manifest's record of it, without a password, is
                the engine's fallback.

        Raises:
            ScratchFull: ``workdir`` has no room for a scratch server.
            ConfigError: no server to verify on.
        """
        raise NotImplementedError
