"""ohws.testing: what you need to unit-test an app that uses ohws.

``StubServer`` is a scriptable WebSocket server on loopback; the pytest plugin (registered as
``ohws`` through the ``pytest11`` entry point) gives the fixtures ``ohws_stub_server`` (a running
echo server) and ``ohws_stub_server_factory`` (make servers with any script; all stopped after
the test)::

    from ohws import webSocket
    from ohws.testing import StubServer

    def test_greets(ohws_stub_server):
        ws = webSocket.createWebSocket()
        ws.connect(ohws_stub_server.url).result(5)
        ws.send("hello").result(5)
        assert ohws_stub_server.wait_for_messages(1) == ["hello"]
"""

from ._stub import Fragmented, Request, StubServer

__all__ = ["Fragmented", "Request", "StubServer"]
