"""Dynamo 1.6.1's own argument parsers, used to check every command line dyncc generates.

The frontend's ``main.parse_args`` uses ``parse_known_args`` (unknown flags are silently dropped), so
the check builds a strict parser from the same argument group and runs the config's own validation.
``dynamo.trtllm``'s parser imports TensorRT-LLM only for ``BuildConfig`` defaults; where
``tensorrt_llm`` can't be imported (no CUDA), a stand-in with those defaults is placed in
``sys.modules`` first — the parser itself is Dynamo's.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import sys
import types

DYNAMO_AVAILABLE = (
    importlib.util.find_spec("dynamo") is not None and importlib.util.find_spec("dynamo.frontend") is not None
)


class ArgvRejected(Exception):
    pass


def _strict(parse):
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return parse()
    except SystemExit as exc:
        raise ArgvRejected(err.getvalue().strip() or f"exit {exc.code}") from None


def parse_frontend(argv: list[str]):
    from dynamo.frontend.frontend_args import FrontendArgGroup, FrontendConfig

    parser = argparse.ArgumentParser(prog="dynamo.frontend")
    FrontendArgGroup().add_arguments(parser)
    args = _strict(lambda: parser.parse_args(argv))
    config = FrontendConfig.from_cli_args(args)
    try:
        config.validate()
    except ValueError as exc:
        raise ArgvRejected(str(exc)) from None
    return config


def _install_buildconfig_standin() -> None:
    try:
        import tensorrt_llm.llmapi  # noqa: F401  (the real one, where it exists)

        return
    except Exception:  # ImportError, or an OSError for missing libcuda
        pass
    from pydantic import BaseModel

    class BuildConfig(BaseModel):  # TRT-LLM 1.3 defaults for the fields Dynamo reads
        max_batch_size: int = 2048
        max_num_tokens: int = 8192
        max_seq_len: int | None = None
        max_beam_width: int = 1

    install_tensorrt_llm_standin(BuildConfig)


def install_tensorrt_llm_standin(build_config: type) -> None:
    """Register `tensorrt_llm.llmapi.BuildConfig` (all Dynamo's parsers import from TensorRT-LLM)."""
    llmapi = types.ModuleType("tensorrt_llm.llmapi")
    llmapi.BuildConfig = build_config
    root = types.ModuleType("tensorrt_llm")
    root.llmapi = llmapi
    sys.modules.setdefault("tensorrt_llm", root)
    sys.modules.setdefault("tensorrt_llm.llmapi", llmapi)


def parse_trtllm(argv: list[str]):
    _install_buildconfig_standin()
    from dynamo.trtllm.args import parse_args

    return _strict(lambda: parse_args(argv))


def parse_mocker(argv: list[str]):
    from dynamo.mocker.args import parse_args

    return _strict(lambda: parse_args(argv))
