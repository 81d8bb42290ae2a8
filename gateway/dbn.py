"""DBN (version 3) stream encoding: a Metadata header, the records, optional zstd.

The header is encoded by databento_dbn so the client's ``DBNStore`` reads it exactly as it
reads DataBento's own answers, including the symbol mappings that ``to_df`` uses to fill the
``symbol`` column. Records arrive already encoded (numpy bytes or ``bytes(msg)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import databento_dbn as dbn
import zstandard
from databento_dbn import metadata as dbn_metadata

from gateway import DATASET

DBN_VERSION = 3


@dataclass
class MappingInterval:
    """One interval of a symbol mapping; satisfies databento_dbn's ``MappingInterval``."""

    start_date: date
    end_date: date
    symbol: str


@dataclass
class SymbolMapping:
    """Mappings of one raw symbol; satisfies databento_dbn's ``SymbolMapping`` protocol."""

    raw_symbol: str
    intervals: Sequence[dbn_metadata.MappingInterval] = field(default_factory=list)


def encode_stream(
    *,
    schema: dbn.Schema,
    start_ns: int,
    end_ns: int,
    symbols: list[str],
    mappings: list[SymbolMapping],
    not_found: list[str],
    records: bytes,
    compression: str,
    limit: int | None = None,
) -> bytes:
    """Return a whole DBN stream (header + ``records``), zstd-compressed if asked.

    ``compression`` is ``"zstd"`` or ``"none"``; the client detects either by magic bytes.
    """
    metadata = dbn.Metadata(
        dataset=DATASET,
        start=start_ns,
        end=end_ns,
        stype_in=dbn.SType.from_str("raw_symbol"),
        stype_out=dbn.SType.from_str("instrument_id"),
        schema=schema,
        symbols=symbols,
        partial=[],
        not_found=not_found,
        mappings=mappings,
        limit=limit,
        version=DBN_VERSION,
    )
    payload = bytes(metadata.encode()) + records
    if compression == "zstd":
        return zstandard.ZstdCompressor().compress(payload)
    return payload
