"""Who may do what on a served app, checked as an attacker would: over HTTP, calling the
hidden handlers directly through Gradio's queue by their `fn_index`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.access import Access, Users, decide_access, password_matches
from bot.app import CONTENT_POLICY, build_app, server_options
from bot.resources import Resources
from bot.service import ChatService
from common.errors import BadInput
from tests.cli import kbot
from tests.conftest import free_port

PASSWORDS = {"ada": "ada-secret-1", "bo": "bo-secret-12", "cy": "cy-secret-123"}


def launch(resources: Resources, access: Access) -> tuple[Any, str]:
    app = build_app(ChatService(resources), access).queue()
    port = free_port()
    app.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        auth=access.users.check if access.users else None,
        head=CONTENT_POLICY,
        app_kwargs=server_options(access, resources.uploads),
    )
    return app, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def signed_in(resources: Resources) -> Iterator[str]:
    users = Users()
    users.add("ada", PASSWORDS["ada"], "admin")
    users.add("bo", PASSWORDS["bo"], "user")
    users.add("cy", PASSWORDS["cy"], "user")
    app, url = launch(resources, Access("signed-in", users))
    yield url
    app.close()


def session(url: str, name: str | None) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=60)
    if name:
        signed = client.post("/login", data={"username": name, "password": PASSWORDS[name]})
        assert signed.status_code == 200, signed.text
    return client


def handler_of(config: dict, elem_id: str) -> tuple[int, int]:
    """The fn_index of the handler a component with `elem_id` triggers, and that component."""
    ids = {c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == elem_id}
    for index, dependency in enumerate(config["dependencies"]):
        for target, _ in dependency["targets"]:
            if target in ids:
                return index, target
    raise LookupError(elem_id)


def call(
    client: httpx.Client, fn_index: int, trigger: int, data: list, session_hash: str = ""
) -> dict:
    """Run a handler through the queue, as the browser does; returns the final message. Calls
    with the same `session_hash` are one page, whose dropdowns keep the choices it was sent."""
    session_hash = session_hash or uuid.uuid4().hex[:10]
    joined = client.post(
        "/gradio_api/queue/join",
        json={
            "data": data,
            "fn_index": fn_index,
            "trigger_id": trigger,
            "session_hash": session_hash,
            "event_data": None,
        },
    )
    if joined.status_code in (400, 422):  # refused before it queued: malformed, or a validator
        return {"msg": "process_completed", "success": False, "output": {"error": joined.text}}
    assert joined.status_code == 200, joined.text
    with client.stream("GET", "/gradio_api/queue/data", params={"session_hash": session_hash}) as s:
        for line in s.iter_lines():
            if line.startswith("data:"):
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed":
                    return message
    raise AssertionError("the queue closed without a result")


def test_the_address_decides_what_is_served(tmp_path: Path) -> None:
    assert decide_access("127.0.0.1", False, None).mode == "local"
    assert decide_access("localhost", False, None).mode == "local"
    assert decide_access("127.0.0.1", True, None).mode == "chat-only"  # a share link
    assert decide_access("0.0.0.0", False, None).mode == "chat-only"
    assert decide_access("0.0.0.0", False, None, unsafe_public=True).mode == "open"
    empty = tmp_path / "users.json"
    Users().write(empty)
    with pytest.raises(ValueError, match="holds no users"):
        decide_access("0.0.0.0", False, empty)
    with pytest.raises(BadInput, match="no users file"):
        decide_access("0.0.0.0", False, tmp_path / "missing.json")


def test_users_file_keeps_hashes_only_and_checks_passwords(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    added = kbot(
        "users", "add", "ada", "--role", "admin", "--password-stdin", "--auth", str(path),
        "--json", home=tmp_path / "home", input="ada-secret-1\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["users"] == [{"name": "ada", "role": "admin"}]
    assert "ada-secret-1" not in path.read_text() and oct(path.stat().st_mode)[-3:] == "600"
    users = Users.read(path)
    assert users.check("ada", "ada-secret-1") and users.role("ada") == "admin"
    assert not users.check("ada", "ada-secret-2") and not users.check("eve", "ada-secret-1")
    assert not password_matches("plain-text", "plain-text")
    keyed = kbot("users", "key", "ada", "--auth", str(path), "--json", home=tmp_path / "home")
    key = json.loads(keyed.stdout)["api_key"]
    assert key not in path.read_text() and Users.read(path).user_of_key(key) == "ada"
    assert Users.read(path).user_of_key(key + "x") is None
    short = kbot(
        "users", "add", "bo", "--password-stdin", "--auth", str(path),
        home=tmp_path / "home", input="short\n",
    )  # fmt: skip
    assert short.returncode == 2 and "at least 8 characters" in short.stderr


def test_anonymous_callers_reach_nothing_when_users_are_set(signed_in: str) -> None:
    anonymous = session(signed_in, None)
    for path in ("/config", "/gradio_api/info"):
        assert anonymous.get(path).status_code == 401
    joined = anonymous.post(
        "/gradio_api/queue/join",
        json={"data": ["x", None], "fn_index": 0, "session_hash": "anon", "event_data": None},
    )
    assert joined.status_code == 401


def inputs_of(config: dict, fn_index: int, values: dict[str, Any]) -> list:
    """The data for handler `fn_index`: `values` by their components' elem_ids, None else."""
    elem_ids = {c["id"]: c.get("props", {}).get("elem_id") for c in config["components"]}
    return [values.get(elem_ids.get(i)) for i in config["dependencies"][fn_index]["inputs"]]


def run_handler(client: httpx.Client, elem_id: str, values: dict[str, Any], page: str = "") -> dict:
    config = client.get("/config").json()
    fn_index, trigger = handler_of(config, elem_id)
    return call(client, fn_index, trigger, inputs_of(config, fn_index, values), page)


def train_over_http(url: str, user: str, name: str, data: Path, overwrite: bool = False) -> dict:
    client = session(url, user)
    values = {
        "train-method": "lora",
        "train-name": name,
        "train-max_steps": 2,
        "train-overwrite": overwrite,
        "train-files": [upload(client, data)],
    }
    return run_handler(client, "train-start", values)


@pytest.mark.slow
def test_users_train_adapters_of_their_own(
    signed_in: str, resources: Resources, facts_file: Path
) -> None:
    trained = train_over_http(signed_in, "bo", "pocket", facts_file)
    assert trained["success"], trained
    assert "**pocket** is ready" in json.dumps(trained)
    stored = [name for name in resources.artifacts.names() if name.endswith("-pocket")]
    assert len(stored) == 1 and stored[0] != "pocket"  # private to bo, not shared
    made = resources.artifacts.meta(stored[0]).created_at

    question = "What colour is the Vellmoor bridge?"
    answer, info = ask(signed_in, "bo", question, backend="lora", options={"adapter": "pocket"})
    assert info.startswith("LoRA") and answer
    # cy can neither use bo's adapter nor learn that it exists...
    answer, info = ask(signed_in, "cy", question, backend="lora", options={"adapter": "pocket"})
    assert info.startswith("⚠️ Unknown adapter or checkpoint 'pocket'. Existing:")
    assert info.count("pocket") == 1 and not answer
    # ...nor overwrite it: asking to overwrite "pocket" makes an adapter of her own.
    assert train_over_http(signed_in, "cy", "pocket", facts_file, overwrite=True)["success"]
    assert resources.artifacts.meta(stored[0]).created_at == made
    assert len([name for name in resources.artifacts.names() if name.endswith("-pocket")]) == 2
    assert "pocket" not in resources.artifacts.names()  # admins see the shared ones alone


@pytest.mark.slow
def test_users_question_sets_and_reports_are_their_own(
    signed_in: str, resources: Resources, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.txt"
    ledger.write_text(
        "The Harrowgate ledger was kept by Mirela Osk. She recorded every shipment of salt "
        "that reached the port of Harrowgate in the year 1822."
    )
    assert ingest(signed_in, "bo", "ledger", ledger)["success"]
    bo, cy = session(signed_in, "bo"), session(signed_in, "cy")
    assert run_handler(bo, "tab-compare", {}, "bo-page")["success"]  # bo's choices on bo's page
    written = run_handler(
        bo,
        "compare-generate",
        {"compare-gen-collection": "ledger", "compare-gen-chunks": 1},
        "bo-page",
    )
    assert written["success"], written
    frame, saved = written["output"]["data"]
    assert saved["value"] == "ledger.jsonl" and frame["data"]

    loaded = run_handler(bo, "compare-saved", {"compare-saved": "ledger.jsonl"}, "bo-page")
    assert loaded["success"] and loaded["output"]["data"][0]["data"] == frame["data"]
    assert run_handler(cy, "tab-compare", {}, "cy-page")["success"]
    refused = run_handler(cy, "compare-saved", {"compare-saved": "ledger.jsonl"}, "cy-page")
    assert not refused["success"] and "Harrowgate" not in json.dumps(refused)
    assert "ledger.jsonl" not in json.dumps(cy.get("/config").json())

    form = {"compare-backends": ["base"], "compare-modes": [], "compare-questions": frame}
    compared = run_handler(bo, "compare-run", form, "bo-page")
    assert compared["success"], compared
    report = compared["output"]["data"][4]
    assert str(resources.settings.home) not in json.dumps(report)
    reports = resources.settings.home / "reports"
    own = [p for p in reports.glob("u*/*.html") if p.name == report["orig_name"]]
    assert len(own) == 1 and not (reports / report["orig_name"]).exists()


def test_chat_only_servers_do_not_build_the_other_tabs(resources: Resources) -> None:
    app, url = launch(resources, Access("chat-only"))
    try:
        config = httpx.get(f"{url}/config").json()
        elem_ids = {c.get("props", {}).get("elem_id") for c in config["components"]}
        assert "chatbot" in elem_ids and "message" in elem_ids
        assert not elem_ids & {"kb-add", "kb-files", "train-start", "train-files"}
        for elem_id in ("kb-add", "train-start"):
            with pytest.raises(LookupError):
                handler_of(config, elem_id)
    finally:
        app.close()


def upload(client: httpx.Client, path: Path) -> dict:
    """A file sent as the browser sends it; returns the value a File input takes."""
    with path.open("rb") as handle:
        sent = client.post("/gradio_api/upload", files={"files": (path.name, handle)})
    assert sent.status_code == 200, sent.text
    return {"path": sent.json()[0], "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}


def ingest(url: str, user: str, collection: str, path: Path) -> dict:
    client = session(url, user)
    fn_index, trigger = handler_of(client.get("/config").json(), "kb-add")
    return call(client, fn_index, trigger, [collection, [upload(client, path)]])


def ask(
    url: str,
    user: str,
    question: str,
    collection: str = "",
    backend: str = "rag",
    options: dict[str, Any] | None = None,
) -> tuple[str, str]:
    """The answer and the info line (or why it was not answered) of a chat, by default RAG
    over `collection`."""
    from gradio_client import Client

    client = Client(url, auth=(user, PASSWORDS[user]), verbose=False)
    options = options if options is not None else {"collection": collection}
    messages = client.predict(question, backend, options, api_name="/chat")
    answer = "".join(m["content"] for m in messages if not (m.get("metadata") or {}).get("title"))
    info = "".join(
        m["metadata"]["title"] for m in messages if (m.get("metadata") or {}).get("title")
    )
    return answer, info


def test_users_keep_their_collections_private(
    signed_in: str, resources: Resources, tmp_path: Path
) -> None:
    handbook, notes, other = tmp_path / "handbook.txt", tmp_path / "diary.txt", tmp_path / "o.txt"
    handbook.write_text("The Quillby office opens at nine in the morning.")
    notes.write_text("The combination of Bo's locker at the Quillby office is 4471.")
    other.write_text("Cy keeps a spare umbrella under the desk.")
    assert ingest(signed_in, "ada", "handbook", handbook)["success"]  # shared: ada is an admin
    added = ingest(signed_in, "bo", "notes", notes)
    assert added["success"] and "**notes**" in json.dumps(added)

    answer, info = ask(signed_in, "bo", "What is the combination of Bo's locker?", "notes")
    assert "4471" in answer and info.startswith("RAG")
    # Another user can neither use bo's collection nor learn that it exists.
    answer, info = ask(signed_in, "cy", "What is the combination of Bo's locker?", "notes")
    assert "4471" not in answer + info
    # The collections cy may use are listed: the shared ones (other tests add their own).
    assert info.startswith("⚠️ Unknown collection 'notes'. Existing: ") and "handbook" in info
    assert "-notes" not in info
    cy = session(signed_in, "cy")
    config = json.dumps(cy.get("/config").json())
    # Whole names: shared collections of other tests ("notes-a") may be listed.
    assert '"notes"' not in config and "-notes" not in config
    # cy's own "notes" is another collection: bo's is neither replaced nor listed to cy.
    assert ingest(signed_in, "cy", "notes", other)["success"]
    answer, _ = ask(signed_in, "bo", "What is the combination of Bo's locker?", "notes")
    assert "4471" in answer
    answer, _ = ask(signed_in, "cy", "Where does Cy keep a spare umbrella?", "notes")
    assert "desk" in answer and "4471" not in answer
    # Shared collections are read-only to users.
    fn_index, trigger = handler_of(cy.get("/config").json(), "kb-confirm-delete")
    ids = [choice[1] for choice in documents_of(cy, "handbook", page="cy-page")]
    assert ids and not any("/" in i for i in ids)  # no server path reaches the browser
    refused = call(cy, fn_index, trigger, ["handbook", ids[0]], "cy-page")
    assert (
        refused["output"]["error"]
        == "Collection 'handbook' is shared: only an admin may change it."
    )
    assert ask(signed_in, "cy", "When does the Quillby office open?", "handbook")[1].startswith(
        "RAG"
    )
    # Admins see the shared collections, not users' private ones.
    admin = session(signed_in, "ada")
    assert documents_of(admin, "notes") == []
    stored = resources.knowledge.collections()
    assert "handbook" in stored and "notes" not in stored
    assert len([name for name in stored if name.endswith("-notes")]) == 2


def documents_of(client: httpx.Client, collection: str, page: str = "") -> list:
    """The document choices the Knowledge tab shows `client` for `collection`."""
    config = client.get("/config").json()
    fn_index, trigger = handler_of(config, "kb-collection")
    shown = call(client, fn_index, trigger, [collection], page)
    assert shown["success"], shown
    return shown["output"]["data"][1]["choices"]


OAUTH_SECRET = "space-oauth-secret"


def hf_session(url: str, account: str | None) -> httpx.Client:
    """A browser session as Gradio's OAuth callback leaves it once `account` signed in with
    Hugging Face (huggingface.co is out of reach here, so the signed cookie is made directly,
    with the Space's secret, exactly as Starlette's session middleware signs it)."""
    import base64
    import hashlib
    import time

    import itsdangerous

    client = httpx.Client(base_url=url, timeout=60)
    if account:
        info = {"userinfo": {"preferred_username": account}, "expires_at": time.time() + 3600}
        data = base64.b64encode(json.dumps({"oauth_info": info}).encode())
        secret = hashlib.sha256(f"{OAUTH_SECRET}-v4".encode()).hexdigest()
        client.headers["cookie"] = (
            "session=" + itsdangerous.TimestampSigner(secret).sign(data).decode()
        )
    return client


# As on a Space, Gradio starts its hot-reload watcher, which stops at once here: it needs the
# `spaces` package that Spaces install beside every app.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_on_a_space_people_sign_in_with_hugging_face(
    resources: Resources, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gradio.oauth

    monkeypatch.setenv("SYSTEM", "spaces")
    monkeypatch.setenv("SPACE_ID", "someone/knowledge-bot")
    space_oauth = {  # what a Space with `hf_oauth: true` sets
        "OAUTH_CLIENT_ID": "client-id",
        "OAUTH_CLIENT_SECRET": OAUTH_SECRET,
        "OAUTH_SCOPES": "openid profile",
        "OPENID_PROVIDER_URL": "https://huggingface.co",
    }
    for name, value in space_oauth.items():
        monkeypatch.setattr(gradio.oauth, name, value)
    access = decide_access("0.0.0.0", False, Path("huggingface"), admins="ada-hf")
    app, url = launch(resources, access)
    try:
        note = tmp_path / "moor.txt"
        note.write_text("The Brackwater moor is crossed by a single causeway of grey stone.")
        visitor = hf_session(url, None)
        config = visitor.get("/config").json()  # the page is public; its tools are not
        assert "hf-sign-in" in {c.get("props", {}).get("elem_id") for c in config["components"]}
        values = {"kb-collection": "moor", "kb-files": [upload(visitor, note)]}
        refused = run_handler(visitor, "kb-add", values)
        assert refused["output"]["error"] == "Sign in to add or change anything."
        assert run_handler(visitor, "train-start", {})["output"]["error"] == (
            "Sign in to train models."
        )

        user = hf_session(url, "bo-hf")
        values = {"kb-collection": "moor", "kb-files": [upload(user, note)]}
        assert run_handler(user, "kb-add", values)["success"]
        stored = resources.knowledge.collections()
        assert "moor" not in stored and any(n.endswith("-moor") for n in stored)
        admin = hf_session(url, "ada-hf")
        values = {"kb-collection": "moor-shared", "kb-files": [upload(admin, note)]}
        assert run_handler(admin, "kb-add", values)["success"]
        assert "moor-shared" in resources.knowledge.collections()
    finally:
        app.close()
    with pytest.raises(ValueError, match="Hugging Face Space"):
        monkeypatch.delenv("SPACE_ID")
        decide_access("0.0.0.0", False, Path("huggingface"))


def test_uploads_are_their_senders_own(
    signed_in: str, resources: Resources, tmp_path: Path
) -> None:
    note = tmp_path / "payslip.txt"
    note.write_text("Bo's salary at the Quillby office is 3,150 crowns a month.")
    bo, cy = session(signed_in, "bo"), session(signed_in, "cy")
    sent = upload(bo, note)
    assert bo.get(f"/gradio_api/file={sent['path']}").text == note.read_text()
    # cy, who learned the path, can neither download the file...
    fetched = cy.get(f"/gradio_api/file={sent['path']}")
    assert fetched.status_code == 404 and "3,150" not in fetched.text
    # ...nor add it to a collection of hers, nor train on it.
    refused = run_handler(cy, "kb-add", {"kb-collection": "stolen", "kb-files": [sent]})
    assert refused["output"]["error"] == (
        "payslip.txt: not a file you uploaded. Upload it again from this page."
    )
    assert not [n for n in resources.knowledge.collections() if n.endswith("-stolen")]
    values = {"train-method": "lora", "train-name": "stolen", "train-files": [sent]}
    assert "not a file you uploaded" in json.dumps(run_handler(cy, "train-start", values))
    # A server path as a file value is refused too, whoever sends it.
    server_file = {
        "path": "/etc/passwd",
        "orig_name": "passwd",
        "meta": {"_type": "gradio.FileData"},
    }
    for user in (bo, cy):
        refused = run_handler(user, "kb-add", {"kb-collection": "etc", "kb-files": [server_file]})
        assert not refused["success"] and "root:" not in json.dumps(refused), refused


def test_a_users_training_time_per_day_is_capped(
    signed_in: str, resources: Resources, facts_file: Path
) -> None:
    from bot.training import TrainingQuota

    settings = resources.settings
    quota = TrainingQuota(settings.runs_dir / "usage.json", settings.train_minutes_per_day)
    quota.use("cy", settings.train_minutes_per_day * 60)  # cy trained all day already
    refused = train_over_http(signed_in, "cy", "one-more", facts_file)
    assert refused["output"]["error"] == quota.refusal()
    assert "KBOT_TRAIN_MINUTES_PER_DAY" in quota.refusal()
    assert quota.left("bo") > 0  # others' time is their own


@pytest.mark.slow
def test_a_training_is_cancelled_only_by_its_own_page_and_user(
    signed_in: str, resources: Resources, facts_file: Path
) -> None:
    """Gradio's session hash comes from the client: cy, sending the hash of bo's page, finds
    no training of hers there to cancel."""
    from bot.sessions import Sessions

    bo, cy = session(signed_in, "bo"), session(signed_in, "cy")
    values = {
        "train-method": "lora",
        "train-name": "kept-going",
        "train-max_steps": 2,
        "train-overwrite": True,
        "train-files": [upload(bo, facts_file)],
    }
    trained = run_handler(bo, "train-start", values, "bo-page")
    assert "**kept-going** is ready" in json.dumps(trained)
    # What the adapter tells of its data names the file, not the server's upload path.
    (stored,) = [n for n in resources.artifacts.names() if n.endswith("-kept-going")]
    assert resources.artifacts.meta(stored).data.origin == "facts.jsonl"
    for client in (cy, bo):  # a run that ended can no more be cancelled by bo herself
        said = run_handler(client, "train-cancel", {}, "bo-page")
        assert said["output"]["data"][0] == "No training of yours is running on this page."

    # The registry behind it, with a run under way: only its own caller's page reaches it.
    class Page:
        def __init__(self, user: str) -> None:
            self.username, self.session_hash = user, "bo-page"

    users = Users()
    for name in ("bo", "cy"):
        users.add(name, PASSWORDS[name], "user")
    sessions = Sessions(Access("signed-in", users))
    running = sessions.put(Page("bo"), "training", object())
    assert sessions.get(Page("bo"), "training") is running
    assert sessions.get(Page("cy"), "training") is None
