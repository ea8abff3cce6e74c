"""Continuous batching: concurrent replies share the model's forward passes.

One step at a time runs on the compute thread: it reads the prompts of waiting replies (at
least one, more while they are short: a long prompt costs a CPU the same batched or not) and
then advances every admitted reply by one token in one forward pass. A reply joins and leaves
the batch between steps, so a short reply never waits for a long one. Each reply keeps its own
LoRA adapter in the shared batch (PEFT's mixed-adapter batches), its own
sampling settings and its own stop. Replies of different lengths share one key/value cache,
padded on the left and masked. Recent prompts' keys and values are kept (`PrefixCache`), so
what a prompt shares with an earlier one is not read again. Between steps, other compute jobs
(embedding a question, loading an adapter) take their turn.

transformers' `ContinuousBatchingManager` schedules requests the same way on paged attention,
but cannot give each request its own adapter, which every LoRA and RAG conversation needs; hence
this scheduler of our own.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from common import compute

if TYPE_CHECKING:
    from bot.model import GenerationParams, LoadedModel

BASE = "__base__"  # PEFT's adapter name for "no adapter" in a mixed-adapter batch
# Prompt tokens read in one step, beyond the first prompt: reading takes as long as a few
# steps of decoding per 100 tokens on a CPU, which every reply under way waits for.
READ_PER_STEP = 128


@dataclass(eq=False)
class Reply:
    """One reply being generated: what it reads, how it chooses tokens, where they go."""

    prompt: Any  # token ids, shape (1, n)
    params: GenerationParams
    adapter: str | None
    streamer: Any  # a TextIteratorStreamer; the prompt is put into it before submission
    stop: threading.Event
    processors: Any  # a LogitsProcessorList for this reply alone
    submitted: float = field(default_factory=time.perf_counter)
    admitted: float | None = None
    tokens: list[int] = field(default_factory=list)
    cached_tokens: int = 0  # of the prompt, taken from the prefix cache
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def queue_s(self) -> float:
        """How long the reply waited before its prompt was read."""
        return (self.admitted or time.perf_counter()) - self.submitted


class Batcher:
    """Schedules the replies of one model; every method but `submit`/`withdraw` runs on the
    compute thread, under the model's lock."""

    def __init__(self, loaded: LoadedModel, max_rows: int, prefix_cache_mb: float = 256) -> None:
        self.loaded = loaded
        self.max_rows = max_rows
        self.prefixes = PrefixCache(prefix_cache_mb * 2**20)
        self._waiting: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._scheduled = False
        # The batch: one row per reply, a cache with `pads[row]` masked positions on its left,
        # and each row's newest token, which the next step feeds in.
        self._rows: list[Reply] = []
        self._cache: Any = None
        self._pads: list[int] = []
        self._newest: list[int] = []
        self._mergeable = True  # False for caches that cannot be padded (sliding windows)
        self._eos = _eos_ids(loaded)
        self.peak_rows = 0  # the most replies that have shared one forward pass
        self.forward_passes = 0

    def submit(self, reply: Reply) -> None:
        with self._lock:
            self._waiting.append(reply)
            self._schedule()

    def withdraw(self, reply: Reply) -> bool:
        """Take `reply` out of the waiting line; False once it has been admitted."""
        with self._lock:
            if reply not in self._waiting:
                return False
            self._waiting.remove(reply)
        reply.done.set()
        return True

    @property
    def rows(self) -> int:
        return len(self._rows)

    def _schedule(self) -> None:
        """Queue the next step behind the compute jobs already waiting. Hold `_lock`."""
        if not self._scheduled and (self._waiting or self._rows):
            self._scheduled = True
            compute.enqueue(self._step)

    def _step(self) -> None:
        import torch

        try:
            with self.loaded.lock, torch.inference_mode():
                self._drop_stopped()
                self._admit()
                if self._rows:
                    self._advance()
        except BaseException as error:  # every reply in the batch is told; the next step is clean
            for reply in self._rows:
                _finish(reply, error)
            self._reset()
        finally:
            with self._lock:
                self._scheduled = False
                self._schedule()

    def _admit(self) -> None:
        """Read waiting prompts: one at least, and more while their new tokens (what the
        prefix cache did not hold) stay within `READ_PER_STEP`, so the replies under way are
        not held up for long, and short follow-ups start together."""
        read = 0
        while read < READ_PER_STEP and (tokens := self._admit_one()) is not None:
            read += tokens

    def _admit_one(self) -> int | None:
        """Admit the first waiting reply, if there is room; how many prompt tokens it read."""
        full = len(self._rows) >= (self.max_rows if self._mergeable else 1)
        with self._lock:
            if full or not self._waiting:
                return None
            reply = self._waiting.popleft()
        reply.admitted = time.perf_counter()
        if reply.stop.is_set():
            _finish(reply)
            return 0
        try:
            cache, logits = self._read_prompt(reply)
            token = _choose(reply, logits[:, -1])
        except Exception as error:  # this reply's fault (an unknown adapter); others go on
            _finish(reply, error)
            return 0
        read = reply.prompt.shape[1] - reply.cached_tokens
        if _take(reply, token, self._eos):
            _finish(reply)
        else:
            self._join(reply, token, cache)
        return read

    def _read_prompt(self, reply: Reply) -> tuple[Any, Any]:
        """The reply's prompt in a cache of its own, and the scores after it. What an earlier
        prompt with the same adapter began with is taken from the prefix cache."""
        import torch
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer

        cache = DynamicCache(config=self.loaded.model.config)
        self._mergeable = all(type(layer) is DynamicLayer for layer in cache.layers)
        prompt = reply.prompt
        known = self.prefixes.longest(reply.adapter, prompt[0]) if self._mergeable else []
        for index, (keys, values) in enumerate(known):
            cache.update(keys, values, index)
        start = reply.cached_tokens = known[0][0].shape[2] if known else 0
        positions = torch.arange(start, prompt.shape[1]).unsqueeze(0)
        mask = torch.ones_like(prompt)
        logits = self._forward(prompt[:, start:], mask, positions, cache, [reply.adapter])
        if self._mergeable:
            self.prefixes.keep(reply.adapter, prompt[0], cache)
        return cache, logits

    def _join(self, reply: Reply, token: int, cache: Any) -> None:
        """Add a reply whose prompt was just read to the batch, padding the shorter side."""
        import torch

        if not self._rows:
            self._rows, self._cache, self._pads, self._newest = [reply], cache, [0], [token]
            return
        batch_length, length = self._cache.get_seq_length(), cache.get_seq_length()
        for ours, theirs in zip(self._cache.layers, cache.layers, strict=True):
            for name in ("keys", "values"):
                old, new = getattr(ours, name), getattr(theirs, name)
                setattr(ours, name, torch.cat(_left_padded([old, new], max(batch_length, length))))
        self._pads = [pad + max(length - batch_length, 0) for pad in self._pads]
        self._pads.append(max(batch_length - length, 0))
        self._rows.append(reply)
        self._newest.append(token)

    def _advance(self) -> None:
        """One forward pass: every row's newest token in, every row's next token out."""
        import torch

        self.peak_rows = max(self.peak_rows, len(self._rows))
        if len(self._rows) == 1 and _drafts(self._rows[0]):
            self._advance_alone_with_drafts()
            return
        length = self._cache.get_seq_length()
        mask = torch.ones(len(self._rows), length + 1, dtype=torch.long)
        for row, pad in enumerate(self._pads):
            mask[row, :pad] = 0
        positions = torch.tensor([[length - pad] for pad in self._pads])
        tokens = torch.tensor([[token] for token in self._newest])
        adapters = [reply.adapter for reply in self._rows]
        logits = self._forward(tokens, mask, positions, self._cache, adapters)[:, -1]
        finished = []
        for row, reply in enumerate(self._rows):
            token = _choose(reply, logits[row : row + 1])
            self._newest[row] = token
            if _take(reply, token, self._eos):
                finished.append(row)
        self._remove(finished)

    def _advance_alone_with_drafts(self) -> None:
        """Prompt lookup decoding for a reply alone in the batch: guess the next tokens by
        copying what followed the reply's last tokens earlier in its prompt, and check every
        guess in one forward pass. Greedy output is unchanged; answers copied from passages
        come several tokens a pass."""
        import torch

        reply, pad, length = self._rows[0], self._pads[0], self._cache.get_seq_length()
        draft = _draft(reply)
        tokens = torch.tensor([[self._newest[0], *draft]])
        mask = torch.ones(1, length + tokens.shape[1], dtype=torch.long)
        mask[0, :pad] = 0
        positions = torch.arange(tokens.shape[1]).unsqueeze(0) + length - pad
        logits = self._forward(tokens, mask, positions, self._cache, [reply.adapter])[0]
        for checked in range(len(draft) + 1):
            token = _choose(reply, logits[checked : checked + 1])
            self._newest[0] = token
            if _take(reply, token, self._eos):
                self._remove([0])
                return
            if checked == len(draft) or token != draft[checked]:
                break
        wrong = len(draft) - checked  # guesses after the first miss are not the reply's
        if wrong:
            for layer in self._cache.layers:
                layer.keys, layer.values = layer.keys[:, :, :-wrong], layer.values[:, :, :-wrong]

    def _forward(
        self, tokens: Any, mask: Any, positions: Any, cache: Any, adapters: list[str | None]
    ) -> Any:
        import torch

        self.forward_passes += 1
        if mask is None:
            mask = torch.ones_like(tokens)
        inputs = dict(
            input_ids=tokens,
            attention_mask=mask,
            position_ids=positions,
            cache=cache,
            use_cache=True,
        )
        names = [adapter or BASE for adapter in adapters]
        with self.loaded.rows_with_adapters(names) as model:
            return model(**inputs).logits

    def _drop_stopped(self) -> None:
        self._remove([row for row, reply in enumerate(self._rows) if reply.stop.is_set()])

    def _remove(self, rows: list[int]) -> None:
        """Finish `rows` and take them out of the batch (and the padding nobody needs now)."""
        if not rows:
            return
        import torch

        for row in rows:
            _finish(self._rows[row])
        keep = [row for row in range(len(self._rows)) if row not in rows]
        if not keep:
            self._reset()
            return
        trim = min(self._pads[row] for row in keep)
        index = torch.tensor(keep)
        for layer in self._cache.layers:
            layer.keys = layer.keys[index, :, trim:]
            layer.values = layer.values[index, :, trim:]
        self._pads = [self._pads[row] - trim for row in keep]
        self._rows = [self._rows[row] for row in keep]
        self._newest = [self._newest[row] for row in keep]

    def _reset(self) -> None:
        self._rows, self._cache, self._pads, self._newest = [], None, [], []


class PrefixCache:
    """The keys and values of recent prompts, per adapter, under a memory cap (least recently
    used go first). A prompt that begins like one read before, as every prompt begins with its
    system prompt and a conversation's next turn with the turns before it, reads only the rest."""

    def __init__(self, max_bytes: float) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[int, tuple[str | None, Any, list[tuple[Any, Any]]]] = (
            OrderedDict()
        )
        self._bytes: dict[int, int] = {}
        self._next = 0

    def longest(self, adapter: str | None, prompt: Any) -> list[tuple[Any, Any]]:
        """Per layer, the keys and values of the longest beginning of `prompt` (token ids) read
        before with `adapter`, always leaving its last token to read; [] when none."""
        best, best_key = 0, None
        for key, (their_adapter, ids, _) in self._entries.items():
            if their_adapter != adapter:
                continue
            shared = min(len(ids), len(prompt) - 1)
            differs = (ids[:shared] != prompt[:shared]).nonzero()
            same = int(differs[0, 0]) if len(differs) else shared
            if same > best:
                best, best_key = same, key
        if best_key is None:
            return []
        self._entries.move_to_end(best_key)
        layers = self._entries[best_key][2]
        return [(keys[:, :, :best], values[:, :, :best]) for keys, values in layers]

    def keep(self, adapter: str | None, prompt: Any, cache: Any) -> None:
        """Remember `cache`, the keys and values of `prompt` just read. An entry that is a
        beginning of it goes: this one holds all it held."""
        if self.max_bytes <= 0:
            return
        for key, (their_adapter, ids, _) in list(self._entries.items()):
            within = their_adapter == adapter and len(ids) <= len(prompt)
            if within and bool((ids == prompt[: len(ids)]).all()):
                self._drop(key)
        # The cache's tensors are never changed in place (each step makes new ones), so
        # holding them is holding this prompt's keys and values.
        layers = [(layer.keys, layer.values) for layer in cache.layers]
        self._entries[self._next] = (adapter, prompt.clone(), layers)
        self._bytes[self._next] = sum(k.nbytes + v.nbytes for k, v in layers)
        self._next += 1
        while len(self._entries) > 1 and sum(self._bytes.values()) > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: int) -> None:
        del self._entries[key], self._bytes[key]

    def clear(self) -> None:
        self._entries.clear()
        self._bytes.clear()


def _left_padded(tensors: list[Any], length: int) -> list[Any]:
    """Each (rows, heads, positions, dim) tensor padded with zeros on the left to `length`."""
    import torch.nn.functional as functional

    return [functional.pad(t, (0, 0, length - t.shape[2], 0)) for t in tensors]


def _drafts(reply: Reply) -> bool:
    return reply.params.prompt_lookup > 0 and reply.params.temperature == 0


def _draft(reply: Reply, longest_match: int = 2) -> list[int]:
    """Up to `prompt_lookup` tokens that followed the first earlier occurrence of the reply's
    last tokens (the last 2, else the last one), as transformers' prompt lookup drafts."""
    ids = reply.prompt[0].tolist() + reply.tokens
    for size in range(longest_match, 0, -1):
        tail = ids[-size:]
        for start in range(len(ids) - size):
            if ids[start : start + size] == tail:
                follows = ids[start + size : start + size + reply.params.prompt_lookup]
                if follows:
                    return follows
    return []


def _choose(reply: Reply, logits: Any) -> int:
    """The reply's next token from the scores after its tokens so far (shape (1, vocab))."""
    import torch

    ids = torch.cat([reply.prompt, torch.tensor([reply.tokens], dtype=torch.long)], dim=1)
    scores = reply.processors(ids, logits.float())
    if reply.params.temperature > 0:
        return int(torch.multinomial(torch.softmax(scores, dim=-1), 1)[0, 0])
    return int(scores.argmax(dim=-1)[0])


def _take(reply: Reply, token: int, eos: set[int]) -> bool:
    """Add `token` to the reply and stream it; True when the reply is complete."""
    import torch

    if token in eos:
        return True
    reply.tokens.append(token)
    reply.streamer.put(torch.tensor([token]))
    return len(reply.tokens) >= reply.params.max_new_tokens or reply.stop.is_set()


def _finish(reply: Reply, error: BaseException | None = None) -> None:
    reply.error = error
    reply.streamer.end()
    reply.done.set()


def _eos_ids(loaded: LoadedModel) -> set[int]:
    """Tokens that end a reply: the generation config's and the tokenizer's."""
    configured = getattr(loaded.model.generation_config, "eos_token_id", None)
    ids = configured if isinstance(configured, list) else [configured]
    return {i for i in [*ids, loaded.tokenizer.eos_token_id] if i is not None}
