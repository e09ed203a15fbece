"""The jammi catalog inside datafusion-python (SPEC §12).

``JammiCatalog`` is a DataFusion catalog provider: register it in a ``SessionContext``
and its tables (``models``, ``training_jobs``, ``eval_runs``, ``result_tables``,
``model_aliases``, ``model_tags``, ``events``) join your DataFrames, Parquet files and pandas data in-process, filtered to the
catalog's tenant (and global rows), with filters pushed down to the database.

What DataFusion 55's FFI cannot carry into your session is done in the catalog's own
session instead: ``execute(sql, ctx)`` runs one statement there, with every SQL rule of
the catalog, reading the tables of ``ctx`` that the statement names. That is the way to
write: ``INSERT``, ``DELETE``, ``register_model(...)``, ``delete_model(...)``,
``set_model_alias(...)`` and ``set_model_tag(...)`` are refused in your session, before
anything runs, with a message that says so. The time-travel table functions
(``models_as_of``, ``model_aliases_as_of``) run there too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ._native import CatalogError, NativeCatalog

if TYPE_CHECKING:
    from datafusion import SessionContext

__all__ = ["CatalogError", "CatalogFunction", "JammiCatalog"]


class CatalogFunction:
    """One of the catalog's writing functions, for ``ctx.register_udf(udf(f))``.

    Registered in your session it plans under its real name and refuses to run: DataFusion
    55 carries no async function and no analyzer rule over its FFI, so the catalog could
    not keep the call to exactly the rows the statement selects. Use
    ``JammiCatalog.execute``.
    """

    def __init__(self, name: str, capsule: Any) -> None:
        self.name = name
        self._capsule = capsule

    def __datafusion_scalar_udf__(self) -> Any:
        return self._capsule

    def __repr__(self) -> str:
        return f"CatalogFunction({self.name})"


class JammiCatalog:
    """A jammi catalog for datafusion-python.

    Args:
        url: ``sqlite://path/jammi.db`` (created if missing), ``sqlite::memory:`` or
            ``postgres://…``; the database is migrated on open.
        tenant: the tenant id (a UUID) to act for, or ``None`` for global rows only.
        access: what ``execute`` may do: ``"read"`` (queries only), ``"write"`` (also
            register models, ``INSERT``, aliases, tags, training jobs, eval runs) or
            ``"admin"`` (also delete; the default). A statement that needs more raises
            ``CatalogError`` before anything runs.

    Raises:
        CatalogError: a bad tenant id or access level, an unknown scheme, an unreachable
            database.
    """

    def __init__(self, url: str, tenant: str | None = None, access: str = "admin") -> None:
        self._native = NativeCatalog(url, tenant, access)

    def __datafusion_catalog_provider__(self, codec: Any) -> Any:
        """The FFI capsule ``SessionContext.register_catalog_provider`` loads."""
        return self._native.catalog_provider(codec)

    def functions(self) -> list[CatalogFunction]:
        """The catalog's writing functions (``register_model``, ``delete_model``,
        ``set_model_alias``, ``set_model_tag``), for ``ctx.register_udf(udf(f))``."""
        return [CatalogFunction(name, capsule) for name, capsule in self._native.functions()]

    def execute(self, sql: str, ctx: SessionContext | None = None) -> pa.Table:
        """Runs one statement in the catalog's own session and returns its result.

        Every rule of the catalog's SQL holds there (the same as in Rust and in ``jammi``):
        ``DELETE FROM jammi.public.models`` checks references, the catalog functions run
        only where they act on exactly the selected rows, ``INSERT`` keeps integers exact.
        Catalog tables are named ``jammi.public.<table>``. Any other table the statement
        names is read, whole, from ``ctx``. DDL and ``SET`` are refused.

        Raises:
            CatalogError: the statement failed or was refused; nothing was written.
        """
        tables = []
        for name in self._native.table_references(sql):
            if ctx is not None and ctx.table_exist(name):
                tables.append((name, _to_ipc(ctx.table(name).to_arrow_table())))
        return pa.ipc.open_stream(self._native.execute(sql, tables)).read_all()


def _to_ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()
