"""The build's kernels listen on socket files of their own, so a port taken by another process
cannot stop one from starting.

See ``_ext/kernel_sockets.py``. The race it fixes (a port chosen for a kernel is taken before the
kernel binds it) happens only now and then in a real build, so these tests make it happen every
time: jupyter_client is made to choose, as the kernel's output (IOPub) port, a port that a socket
of this test already holds.
"""

from __future__ import annotations

import atexit
import socket
from pathlib import Path

import pytest
from jupyter_client import AsyncKernelManager
from jupyter_client.connect import LocalPortCache
from nbclient import NotebookClient

from conftest import REPO, code_notebook, load_local_extension

kernel_sockets = load_local_extension("kernel_sockets")

#: What a cell prints: the transport its kernel listens on, read inside the kernel itself.
TRANSPORT_CELL = "from ipykernel.kernelapp import IPKernelApp; print(IPKernelApp.instance().transport)"


def printed(nb) -> str:
    return "".join(output.get("text", "") for output in nb.cells[0].outputs).strip()


@pytest.fixture
def taken_output_port(monkeypatch):
    """A port held by this test, which jupyter_client hands to the next kernel as its IOPub port
    (the second of the five it asks for): what another process's kernel or connection does in
    the race."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    choose = LocalPortCache.find_available_port
    asked = []

    def hand_out_the_taken_port_second(self, ip):
        asked.append(ip)
        return port if len(asked) == 2 else choose(self, ip)

    monkeypatch.setattr(LocalPortCache, "find_available_port", hand_out_the_taken_port_second)
    yield port
    holder.close()


def test_over_tcp_a_kernel_whose_port_was_taken_never_answers(taken_output_port):
    # Why the extension exists. With the default transport the kernel fails to bind, then hangs
    # while it closes: the client waits out its whole start-up timeout (60 s in a build).
    client = NotebookClient(code_notebook(TRANSPORT_CELL), kernel_manager_class=AsyncKernelManager,
                            startup_timeout=5)
    with pytest.raises(RuntimeError, match="Kernel didn't respond|Kernel died"):
        client.execute()
    atexit.unregister(client._cleanup_kernel)  # nbclient leaves it registered after a failed start


def test_over_socket_files_the_same_race_cannot_happen(taken_output_port):
    nb = code_notebook(TRANSPORT_CELL)
    NotebookClient(nb, kernel_manager_class=kernel_sockets.SocketFileKernelManager,
                   startup_timeout=30).execute()
    assert printed(nb) == "ipc"


def test_every_kernel_gets_its_own_absolute_socket_prefix():
    prefixes = [kernel_sockets.SocketFileKernelManager().ip for _ in range(2)]
    assert prefixes[0] != prefixes[1]
    # jupyter_client's own IPC default is one relative name for every kernel in a folder.
    assert AsyncKernelManager(transport="ipc").ip == "kernel-ipc"
    for prefix in prefixes:
        assert Path(prefix).is_absolute()
        assert len(prefix.encode()) + len("-65535") < 100  # a socket file's path: 107 bytes at most


def test_a_kernel_leaves_no_socket_files_behind(tmp_path):
    started = []

    class Recorded(kernel_sockets.SocketFileKernelManager):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            started.append(self.ip)

    nb = code_notebook("from ipykernel.kernelapp import IPKernelApp; print(IPKernelApp.instance().ip)")
    NotebookClient(nb, kernel_manager_class=Recorded, startup_timeout=30).execute(cwd=str(tmp_path))
    (prefix,) = started
    assert printed(nb) == prefix  # the kernel listened there, although it ran in another folder
    assert not list(Path(prefix).parent.glob(Path(prefix).name + "-*"))


def test_a_manager_told_to_use_tcp_listens_on_localhost():
    manager = kernel_sockets.SocketFileKernelManager(transport="tcp")
    assert manager.ip == "127.0.0.1"


def test_jupyter_cache_runs_notebooks_over_socket_files(monkeypatch, tmp_path):
    import nbclient
    from jupyter_cache.executors import utils

    monkeypatch.setattr(utils, "executenb", nbclient.execute)
    kernel_sockets.use_socket_files()
    kernel_sockets.use_socket_files()  # a second call keeps the one wrapper
    assert utils.executenb.__wrapped__ is nbclient.execute

    nb = code_notebook(TRANSPORT_CELL)
    result = utils.single_nb_execution(nb, cwd=str(tmp_path), timeout=60, allow_errors=False)
    assert result.err is None
    assert printed(nb) == "ipc"


def test_a_changed_jupyter_cache_fails_loudly(monkeypatch):
    from jupyter_cache.executors import utils

    monkeypatch.setattr(utils, "executenb", lambda nb, **kwargs: nb)
    with pytest.raises(RuntimeError, match="no longer runs notebooks with nbclient.execute"):
        kernel_sockets.use_socket_files()


def test_the_book_loads_the_extension():
    config = (REPO / "_config.yml").read_text()
    assert "\n    kernel_sockets: _ext/" in config
