"""The warm starts this grader process keeps: one zygote per preload, user, layers switched off and refusal, started
on first use, replaced when it died, and all stopped at exit."""

from __future__ import annotations

import atexit
import os

from autograder.config import GraderConfig
from autograder.supervisor import host
from autograder.supervisor.runplan import scrubbed_env
from autograder.supervisor.warmstart import INSIDE, Zygote

__all__ = ["warm_start", "close_warm_starts"]

_zygotes: dict[tuple, Zygote] = {}


@atexit.register
def close_warm_starts() -> None:
    """Stop every zygote: a grader that grades one submission frees their memory before its cases run."""
    for zygote in _zygotes.values():
        zygote.close()
    _zygotes.clear()


def warm_start(preload: tuple[str, ...], user=None, refusal: str = "", config: GraderConfig | None = None) -> Zygote:
    """The zygote for `preload` and this run's user, started now if none is alive; returns at once.
    `refusal` forces the fallback sandbox, saying why; `config` names the user and the layers switched off."""
    config = config or GraderConfig()
    if user is None and os.geteuid() == 0:
        user = host.sandbox_user(config.sandbox_user, [])
    key = (preload, user.pw_uid if user else None, config.disabled, refusal)
    zygote = _zygotes.get(key)
    if zygote is None or not zygote.alive() or "zygote" in config.disabled:
        if zygote is not None:
            zygote.close()
        if user is not None:  # before bubblewrap is tried: it must reach the environment as that user
            host.let_user_run_python(INSIDE, [])
        zygote = _zygotes[key] = Zygote(preload, scrubbed_env("/tmp"), user.pw_uid if user else None, refusal,
                                        config.disabled)
    return zygote
