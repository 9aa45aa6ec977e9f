"""Work mapped over blocks of records' tokens.

A token table (the engine's `FeatureTable`, a subset of one, a worker's `TokenRange`) yields
`blocks`: (first record, token hashes, prompt-side counts, response-side counts) for runs of
consecutive records. A function of a block, `fn(first, tokens, prompt, response, *args)`, is
mapped over them here, in order; the engine's executor maps the same function over its worker
processes (`LocalExecutor.map_blocks`). Whoever maps it, results come in record order, and a
function whose result does not depend on where blocks are cut gives the same answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

BLOCK_TOKENS = 1 << 22  # tokens a block of records holds, about

BlockFn = Callable[..., Any]  # (first record, tokens, prompt counts, response counts, *args) -> a result
BlockMap = Callable[[Any, BlockFn, tuple], Iterator[Any]]  # (table, fn, args) -> fn's results, in record order


def map_blocks(table: Any, fn: BlockFn, args: tuple) -> Iterator[Any]:
    """`fn(first, tokens, prompt, response, *args)` over the `blocks` of `table`, here, in order."""
    for block in table.blocks(BLOCK_TOKENS):
        yield fn(*block, *args)


def run_blocks(source: Any, fn: BlockFn, args: tuple) -> list[Any]:
    """`map_blocks` over one run of records (in a worker process), as a list."""
    return list(map_blocks(source, fn, args))
