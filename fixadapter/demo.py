"""`fixadapter demo`: the CSERVER simulator in its own process and the adapter trading against it over
real sockets, on embedded defaults (SQLite in the work directory; no servers needed).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from decimal import Decimal
from pathlib import Path

from fixadapter.api import Adapter
from fixadapter.config import build_config
from fixadapter.errors import OrderRejected
from fixadapter.model.requests import NewOrder, ReplaceOrder
from fixadapter.sim.process import SimProcess
from fixadapter.watch import describe


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


async def _trade(adapter: Adapter) -> None:
    say("market buy 10,000 EURUSD (opens a hedged position)")
    bought = await adapter.wait_for(
        (
            await adapter.submit(
                NewOrder(symbol="EURUSD", side="buy", order_type="market", quantity=10000, label="demo")
            )
        ).cl_ord_id
    )
    say("limit buy 20,000 EURUSD far below the market: rests, is replaced, then cancelled")
    resting = await adapter.submit(
        NewOrder(symbol="EURUSD", side="buy", order_type="limit", quantity=20000, price=Decimal("1.00000"))
    )
    await adapter.wait_for(resting.cl_ord_id, "new")
    await adapter.replace(ReplaceOrder(cl_ord_id=resting.cl_ord_id, quantity=25000, price=Decimal("1.00100")))
    await adapter.wait_for(resting.cl_ord_id, "new")
    await adapter.cancel(resting.cl_ord_id)
    await adapter.wait_for(resting.cl_ord_id)
    say(f"sell 4,000 EURUSD against position {bought.position_id} (a partial close)")
    await adapter.wait_for(
        (
            await adapter.submit(
                NewOrder(
                    symbol="EURUSD",
                    side="sell",
                    order_type="market",
                    quantity=4000,
                    position_id=bought.position_id,
                )
            )
        ).cl_ord_id
    )
    say("cancel an order the venue never had: the venue's reason comes back")
    try:
        await adapter.cancel("demo-unknown-1")
    except OrderRejected as refused:
        print(f"refused: {refused}")


async def _market(adapter: Adapter) -> None:
    say("EURUSD depth over QUOTE: the book the adapter builds from W and X")
    await adapter.subscribe("EURUSD", depth=True)
    await asyncio.sleep(1.0)
    book = adapter.book("EURUSD")
    if book is None:
        return
    for bid, ask in zip(book.bids[:3], book.asks[:3], strict=False):
        print(f"  {bid.size:>10} {bid.price}  |  {ask.price} {ask.size:<10}")
    print(
        f"  mid {book.mid}  spread {book.spread_pips} pips  imbalance {book.imbalance:+.2f}  "
        f"microprice {book.microprice}  ({book.updates} updates applied)",
        flush=True,
    )


async def run_demo(workdir: Path) -> int:
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    print(f"starting the CSERVER simulator (logs in {workdir}) ...", flush=True)
    sim = SimProcess(state_path=workdir / "venue.sqlite", log_path=workdir / "simulator.log").start()
    started = time.monotonic()
    try:
        config = build_config(
            {
                "account": sim.adapter_settings(),
                "store": {"url": f"sqlite:///{workdir / 'fixadapter.db'}"},
            }
        )
        async with Adapter(config) as adapter:
            adapter.on_event(lambda event: print("  " + describe(event), flush=True))
            print(
                f"logging on QUOTE {sim.quote_port} and TRADE {sim.trade_port}, reconciling ...", flush=True
            )
            await adapter.wait_ready(30)
            print(f"ready: {len(adapter.instruments())} instruments from the SecurityList", flush=True)
            await _market(adapter)
            await _trade(adapter)
            await adapter.wait_ready()
            say("positions, as the venue reports them")
            for position in await adapter.positions(refresh=True):
                side = position.side.value
                print(f"  {position.position_id}  {side:<5} {position.quantity} @ {position.entry_price}")
            orders = await adapter.orders()
            print(
                f"\n{len(orders)} orders in {workdir / 'fixadapter.db'}; "
                f"done in {time.monotonic() - started:.1f}s"
            )
    finally:
        sim.stop()
    return 0
