"""Instrument definition records (DataBento's ``definition`` schema) for futures contracts.

LumiBot asks for a contract's definition to learn its multiplier (``unit_of_measure_qty``) and,
for dated futures without one, its ``expiration``. The record is built with databento_dbn itself
(a few per request, so speed does not matter and exact field layout comes for free).
"""

from __future__ import annotations

import databento_dbn as dbn

from gateway.bars import PUBLISHER_GLBX
from gateway.contracts import PRICE_SCALE, Contract


def definition_record(contract: Contract, ts_ns: int) -> bytes:
    """One ``InstrumentDefMsg`` for ``contract`` published at ``ts_ns``, as DBN record bytes.

    Prices and the multiplier are fixed-point (times 1e9), as DBN stores them; databento's
    ``to_df`` turns them back into floats (MES ``unit_of_measure_qty`` reads 5.0).
    """
    spec = contract.spec
    record = dbn.InstrumentDefMsg(
        publisher_id=PUBLISHER_GLBX,
        instrument_id=contract.instrument_id,
        ts_event=ts_ns,
        ts_recv=ts_ns,
        min_price_increment=round(spec.tick * PRICE_SCALE),
        display_factor=PRICE_SCALE,
        raw_symbol=contract.raw_symbol,
        asset=contract.root,
        security_type="FUT",
        instrument_class=dbn.InstrumentClass.from_str("F"),  # FUTURE; the stub types members as str
        security_update_action=dbn.SecurityUpdateAction.from_str("A"),  # ADD
        expiration=contract.expiration_ns,
        unit_of_measure_qty=round(spec.multiplier * PRICE_SCALE),
        min_price_increment_amount=round(spec.tick * spec.multiplier * PRICE_SCALE),
        maturity_year=contract.year,
        maturity_month=contract.month,
        currency="USD",
        settl_currency="USD",
        exchange=spec.exchange,
        group=contract.root[:21],
        cfi="FFICSX",
        unit_of_measure="IPNT",
        min_lot_size_round_lot=1,
        min_trade_vol=1,
        max_trade_vol=10_000,
    )
    return bytes(record)
