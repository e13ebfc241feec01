"""Sphinx extension: the build's kernels listen on socket files of their own, not on TCP ports.

A kernel listens on five sockets. By default (TCP), jupyter_client picks five free ports for it by
binding each to port 0 and closing it again, writes them to the kernel's connection file, and starts
the kernel, which binds them a moment later. In between, the ports are free for anyone to take: a
kernel that another process starts at the same time, or the source port of a connection some other
process opens. jupyter_client remembers the ports it handed out, but only inside one process
(``LocalPortCache``, jupyter_client issue 487), and the chapters execute in separate processes
(``_ext/parallel_chapters.py``). A kernel whose port was taken stops with "Address already in use";
if that was its output (IOPub) port, it does not even exit, it hangs while closing, and the build
waits 60 seconds and fails with "Kernel didn't respond in 60 seconds" (seen in CI on a fresh clone,
in a build that executed all four chapters side by side; ``tests/test_kernel_sockets.py`` makes it
happen every time).

Fix: every kernel the build starts uses the IPC transport, Unix socket files under the temporary
folder whose names begin with a random prefix, so no two kernels, nor any other program, can want
the same address; the kernel manager removes the files when the kernel stops. This replaces
``executenb``, the name through which jupyter-cache (``execute_notebooks: cache``) runs a notebook
with nbclient, by a wrapper that passes :class:`SocketFileKernelManager`; if jupyter-cache stops
running notebooks that way, the build fails here rather than racing again. Where ZeroMQ has no IPC
transport (Windows), the build keeps TCP.
"""

from __future__ import annotations

import functools
import tempfile
import uuid
from pathlib import Path

import zmq
from jupyter_client import AsyncKernelManager
from sphinx.application import Sphinx
from traitlets import default


class SocketFileKernelManager(AsyncKernelManager):
    """nbclient's kernel manager, with the kernel's sockets at files no other kernel names."""

    @default("transport")
    def _socket_files(self) -> str:
        return "ipc"

    @default("ip")
    def _unique_prefix(self) -> str:
        # jupyter_client's own default for IPC, "kernel-ipc" in the current folder, is the same
        # for every kernel started there, so two chapters' kernels would share their sockets.
        if self.transport != "ipc":
            return super()._ip_default()
        return str(Path(tempfile.gettempdir()) / f"kernel-{uuid.uuid4().hex[:16]}")


def use_socket_files() -> None:
    """Make jupyter-cache start every kernel with :class:`SocketFileKernelManager`."""
    import nbclient
    from jupyter_cache.executors import utils

    if getattr(utils.executenb, "__wrapped__", None) is nbclient.execute:
        return
    if utils.executenb is not nbclient.execute:
        raise RuntimeError(
            "kernel_sockets: jupyter_cache.executors.utils no longer runs notebooks with "
            "nbclient.execute; check _ext/kernel_sockets.py against this jupyter-cache version"
        )

    @functools.wraps(nbclient.execute)
    def execute(nb, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", SocketFileKernelManager)
        return nbclient.execute(nb, *args, **kwargs)

    utils.executenb = execute


def setup(app: Sphinx) -> dict:
    if zmq.has("ipc"):
        use_socket_files()  # in the main process, so that the forked readers inherit it
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
