"""Start the chat server from the settings."""

from __future__ import annotations

from bot.access import decide_access
from bot.api import mount_api
from bot.app import CHAT_CONCURRENCY, CONTENT_POLICY, build_app, server_options
from bot.service import create_service
from bot.settings import Settings
from bot.training import stale_runs


def _share_server_reachable() -> bool:
    """Gradio prints a long multi-line notice when it cannot make a share link; check first
    so the user gets one clear line and the app keeps serving locally."""
    import httpx
    from gradio.networking import GRADIO_API_SERVER

    try:
        httpx.get(GRADIO_API_SERVER, timeout=5).raise_for_status()
    except httpx.HTTPError as error:
        print(
            f"No share link: Gradio's share server is unreachable ({error.__class__.__name__}); "
            "serving locally only."
        )
        return False
    return True


def serve(settings: Settings, *, block: bool = True):
    """Serve the chat on `settings.host:port`; returns the running app when `block` is False.
    Who may do what follows from the address and the users file (`bot/access.py`)."""
    access = decide_access(
        settings.host, settings.share, settings.auth, settings.unsafe_public, settings.admins
    )
    if access.mode == "chat-only":
        print(
            "Chat only: this address is reachable by others and no users file is set "
            "(KBOT_AUTH), so the Knowledge, Train and Compare tabs are off."
        )
    for name in stale_runs(settings.runs_dir):
        print(
            f"Training {name!r} stopped halfway when its process died; its checkpoints are in "
            f"{settings.runs_dir / name} (`kbot train --resume` goes on from them)."
        )
    service = create_service(settings)
    # api_open=False: handlers run only through the queue (its size and concurrency limits
    # apply), never through the direct /run routes.
    app = build_app(service, access).queue(
        default_concurrency_limit=CHAT_CONCURRENCY, max_size=settings.queue_size, api_open=False
    )
    share = settings.share and _share_server_reachable()
    app.launch(
        share=share,
        server_name=settings.host,
        server_port=settings.port,
        prevent_thread_lock=True,
        # Our handlers' errors are one readable line each (`one_line_errors`); Gradio's own,
        # for malformed calls, would show its objects' reprs.
        show_error=False,
        app_kwargs=server_options(access, service.resources.uploads),
        quiet=False,
        head=CONTENT_POLICY,
        max_file_size=int(settings.max_file_mb * 1_000_000),
        auth=access.users.check if access.users else None,
        auth_message="Knowledge Bot: sign in with the name and password your admin gave you.",
    )
    mount_api(app, service, access)
    if block:
        app.block_thread()
    return app
