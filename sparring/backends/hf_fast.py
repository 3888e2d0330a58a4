"""The hf backend's fast path (`HFConfig.fast`, the default): the same samples and
scores as the plain path in hf.py (tests/backends/test_hf_paths.py checks it),
several times faster on CPU, by these means:

- a prompt head many prompts share (system prompt, rules) runs once and its keys and
  values stay in a small store, least recently used dropped first (`_head_cache`);
- a retry (the rejected prompt, the answer as the model's turn, a correction)
  reuses the keys and values of the last call's prompt and answer (`_prefixes`);
- prompts are prefilled in groups of similar length (`length_groups`), gathered
  into one preallocated decode cache (`_RoomyLayer`) that each step writes in place;
- on CPU, decoding attention is two matrix products (`_decode_attention`).

Keys and values depend on the weights: the backend calls `clear` when its weights
version changes.
"""

from __future__ import annotations

import bisect
import functools
from collections import Counter
from dataclasses import dataclass

import torch
from transformers import AttentionInterface
from transformers.cache_utils import Cache, DynamicCache, DynamicLayer
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from sparring.backends.base import GenerationRequest
from sparring.backends.hf_compat import cache_of, with_cache
from sparring.backends.padding import left_pad, positions
from sparring.backends.sampling import sample_tokens

_MIN_SHARED_PREFIX = 16  # shorter shared heads are not worth a cached forward pass
_PASS_COST = 64  # a forward pass's fixed cost, in tokens of prefill (weights read once more)
_HEADS_KEPT = 8  # prompt heads whose keys and values are kept for later calls
_DECODE_ATTENTION = "sparring_decode"  # the name `_decode_attention` is registered under


def length_groups(lengths: list[int], overhead: int = _PASS_COST, most: int | None = None) -> list[list[int]]:
    """Row indices in groups of similar length, so that padding each group to its
    longest row wastes little compute: rows sorted by length, cut where the padded
    tokens plus `overhead` tokens per group (a forward pass's fixed cost) are fewest;
    at most `most` rows a group."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    best, cut = [0] + [None] * len(order), [0] * (len(order) + 1)  # best[k]: cost of the first k rows
    for end in range(1, len(order) + 1):
        for start in range(max(0, end - most) if most else 0, end):
            cost = best[start] + overhead + (end - start) * lengths[order[end - 1]]
            if best[end] is None or cost < best[end]:
                best[end], cut[end] = cost, start
    groups, end = [], len(order)
    while end:
        groups.append(order[cut[end] : end])
        end = cut[end]
    return groups[::-1]


def _decode_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """Attention for one new token per row under an additive mask, as decoding
    runs it: each key-value head's query heads at once, in two matrix products.
    On CPU that is twice as fast as torch's fused kernel at these shapes (about
    4% of a lockstep tick). Every other call goes to sdpa."""
    batch, heads, length, dim = query.shape
    if length != 1 or dropout or attention_mask is None or attention_mask.dtype == torch.bool:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs)
    groups = key.shape[1]
    scores = torch.matmul(query.reshape(batch, groups, heads // groups, dim), key.transpose(-1, -2))
    scores = scores * (dim**-0.5 if scaling is None else scaling) + attention_mask
    weights = scores.softmax(dim=-1, dtype=torch.float32).to(value.dtype)
    return torch.matmul(weights, value).reshape(batch, 1, heads, dim), None


def use_decode_attention(model) -> None:
    """Run an sdpa model's attention through `_decode_attention` (for CPU)."""
    if model.config._attn_implementation == "sdpa":
        model.set_attn_implementation(_register_decode_attention())


@functools.cache
def _register_decode_attention() -> str:
    """Register `_decode_attention` with transformers on first use, once per process."""
    AttentionInterface.register(_DECODE_ATTENTION, _decode_attention)
    AttentionMaskInterface.register(_DECODE_ATTENTION, sdpa_mask)  # masks as for sdpa
    return _DECODE_ATTENTION


class _RoomyLayer(DynamicLayer):
    """One layer's keys and values in buffers [B, kv heads, capacity, head dim] with
    room for the tokens still to come: a decode step writes its column in place
    instead of concatenating, which copied the whole cache at every step.
    Attention reads the whole buffers (on CPU a third faster than a slice of them),
    so the caller's 4D mask hides the columns not written yet."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, length: int):
        super().__init__()
        self.dtype, self.device, self.is_initialized = keys.dtype, keys.device, True
        self.keys, self.values, self._length = keys, values, length

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        start, end = self._length, self._length + key_states.shape[-2]
        self.keys[:, :, start:end] = key_states  # fails if out of room: the caller sized it
        self.values[:, :, start:end] = value_states
        self._length = end
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self._length

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self.keys, self.values = self.keys[indices], self.values[indices]


@dataclass(frozen=True)
class _Prefix:
    """Keys and values already computed for the tokens `ids`: in row `row` of each
    layer's (keys, values) [rows, kv heads, columns, head dim], from column `start` on."""

    ids: list[int]
    layers: list[tuple[torch.Tensor, torch.Tensor]]
    row: int = 0
    start: int = 0


class FastPath:
    """Generation and scoring that reuse keys and values across calls. Holds those
    keys and values; the model is passed to each call, since its owner may swap it."""

    def __init__(self, pad_id: int, device: str, max_batch: int):
        self.pad_id, self.device, self.max_batch = pad_id, device, max_batch
        self.tokens_prefilled = 0
        """Prompt tokens run through the model for generation, past each prompt's reused head."""
        self.tokens_reused = 0
        """Prompt tokens whose keys and values came from a cached head (run once for
        all prompts under it) or from a prompt and answer of the last call."""
        self.clear()

    def clear(self) -> None:
        """Drop every key and value kept (they belong to the weights they were computed under)."""
        self._prefix_ids: list[int] = []  # the head shared by recent prompts
        self._last_prompt: list[int] = []
        self._head_caches: dict[tuple[int, ...], _Prefix] = {}  # keys and values per head, least recently used first
        self._rows_before: list[_Prefix] = []  # prompts and answers of the last generate call
        self._rows_now: list[_Prefix] = []  # of this one

    # ---- generation --------------------------------------------------------------

    def generate(self, model, prompts: list[list[int]], requests: list[GenerationRequest],
                 stop_ids: set[int]) -> list[tuple[list[int], list[float]]]:
        """Per request, the sampled token ids and their log-probs, `max_batch` rows at a time."""
        # The last call's prompts and answers stay at hand during this one; then this call's, for the next.
        self._rows_before, self._rows_now = self._rows_now, []
        out: list[tuple[list[int], list[float]]] = []
        for start in range(0, len(requests), self.max_batch):
            end = start + self.max_batch
            out.extend(self._generate_batch(model, prompts[start:end], requests[start:end], stop_ids))
        self._rows_before = []
        return out

    @torch.no_grad()
    def _generate_batch(self, model, prompts: list[list[int]], requests: list[GenerationRequest],
                        stop_ids: set[int]) -> list[tuple[list[int], list[float]]]:
        sampled: list[list[int]] = [[] for _ in requests]
        logprobs: list[list[float]] = [[] for _ in requests]
        # One generator per request: a request's sample does not depend on its batch.
        generators = [torch.Generator().manual_seed(r.seed) for r in requests]
        active = [i for i, r in enumerate(requests) if r.max_new_tokens > 0]  # rows still sampling
        if active:
            room = max(requests[i].max_new_tokens for i in active)
            cache, mask, next_position, logits = self._prefill(model, [prompts[i] for i in active], room)
            width = cache.get_seq_length()  # every prompt ends here; answers go on from it
        while active:
            tokens, token_logprobs = sample_tokens(logits, [requests[i] for i in active], [generators[i] for i in active])
            keep = []
            for row, i in enumerate(active):
                sampled[i].append(tokens[row])
                logprobs[i].append(token_logprobs[row])
                if tokens[row] not in stop_ids and len(sampled[i]) < requests[i].max_new_tokens:
                    keep.append(row)
            if len(keep) < len(active):  # finished rows are kept for the next call, then leave the batch
                self._keep_finished(cache, width, [prompts[i] for i in active], [sampled[i] for i in active], keep)
                if not keep:
                    break
                rows = torch.tensor(keep, device=self.device)
                cache.batch_select_indices(rows)
                mask, next_position = mask[rows], next_position[rows]
                active, tokens = [active[r] for r in keep], [tokens[r] for r in keep]
            step = torch.tensor(tokens, device=self.device).unsqueeze(1)  # [R, 1]
            mask[:, :, :, cache.get_seq_length()] = 0  # the column this token's keys go to
            output = model(input_ids=step, attention_mask=mask, position_ids=next_position,
                           **with_cache(model, cache), use_cache=True)
            cache, next_position = cache_of(model, output), next_position + 1
            logits = output.logits[:, -1, :].float().cpu()
        return list(zip(sampled, logprobs))

    def _keep_finished(self, cache: Cache, width: int, prompts: list[list[int]],
                       sampled: list[list[int]], keep: list[int]) -> None:
        """Keep the keys and values of the batch's rows not in `keep` (prompt and
        answer; the prompts end at column `width`) for the next call, where a retry
        goes on from them."""
        done = [row for row in range(len(prompts)) if row not in keep]
        layers = [(layer.keys, layer.values) for layer in cache.layers]
        if keep:  # the buffers are about to be compacted: copy the finished rows out first
            index = torch.tensor(done, device=self.device)
            layers = [(keys[index], values[index]) for keys, values in layers]
        for at, row in enumerate(done):
            # The last sampled token was never run, so it has no keys and values.
            self._rows_now.append(_Prefix(prompts[row] + sampled[row][:-1], layers, at, width - len(prompts[row])))

    def _prefill(self, model, prompts: list[list[int]], room: int):
        """Run the prompts for generation; return (cache with room for `room` more
        tokens per row, additive attention mask over all its columns [B, 1, 1, W + room],
        next positions [B, 1], last logits [B, V]).

        Each row runs only what follows the longest head of it whose keys and values
        are at hand (`_prefixes`), in groups of similar length; each group's keys and
        values are gathered into the last columns of one cache for batched decoding.
        """
        batch = len(prompts)
        prefixes = self._prefixes(model, prompts, [len(p) - 1 for p in prompts], recent=True)
        runs = []  # (rows, model output, attention mask)
        for group in self._groups(prompts, prefixes):
            output, _, group_mask = self._forward(model, [prompts[i] for i in group], [prefixes[i] for i in group], keep=1)
            runs.append((group, output, group_mask))
        width = max(len(p) for p in prompts)
        logits = torch.empty((batch, model.config.vocab_size))
        buffers: list[tuple[torch.Tensor, torch.Tensor]] = []
        for rows, output, group_mask in runs:
            logits[rows] = output.logits[:, -1, :].float().cpu()
            # Each row's tokens, gapped in the group (its prefix right-aligned, then its
            # left-padded tail), gathered into the last columns: a stable sort of the
            # mask lists a row's pad columns first, then its tokens in order.
            columns = group_mask.sort(dim=1, stable=True).indices
            columns = torch.cat([columns.new_zeros((len(rows), max(0, width - columns.shape[1]))), columns], dim=1)[:, -width:]
            index = torch.tensor(rows, device=self.device)
            for layer_index, layer in enumerate(cache_of(model, output).layers):
                kv_heads, head_dim = layer.keys.shape[1], layer.keys.shape[3]
                if len(buffers) <= layer_index:  # [B, kv heads, width + room, head dim]
                    size = (batch, kv_heads, width + room, head_dim)
                    buffers.append((layer.keys.new_zeros(size), layer.values.new_zeros(size)))
                gather = columns[:, None, :, None].expand(-1, kv_heads, -1, head_dim)
                keys, values = buffers[layer_index]
                keys[index, :, :width] = layer.keys.gather(2, gather)
                values[index, :, :width] = layer.values.gather(2, gather)
        # A 4D mask goes to attention as it is; pads on the left hold stray keys, masked.
        dtype = buffers[0][0].dtype
        mask = torch.full((batch, 1, 1, width + room), torch.finfo(dtype).min, dtype=dtype, device=self.device)
        for i, prompt in enumerate(prompts):
            mask[i, :, :, width - len(prompt) : width] = 0
        reused = sum(length for _, length in prefixes)
        self.tokens_reused += reused
        self.tokens_prefilled += sum(len(p) for p in prompts) - reused
        cache = Cache(layers=[_RoomyLayer(keys, values, width) for keys, values in buffers])
        next_position = torch.tensor([[len(p)] for p in prompts], device=self.device)
        return cache, mask, next_position, logits

    def _forward(self, model, rows: list[list[int]], prefixes: list[tuple[_Prefix | None, int]], keep: int):
        """One forward pass over `rows`, each after its prefix's keys and values
        (its first `length` tokens); return (the model output with the logits of the
        last `keep` positions, the left-padded ids run [B, T], the attention mask
        over prefixes and those ids [B, P + T])."""
        ids, tail_mask = left_pad([row[length:] for row, (_, length) in zip(rows, prefixes)], self.pad_id, self.device)
        prefix_width = max(length for _, length in prefixes)
        if prefix_width:
            cache = DynamicCache(ddp_cache_data=_batch_prefixes(prefixes, prefix_width))
            head_mask = torch.zeros((len(rows), prefix_width), dtype=torch.long, device=ids.device)
            for row, (_, length) in enumerate(prefixes):
                head_mask[row, prefix_width - length :] = 1
            mask = torch.cat([head_mask, tail_mask], dim=1)
        else:
            cache, mask = None, tail_mask
        lengths = torch.tensor([[length] for _, length in prefixes], device=ids.device)
        output = model(input_ids=ids, attention_mask=mask, position_ids=lengths + positions(tail_mask),
                       **with_cache(model, cache), use_cache=True, logits_to_keep=keep)
        return output, ids, mask

    # ---- scoring -----------------------------------------------------------------

    @torch.no_grad()
    def score(self, model, rows: list[tuple[list[int], list[int]]]) -> list[list[float]]:
        """Per (prompt ids, option ids) row, each option token's log-prob after the prompt."""
        # A row's head stops before its prompt ends, so its tail holds the position
        # that predicts the option's first token.
        full = [prompt + option for prompt, option in rows]
        spans = [len(option) for _, option in rows]
        scored: list[list[float]] = [[] for _ in rows]
        prefixes = self._prefixes(model, full, [len(p) - 1 for p, _ in rows], recent=False)
        for group in self._groups(full, prefixes, most=self.max_batch):
            # Options sit at the end of left-padded rows: only the last `keep` positions
            # predict option tokens, so the vocabulary projection runs on those alone.
            keep = max(spans[i] for i in group) + 1
            output, ids, _ = self._forward(model, [full[i] for i in group], [prefixes[i] for i in group], keep=keep)
            logp = torch.log_softmax(output.logits.float().cpu()[:, :-1], dim=-1)  # position t predicts token t+1
            targets = (ids[:, -(keep - 1):] if keep > 1 else ids[:, :0]).cpu()
            token_logp = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # [G, keep-1]
            for row, i in enumerate(group):
                scored[i] = token_logp[row, token_logp.shape[1] - spans[i] :].tolist() if spans[i] else []
        return scored

    # ---- keys and values at hand -------------------------------------------------

    def _groups(self, sequences: list[list[int]], prefixes: list[tuple[_Prefix | None, int]],
                most: int | None = None) -> list[list[int]]:
        """Row indices in groups for forward passes: rows under one head together (its
        keys and values are then broadcast, not gathered row by row), the others in
        one pool; then by length."""
        heads = [(id(prefix), length) for prefix, length in prefixes]
        rows_under = Counter(heads)
        by_head: dict[tuple[int, int] | None, list[int]] = {}
        for i, head in enumerate(heads):
            by_head.setdefault(head if rows_under[head] > 1 else None, []).append(i)
        return [[members[g] for g in group]
                for members in by_head.values()
                for group in length_groups([len(sequences[i]) - prefixes[i][1] for i in members], most=most)]

    def _prefixes(self, model, prompts: list[list[int]], limits: list[int],
                  recent: bool) -> list[tuple[_Prefix | None, int]]:
        """Per row, keys and values at hand for a head of its prompt, and how long that
        head is (at most `limits[i]`): a cached head (`_head_groups`), or with
        `recent`, a longer head shared with a prompt and answer of the last generate call."""
        chosen: list[tuple[_Prefix | None, int]] = [(None, 0)] * len(prompts)
        for head, rows in self._head_groups(prompts, limits):
            if head:
                prefix = self._head_cache(model, head)
                for i in rows:
                    chosen[i] = (prefix, len(head))
        if recent:
            # In sorted order, the kept prompt sharing the longest head with a prompt is
            # one of the two next to where that prompt would be inserted.
            kept = sorted(self._rows_before + self._rows_now, key=lambda row: row.ids)
            for i, prompt in enumerate(prompts):
                at = bisect.bisect_left(kept, prompt, key=lambda row: row.ids)
                for neighbour in kept[max(0, at - 1) : at + 1]:
                    common = min(limits[i], _common_length(prompt, neighbour.ids))
                    if common > chosen[i][1]:
                        chosen[i] = (neighbour, common)
        return chosen

    def _head_groups(self, prompts: list[list[int]], limits: list[int]) -> list[tuple[list[int], list[int]]]:
        """Rows grouped by the head whose keys and values they share: [(head, rows)].

        Prompts of one game share a long head (system prompt, rules; `_shared_prefix`)
        whose keys and values are kept for later calls, so only the rows' own parts are run.
        Below it, rows that go on alike (the same seat of the same game, or one game
        of several) share a longer head, run once for the group when the tokens it
        saves outweigh a forward pass. Row i's head is at most `limits[i]` long.
        """
        root = self._shared_prefix(prompts, min(limits))
        branches: dict[int | None, list[int]] = {}
        for i, prompt in enumerate(prompts):
            branches.setdefault(prompt[len(root)] if limits[i] > len(root) else None, []).append(i)
        groups = []
        for token, rows in branches.items():
            head = root
            if token is not None and len(rows) > 1:
                length = min(min(limits[i] for i in rows), *(_common_length(prompts[rows[0]], prompts[i]) for i in rows[1:]))
                if (len(rows) - 1) * (length - len(root)) > _PASS_COST:
                    head = prompts[rows[0]][:length]
            groups.append((head, rows))
        return groups

    def _head_cache(self, model, head: list[int]) -> _Prefix:
        """Keys and values of `head`, kept while among the few most recently used.
        A head below the shared head is run on top of it."""
        key = tuple(head)
        if key in self._head_caches:
            prefix = self._head_caches.pop(key)
        else:
            base = self._prefix_ids if len(head) > len(self._prefix_ids) and head[: len(self._prefix_ids)] == self._prefix_ids else []
            cache = DynamicCache(ddp_cache_data=self._head_cache(model, base).layers) if base else None
            ids = torch.tensor([head[len(base) :]], device=self.device)
            position = torch.arange(len(base), len(head), device=self.device).unsqueeze(0)
            cache = cache_of(model, model(input_ids=ids, position_ids=position, **with_cache(model, cache),
                                          use_cache=True, logits_to_keep=1))
            prefix = _Prefix(list(head), [(layer.keys, layer.values) for layer in cache.layers])
            if len(self._head_caches) >= _HEADS_KEPT:  # drop the least recently used, never the shared head
                shared = tuple(self._prefix_ids)
                self._head_caches.pop(next(h for h in self._head_caches if h != shared))
        self._head_caches[key] = prefix  # now the most recently used
        return prefix

    def _shared_prefix(self, prompts: list[list[int]], limit: int) -> list[int]:
        """The current shared head if every prompt starts with it; else a new one
        common to these prompts and the previous call's; else []. The head is at most
        `limit` long (callers' limits leave each prompt at least one token)."""
        head = self._prefix_ids
        if head and len(head) <= limit and all(p[: len(head)] == head for p in prompts):
            return head
        references = prompts[1:] + ([self._last_prompt] if self._last_prompt else [])
        self._last_prompt = prompts[0]
        length = min([limit] + [_common_length(prompts[0], r) for r in references])
        if not references or length < _MIN_SHARED_PREFIX:
            return []
        self._prefix_ids = prompts[0][:length]
        return self._prefix_ids


def _batch_prefixes(prefixes: list[tuple[_Prefix | None, int]], width: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per layer, (keys, values) [rows, kv heads, width, head dim] of each row's
    prefix, right-aligned. One prefix under every row is broadcast, not gathered row by row."""
    first, length = prefixes[0]
    if first is not None and all(p is first and n == length for p, n in prefixes):
        row, columns = slice(first.row, first.row + 1), slice(first.start, first.start + length)
        return [(keys[row, :, columns].expand(len(prefixes), -1, -1, -1), values[row, :, columns].expand(len(prefixes), -1, -1, -1))
                for keys, values in first.layers]
    reference = next(prefix for prefix, _ in prefixes if prefix is not None)
    batched = [(keys.new_zeros((len(prefixes), keys.shape[1], width, keys.shape[3])),
                values.new_zeros((len(prefixes), values.shape[1], width, values.shape[3])))
               for keys, values in reference.layers]
    for row, (prefix, length) in enumerate(prefixes):
        if length:
            columns = slice(prefix.start, prefix.start + length)
            for (keys, values), (row_keys, row_values) in zip(prefix.layers, batched):
                row_keys[row, :, width - length :] = keys[prefix.row, :, columns]
                row_values[row, :, width - length :] = values[prefix.row, :, columns]
    return batched


def _common_length(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n
